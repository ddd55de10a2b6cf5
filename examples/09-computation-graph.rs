//! # Lesson 09: the computation graph
//!
//! Every number a network computes is the output of a small operation (a matrix product, an
//! addition, a sigmoid, a logarithm) applied to earlier numbers. Written down, these operations
//! form a directed acyclic graph: the *computation graph*. Logistic regression on one sample is
//! already a small one: `z = x·w + b`, `ŷ = σ(z)`, and the cross-entropy loss
//! `L = −[y log ŷ + (1 − y) log(1 − ŷ)]`, averaged over the samples. (The lesson writes the
//! loss out in tensor ops so that every node is visible; `nn::loss::binary_cross_entropy` is
//! the same formula with each log clamped at −100, as in PyTorch.)
//!
//! Backpropagation walks that graph backwards. It starts from `∂L/∂L = 1` and, at each node,
//! multiplies the gradient arriving from above by the node's local derivative, handing the
//! result to the node's inputs (and adding up contributions where a value is used twice). The
//! lesson prints every node of the one-sample graph, in the order backward visits it, with its
//! value and its gradient: you can follow the chain rule by hand. At the end, `∂L/∂w` is exactly
//! `(ŷ − y)·x`, the formula usually derived on paper.
//!
//! The same code on a batch of `m` samples builds the *same* graph: every node has the same
//! operation and the same inputs, only the shapes change (`[1, 2]` becomes `[m, 2]`). ferrograd
//! can record the graph instead of just running it (tracing, the static mode of lesson 10),
//! backward pass included, and write it in Graphviz's DOT language before and after its
//! optimisation passes. The claim checked by the test: the one-sample and batch graphs have the
//! same nodes in the same order; the printed gradient of `w` equals `(ŷ − y)·x`; the DOT files
//! exist and start with `digraph`.
//!
//! The figure (`computation-graph.png`) draws the one-sample graph as the eager mode recorded
//! it, left to right in topological order, each box with its value `v` and gradient `g`. When
//! Graphviz's `dot` program is installed, each DOT file is also rendered to SVG
//! (`*.svg`, the full traced graphs with their backward half); without it the lesson says so
//! and carries on.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use ferrograd::graph::{CompileOptions, Graph, Node, NodeKind, compile, trace};
use ferrograd::lesson::LessonArgs;
use ferrograd::op::Op;
use ferrograd::plot::plotters::prelude::*;
use ferrograd::plot::{err, render};
use ferrograd::{BackwardOptions, DType, Rng, Tensor, TensorId};

/// What the lesson runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Samples in the batch graph.
    pub batch: usize,
    /// Seed of the batch's random inputs.
    pub seed: u64,
    /// Where the DOT/SVG files and the figure go.
    pub out: PathBuf,
}

impl Config {
    /// The setting of `cargo run --example 09-computation-graph`.
    pub fn full() -> Self {
        Config {
            batch: 8,
            seed: 9,
            out: PathBuf::from("runs/lessons/09-computation-graph"),
        }
    }

    /// The test's setting (the graphs are tiny either way).
    pub fn quick() -> Self {
        Config {
            batch: 4,
            ..Config::full()
        }
    }
}

/// One node of the eagerly recorded one-sample graph.
#[derive(Debug, Clone)]
pub struct NodeTrace {
    /// `x`, `w`, `b`, `y`, the op's name, or `const`.
    pub name: String,
    /// The value's shape.
    pub shape: Vec<usize>,
    /// The value.
    pub value: Vec<f64>,
    /// `∂L/∂node`, for nodes that carry a gradient.
    pub grad: Option<Vec<f64>>,
    /// Indices (in `Outcome::nodes`) of the node's inputs.
    pub inputs: Vec<usize>,
}

/// A traced graph, before and after the passes.
#[derive(Debug, Clone)]
pub struct GraphSummary {
    /// Nodes of the traced forward + backward graph.
    pub traced_nodes: usize,
    /// The traced graph's computing nodes in order, without shapes (views such as reshape and
    /// broadcast compute nothing and are left out; constants are shown without their value).
    pub traced_ops: Vec<String>,
    /// Every node of the graph after the optimisation passes, without shapes (constants
    /// without their value).
    pub optimized: Vec<String>,
    /// Fused elementwise groups after the passes.
    pub fused_groups: usize,
}

/// What the lesson measured.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The one-sample graph.
    pub one: GraphSummary,
    /// The batch graph.
    pub batch: GraphSummary,
    /// Samples in the batch.
    pub batch_size: usize,
    /// The eager one-sample graph's nodes in topological order (inputs first).
    pub nodes: Vec<NodeTrace>,
    /// ŷ and L of the one-sample case.
    pub y_hat: f64,
    /// The one-sample loss.
    pub loss: f64,
    /// `∂L/∂w` from backward.
    pub grad_w: Vec<f64>,
    /// `(ŷ − y)·x` from the forward values.
    pub expected_grad_w: Vec<f64>,
    /// DOT files written.
    pub dot_files: Vec<PathBuf>,
    /// SVG files written by Graphviz (empty when `dot` is not installed).
    pub svg_files: Vec<PathBuf>,
    /// Why no SVG was written, when none was.
    pub svg_note: Option<String>,
    /// The PNG figure.
    pub figure: PathBuf,
}

impl Outcome {
    /// Whether the one-sample and batch graphs compute the same ops in the same order, and are
    /// node for node the same after the passes.
    pub fn same_structure(&self) -> bool {
        self.one.traced_ops == self.batch.traced_ops && self.one.optimized == self.batch.optimized
    }
}

/// `L = −[y log ŷ + (1 − y) log(1 − ŷ)]` with `ŷ = σ(x·w + b)`, the mean over the samples.
fn logistic_loss(x: &Tensor, y: &Tensor, w: &Tensor, b: &Tensor) -> ferrograd::Result<Tensor> {
    let y_hat = x.matmul(w)?.add(b)?.sigmoid()?;
    let one_minus_y = y.neg()?.add_scalar(1.0)?;
    let log_one_minus_y_hat = y_hat.neg()?.log1p()?;
    y.mul(&y_hat.log()?)?
        .add(&one_minus_y.mul(&log_one_minus_y_hat)?)?
        .neg()?
        .mean(&[], false)
}

/// The parameters, with gradients (2 features).
fn parameters() -> ferrograd::Result<(Tensor, Tensor)> {
    let w = Tensor::from_vec(vec![0.8f64, -0.4], &[2, 1])?.with_requires_grad(true);
    let b = Tensor::from_vec(vec![0.1f64], &[1])?.with_requires_grad(true);
    Ok((w, b))
}

/// Traces forward + backward on `(x, y)`, writes the graph as DOT before and after the passes.
fn trace_and_write(
    x: &Tensor,
    y: &Tensor,
    w: &Tensor,
    b: &Tensor,
    name: &str,
    out: &Path,
    files: &mut Vec<PathBuf>,
) -> Result<GraphSummary, Box<dyn std::error::Error>> {
    let step = |i: &[Tensor]| -> ferrograd::Result<Vec<Tensor>> {
        let l = logistic_loss(&i[0], &i[1], w, b)?;
        let g = l.backward()?;
        let missing = || ferrograd::Error::Argument {
            op: "lesson 09",
            msg: "a parameter has no gradient".into(),
        };
        let gw = g.get(w).cloned().ok_or_else(missing)?;
        let gb = g.get(b).cloned().ok_or_else(missing)?;
        Ok(vec![l, gw, gb])
    };
    let inputs = [x.clone(), y.clone()];
    let traced: Graph = trace(step, &inputs)?;
    let optimized = compile(step, &inputs, CompileOptions::default())?;
    for (suffix, g) in [("", &traced), ("-optimized", optimized.graph())] {
        let path = out.join(format!("{name}{suffix}.dot"));
        std::fs::write(&path, g.to_dot(&format!("{name}{suffix}")))?;
        files.push(path);
    }
    let traced_ops = traced
        .nodes
        .iter()
        .filter(|n| !is_view(n))
        .map(structural_label)
        .collect();
    Ok(GraphSummary {
        traced_nodes: traced.nodes.len(),
        traced_ops,
        optimized: optimized
            .graph()
            .nodes
            .iter()
            .map(structural_label)
            .collect(),
        fused_groups: optimized.report().fused_groups,
    })
}

/// Whether a node only re-views its input's data (reshape, broadcast, transpose, slice).
fn is_view(n: &Node) -> bool {
    matches!(
        &n.kind,
        NodeKind::Op {
            op: Op::Reshape(_) | Op::Expand(_) | Op::Permute(_) | Op::Narrow { .. },
            ..
        }
    )
}

/// A node's label with constants' values left out (the mean divides by `m`).
fn structural_label(n: &Node) -> String {
    match n.kind {
        NodeKind::Const(_) => "const".into(),
        _ => n.label(),
    }
}

/// Renders each DOT file to SVG with Graphviz, when it is installed.
fn render_svgs(dots: &[PathBuf]) -> (Vec<PathBuf>, Option<String>) {
    let mut svgs = Vec::new();
    for dot in dots {
        let svg = dot.with_extension("svg");
        match Command::new("dot")
            .arg("-Tsvg")
            .arg(dot)
            .arg("-o")
            .arg(&svg)
            .output()
        {
            Ok(o) if o.status.success() => svgs.push(svg),
            Ok(o) => {
                let msg = String::from_utf8_lossy(&o.stderr).trim().to_string();
                return (
                    svgs,
                    Some(format!("dot failed on {}: {msg}", dot.display())),
                );
            }
            Err(_) => {
                return (
                    svgs,
                    Some("Graphviz `dot` not found: wrote DOT files only (no SVG)".into()),
                );
            }
        }
    }
    (svgs, None)
}

/// The tensors reachable from `root` through recorded ops, inputs before users (iterative).
fn topological(root: &Tensor) -> Vec<Tensor> {
    let mut order = Vec::new();
    let mut seen: HashSet<TensorId> = HashSet::from([root.id()]);
    let mut stack = vec![(root.clone(), 0usize)];
    while let Some((t, next)) = stack.last_mut() {
        if let Some(child) = t.op_inputs().get(*next).cloned() {
            *next += 1;
            if seen.insert(child.id()) {
                stack.push((child, 0));
            }
        } else if let Some((t, _)) = stack.pop() {
            order.push(t);
        }
    }
    order
}

/// Runs the lesson: eager one-sample graph with every node's gradient, traced graphs for one
/// sample and for a batch, DOT/SVG files and the figure.
pub fn run(cfg: &Config) -> Result<Outcome, Box<dyn std::error::Error>> {
    std::fs::create_dir_all(&cfg.out)?;
    let (w, b) = parameters()?;

    // One sample, eagerly, keeping the gradient of every node.
    let x = Tensor::from_vec(vec![1.5f64, -0.5], &[1, 2])?;
    let y = Tensor::from_vec(vec![1.0f64], &[1, 1])?;
    let l = logistic_loss(&x, &y, &w, &b)?;
    let opts = BackwardOptions {
        keep_all: true,
        ..Default::default()
    };
    let grads = l.backward_with(&l.ones_like(), opts)?;
    let names: HashMap<TensorId, &str> =
        HashMap::from([(x.id(), "x"), (w.id(), "w"), (b.id(), "b"), (y.id(), "y")]);
    let order = topological(&l);
    let index: HashMap<TensorId, usize> =
        order.iter().enumerate().map(|(i, t)| (t.id(), i)).collect();
    let nodes: Vec<NodeTrace> = order
        .iter()
        .map(|t| NodeTrace {
            name: match (names.get(&t.id()), t.op_name()) {
                (Some(n), _) => (*n).to_string(),
                (None, Some(op)) => op.to_string(),
                (None, None) => "const".to_string(),
            },
            shape: t.shape().to_vec(),
            value: t.to_vec_f64(),
            grad: grads.get(t).map(Tensor::to_vec_f64),
            inputs: t.op_inputs().iter().map(|i| index[&i.id()]).collect(),
        })
        .collect();
    let y_hat = x.matmul(&w)?.add(&b)?.sigmoid()?.item()?;
    let grad_w = grads.get(&w).map(Tensor::to_vec_f64).unwrap_or_default();
    let (xv, yv) = (x.to_vec_f64(), y.item()?);
    let expected_grad_w = xv.iter().map(|xi| (y_hat - yv) * xi).collect();

    // The same code traced, forward + backward, for one sample and for a batch.
    let mut dot_files = Vec::new();
    let one = trace_and_write(&x, &y, &w, &b, "logreg-1", &cfg.out, &mut dot_files)?;
    let mut rng = Rng::new(cfg.seed);
    let xb = Tensor::randn(&[cfg.batch, 2], 0.0, 1.0, DType::F64, &mut rng)?;
    let yb: Vec<f64> = (0..cfg.batch).map(|_| rng.below(2) as f64).collect();
    let yb = Tensor::from_vec(yb, &[cfg.batch, 1])?;
    let name = format!("logreg-{}", cfg.batch);
    let batch = trace_and_write(&xb, &yb, &w, &b, &name, &cfg.out, &mut dot_files)?;
    let (svg_files, svg_note) = render_svgs(&dot_files);

    let figure = cfg.out.join("computation-graph.png");
    draw_graph(&figure, &nodes)?;
    Ok(Outcome {
        one,
        batch,
        batch_size: cfg.batch,
        nodes,
        y_hat,
        loss: l.item()?,
        grad_w,
        expected_grad_w,
        dot_files,
        svg_files,
        svg_note,
        figure,
    })
}

/// A short rendering of a value: the number, or the first two of many.
fn short(v: &[f64]) -> String {
    match v {
        // `+ 0.0` shows -0 as 0.
        [a] => format!("{:.4}", a + 0.0),
        [a, b] => format!("[{:.3}, {:.3}]", a + 0.0, b + 0.0),
        [a, b, ..] => format!("[{:.3}, {:.3}, …]", a + 0.0, b + 0.0),
        [] => "[]".into(),
    }
}

/// Draws the eager graph left to right: a column per depth (longest path from a leaf).
fn draw_graph(path: &Path, nodes: &[NodeTrace]) -> Result<(), Box<dyn std::error::Error>> {
    // Ops one column right of their latest input; leaves just left of their first user.
    let mut depth = vec![0usize; nodes.len()];
    for (i, n) in nodes.iter().enumerate() {
        depth[i] = n.inputs.iter().map(|&a| depth[a] + 1).max().unwrap_or(0);
    }
    let mut first_use = vec![usize::MAX; nodes.len()];
    for (i, n) in nodes.iter().enumerate() {
        for &a in &n.inputs {
            first_use[a] = first_use[a].min(depth[i]);
        }
    }
    for (i, n) in nodes.iter().enumerate() {
        if n.inputs.is_empty() && first_use[i] != usize::MAX {
            depth[i] = first_use[i] - 1;
        }
    }
    let columns = depth.iter().max().map_or(1, |d| d + 1);
    // Each node on its first input's row when that is free, so chains run straight.
    let mut row_of = vec![0usize; nodes.len()];
    let mut taken: HashSet<(usize, usize)> = HashSet::new();
    for (i, n) in nodes.iter().enumerate() {
        let preferred = n.inputs.first().map_or(0, |&a| row_of[a]);
        let row = (preferred..)
            .find(|&r| !taken.contains(&(depth[i], r)))
            .unwrap_or(preferred);
        taken.insert((depth[i], row));
        row_of[i] = row;
    }
    let rows = row_of.iter().max().map_or(1, |r| r + 1);
    let (bw, bh, gx, gy) = (140i32, 62i32, 30i32, 22i32);
    let size = (
        (columns as i32 * (bw + gx) + gx) as u32,
        (rows as i32 * (bh + gy) + gy + 40) as u32,
    );
    let pos = |i: usize| {
        (
            gx + depth[i] as i32 * (bw + gx),
            50 + row_of[i] as i32 * (bh + gy),
        )
    };
    render(path, size, |root| {
        root.draw(&Text::new(
            "Logistic regression, one sample: value v and gradient g = ∂L/∂node of every node",
            (gx, 14),
            ("sans-serif", 18),
        ))
        .map_err(err)?;
        for (i, n) in nodes.iter().enumerate() {
            let (x1, y1) = pos(i);
            for &a in &n.inputs {
                let (x0, y0) = pos(a);
                let (sx, sy, ex, ey) = (x0 + bw, y0 + bh / 2, x1, y1 + bh / 2);
                root.draw(&PathElement::new(vec![(sx, sy), (ex, ey)], BLACK.mix(0.5)))
                    .map_err(err)?;
                root.draw(&Polygon::new(
                    vec![(ex, ey), (ex - 8, ey - 4), (ex - 8, ey + 4)],
                    BLACK.mix(0.7).filled(),
                ))
                .map_err(err)?;
            }
        }
        for (i, n) in nodes.iter().enumerate() {
            let (x0, y0) = pos(i);
            let fill = match n.name.as_str() {
                "x" | "y" => RGBColor(207, 226, 255),
                "w" | "b" => RGBColor(209, 231, 221),
                "const" => RGBColor(238, 238, 238),
                _ => RGBColor(255, 255, 255),
            };
            root.draw(&Rectangle::new(
                [(x0, y0), (x0 + bw, y0 + bh)],
                fill.filled(),
            ))
            .map_err(err)?;
            root.draw(&Rectangle::new([(x0, y0), (x0 + bw, y0 + bh)], BLACK))
                .map_err(err)?;
            let lines = [
                format!("{} {:?}", n.name, n.shape),
                format!("v = {}", short(&n.value)),
                match &n.grad {
                    Some(g) => format!("g = {}", short(g)),
                    None => "g: none".into(),
                },
            ];
            for (k, line) in lines.iter().enumerate() {
                root.draw(&Text::new(
                    line.clone(),
                    (x0 + 5, y0 + 5 + 19 * k as i32),
                    ("sans-serif", 13),
                ))
                .map_err(err)?;
            }
        }
        Ok(())
    })?;
    Ok(())
}

fn main() {
    let args = LessonArgs::from_env_or_exit("09-computation-graph");
    let cfg = Config {
        out: args.out.clone(),
        ..args.pick(Config::quick, Config::full)
    };
    let o = match run(&cfg) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    println!("one sample: ŷ = {:.6}, L = {:.6}", o.y_hat, o.loss);
    println!("backward, node by node (value v, gradient g = ∂L/∂node):");
    for (i, n) in o.nodes.iter().enumerate().rev() {
        let args: Vec<String> = n.inputs.iter().map(|a| format!("%{a}")).collect();
        println!(
            "  %{i:<2} {:<12} {:<10} v = {:<22} g = {}",
            n.name,
            if args.is_empty() {
                String::new()
            } else {
                format!("({})", args.join(", "))
            },
            short(&n.value),
            n.grad.as_deref().map_or("—".to_string(), short)
        );
    }
    println!(
        "∂L/∂w from backward = {:?}; (ŷ − y)·x = {:?}",
        o.grad_w, o.expected_grad_w
    );
    println!(
        "traced forward+backward: 1 sample {} nodes, {} samples {} nodes, same ops in the same order: {}",
        o.one.traced_nodes,
        o.batch_size,
        o.batch.traced_nodes,
        o.same_structure()
    );
    println!(
        "after the passes: {} and {} nodes ({} and {} fused groups)",
        o.one.optimized.len(),
        o.batch.optimized.len(),
        o.one.fused_groups,
        o.batch.fused_groups
    );
    let mut files: Vec<String> = o
        .dot_files
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    files.extend(o.svg_files.iter().map(|p| p.display().to_string()));
    files.push(o.figure.display().to_string());
    if let Some(note) = &o.svg_note {
        println!("{note}");
    }
    println!("wrote {}", files.join(", "));
}
