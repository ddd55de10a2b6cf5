//! `ferrograd graph`: traces a training step (forward, softmax cross-entropy, backward) of a
//! small model (an MLP, softmax regression, LeNet-5 or a plain CNN) and writes its graph as
//! Graphviz DOT four ways: the forward pass, the step as traced, the step after the
//! optimisation passes (fused nodes shaded), and the whole training step with an
//! SGD-with-momentum update compiled in (its stores into the weights, momentum buffers and
//! batch norm's running statistics marked). Where the `dot` program is installed, each is
//! also rendered to SVG.

use std::cell::RefCell;

use std::path::Path;
use std::process::Command;

use ferrograd_core::graph::{CompileOptions, Graph, compile};
use ferrograd_core::{DType, Rng, Tensor};
use ferrograd_nn::{
    CnnConfig, LeNetConfig, MlpConfig, Module, Optimizer, Sequential, Sgd, SgdConfig,
    classifier_step, classifier_train_step, cnn, lenet, loss, mlp, named_buffers, named_params,
};

use crate::cli::{GraphArgs, ModelKind};
use crate::console::{say, text};
use crate::error::{CliError, Result};
use crate::output::write_atomic;

fn write_graph(dir: &Path, name: &str, graph: &Graph) -> Result<String> {
    let dot_path = dir.join(format!("{name}.dot"));
    write_atomic(&dot_path, graph.to_dot(name).as_bytes())?;
    // Render with Graphviz when it is installed; the DOT file is the product either way.
    let svg = Command::new("dot").arg("-Tsvg").arg(&dot_path).output();
    Ok(match svg {
        Ok(out) if out.status.success() => {
            write_atomic(&dir.join(format!("{name}.svg")), &out.stdout)?;
            format!("{name}.dot, {name}.svg")
        }
        _ => format!("{name}.dot"),
    })
}

/// The model of `args`, a description of it and the shape of one input sample.
fn build(args: &GraphArgs, rng: &mut Rng) -> Result<(Sequential, String, Vec<usize>)> {
    let [c, h, w] = args.image.0;
    let flag = |e: ferrograd_core::Error| CliError::Flag {
        flag: "--image",
        msg: e.to_string(),
    };
    Ok(match args.model {
        ModelKind::Mlp | ModelKind::Logistic => {
            let hidden = match args.model {
                ModelKind::Mlp => args.hidden.0.clone(),
                _ => Vec::new(),
            };
            let what = if hidden.is_empty() {
                "softmax regression".to_string()
            } else {
                format!("MLP {hidden:?}")
            };
            let cfg = MlpConfig {
                input: args.features,
                hidden,
                output: args.classes,
                activation: args.activation,
                dropout: 0.0,
            };
            let what = format!("{what} with {} features", args.features);
            (mlp(&cfg, DType::F32, rng)?, what, vec![args.features])
        }
        ModelKind::Lenet => {
            let cfg = LeNetConfig::for_image(c, h, w, args.classes);
            let model = lenet(&cfg, DType::F32, rng).map_err(flag)?;
            (
                model,
                format!("LeNet-5 on {c}x{h}x{w} images"),
                vec![c, h, w],
            )
        }
        ModelKind::Cnn => {
            let cfg = CnnConfig {
                in_channels: c,
                channels: args.filters.0.clone(),
                convs_per_stage: 1,
                classes: args.classes,
            };
            let what = format!("CNN {:?} on {c}x{h}x{w} images", cfg.channels);
            (
                cnn(&cfg, DType::F32, rng).map_err(flag)?,
                what,
                vec![c, h, w],
            )
        }
    })
}

/// `ferrograd graph`.
pub fn run(args: &GraphArgs) -> Result<()> {
    let mut rng = Rng::new(0);
    let (model, what, sample) = build(args, &mut rng)?;
    let params: Vec<Tensor> = named_params(&model).into_iter().map(|(_, p)| p).collect();
    let shape: Vec<usize> = std::iter::once(args.batch).chain(sample).collect();
    let x = Tensor::randn(&shape, 0.0, 1.0, DType::F32, &mut rng)?;
    let y = Tensor::zeros(&[args.batch], DType::I64)?;
    let forward = |i: &[Tensor]| -> ferrograd_core::Result<Vec<Tensor>> {
        let logits = model.forward(&i[0])?;
        Ok(vec![loss::cross_entropy(&logits, &i[1], 0.0)?])
    };
    let step = classifier_step(&model, &params, 0.0);
    let inputs = [x, y];
    let fwd = compile(forward, &inputs, CompileOptions::NONE)?;
    let traced = compile(&step, &inputs, CompileOptions::NONE)?;
    let optimized = compile(&step, &inputs, CompileOptions::default())?;
    // The whole step with the update: one eager step first creates the momentum buffers that
    // the compiled update then writes in place.
    let sgd = SgdConfig {
        lr: 0.1,
        momentum: 0.9,
        ..Default::default()
    };
    let opt = RefCell::new(Sgd::new(named_params(&model), sgd)?);
    let train = classifier_train_step(&model, &opt, 0.0, None);
    let [x, y] = inputs;
    let train_inputs = [x, y, Tensor::scalar(1.0f64), Tensor::scalar(sgd.lr)];
    train(&train_inputs)?;
    opt.borrow_mut().advance();
    let whole = compile(&train, &train_inputs, CompileOptions::default())?;
    std::fs::create_dir_all(&args.out).map_err(|e| CliError::io(&args.out, e))?;
    let mut written = Vec::new();
    for (name, c) in [
        ("forward", &fwd),
        ("step", &traced),
        ("step-optimized", &optimized),
        ("train-step", &whole),
    ] {
        written.push(write_graph(&args.out, name, c.graph())?);
    }
    let r = optimized.report();
    say!(
        "{what}, {} classes, batch {}: forward {} nodes, forward+backward {} nodes, after passes {} ({} fused groups absorbing {} ops, {} folded, {} merged)",
        args.classes,
        args.batch,
        fwd.graph().nodes.len(),
        traced.graph().nodes.len(),
        r.nodes_final,
        r.fused_groups,
        r.fused_ops,
        r.folded,
        r.merged
    );
    let buffers = named_buffers(&model).len();
    let into = if buffers == 0 {
        "weights and momentum buffers".to_string()
    } else {
        format!("weights, momentum buffers and {buffers} batch-norm buffers")
    };
    say!(
        "whole training step with the SGD momentum update: {} nodes, {} stores into {into} ({} computed in place)",
        whole.graph().nodes.len(),
        whole.graph().stores.len(),
        whole.memory().in_place
    );
    say!("wrote {}: {}", args.out.display(), written.join(", "));
    text(&optimized.graph().to_string());
    Ok(())
}
