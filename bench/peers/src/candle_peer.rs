//! The workloads in candle: `candle_nn::Linear`, `Conv2d` and `BatchNorm` layers built from a
//! `VarMap`, `Tensor::max_pool2d`, mean softmax cross-entropy (`candle_nn::loss::cross_entropy`),
//! and candle-nn's SGD and AdamW optimizers (AdamW with no weight decay is Adam). candle-nn's SGD
//! has no momentum, so the CNN workloads update with momentum here, in candle tensor ops.

use candle_core::{DType, Device, Module, ModuleT, Tensor, Var};
use candle_nn::{
    AdamW, BatchNorm, Conv2d, Conv2dConfig, Linear, Optimizer, ParamsAdamW, SGD, VarBuilder, VarMap,
};

use crate::{Cnn, Peer, Pool};

pub struct Candle;

struct Mlp {
    layers: [Linear; 3],
}

impl Mlp {
    fn new(vb: VarBuilder) -> candle_core::Result<Mlp> {
        Ok(Mlp {
            layers: [
                candle_nn::linear(784, 256, vb.pp("l1"))?,
                candle_nn::linear(256, 128, vb.pp("l2"))?,
                candle_nn::linear(128, 10, vb.pp("l3"))?,
            ],
        })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let h = self.layers[0].forward(x)?.relu()?;
        let h = self.layers[1].forward(&h)?.relu()?;
        self.layers[2].forward(&h)
    }
}

/// LeNet-5 and the plain CNN, as `Cnn` defines them.
enum Net {
    LeNet {
        convs: [Conv2d; 2],
        fcs: [Linear; 3],
    },
    Cifar {
        stages: Vec<(Conv2d, BatchNorm)>,
        head: Linear,
    },
}

impl Net {
    fn new(net: Cnn, vb: VarBuilder) -> candle_core::Result<Net> {
        Ok(match net {
            Cnn::LeNet => {
                let padded = Conv2dConfig {
                    padding: 2,
                    ..Default::default()
                };
                Net::LeNet {
                    convs: [
                        candle_nn::conv2d(1, 6, 5, padded, vb.pp("c1"))?,
                        candle_nn::conv2d(6, 16, 5, Default::default(), vb.pp("c2"))?,
                    ],
                    fcs: [
                        candle_nn::linear(400, 120, vb.pp("f1"))?,
                        candle_nn::linear(120, 84, vb.pp("f2"))?,
                        candle_nn::linear(84, 10, vb.pp("f3"))?,
                    ],
                }
            }
            Cnn::Cifar => {
                let same = Conv2dConfig {
                    padding: 1,
                    ..Default::default()
                };
                let mut stages = Vec::new();
                let mut c = 3;
                for (i, width) in Cnn::CIFAR_WIDTHS.into_iter().enumerate() {
                    let vb = vb.pp(format!("s{i}"));
                    stages.push((
                        candle_nn::conv2d_no_bias(c, width, 3, same, vb.pp("conv"))?,
                        candle_nn::batch_norm(width, 1e-5, vb.pp("bn"))?,
                    ));
                    c = width;
                }
                Net::Cifar {
                    stages,
                    head: candle_nn::linear(c, 10, vb.pp("head"))?,
                }
            }
        })
    }

    /// Logits of a batch, batch norm in training mode.
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Net::LeNet { convs, fcs } => {
                let mut h = x.clone();
                for conv in convs {
                    h = conv.forward(&h)?.relu()?.max_pool2d(2)?;
                }
                let h = h.flatten_from(1)?;
                let h = fcs[0].forward(&h)?.relu()?;
                let h = fcs[1].forward(&h)?.relu()?;
                fcs[2].forward(&h)
            }
            Net::Cifar { stages, head } => {
                let mut h = x.clone();
                for (conv, bn) in stages {
                    h = bn
                        .forward_t(&conv.forward(&h)?, true)?
                        .relu()?
                        .max_pool2d(2)?;
                }
                head.forward(&h.mean((2, 3))?)
            }
        }
    }
}

/// SGD with momentum as PyTorch defines it (no dampening): v = mu v + g; w -= lr v.
struct Momentum {
    vars: Vec<(Var, Option<Tensor>)>,
    lr: f64,
    mu: f64,
}

impl Momentum {
    fn step(&mut self, loss: &Tensor) -> candle_core::Result<()> {
        let grads = loss.backward()?;
        for (var, velocity) in &mut self.vars {
            // Variables without a gradient (batch norm's running statistics) are left alone.
            let Some(g) = grads.get(var) else { continue };
            let v = match velocity.take() {
                Some(v) => ((v * self.mu)? + g)?,
                None => g.clone(),
            };
            var.set(&(var.as_tensor() - (&v * self.lr)?)?)?;
            *velocity = Some(v);
        }
        Ok(())
    }
}

/// The shape of one of the pool's batches.
fn shape(pool: &Pool) -> Vec<usize> {
    [pool.batch]
        .into_iter()
        .chain(pool.sample.iter().copied())
        .collect()
}

/// The step closure of a training workload: `forward`, mean softmax cross-entropy and `update`
/// (backward and the optimizer step) on the pool's batches in turn.
fn training_steps(
    pool: &Pool,
    forward: impl Fn(&Tensor) -> candle_core::Result<Tensor> + 'static,
    mut update: impl FnMut(&Tensor) + 'static,
) -> Box<dyn FnMut(usize)> {
    let batches = tensors(pool);
    let mut k = 0;
    Box::new(move |iters| {
        for _ in 0..iters {
            let (x, y) = &batches[k % batches.len()];
            k += 1;
            let logits = forward(x).expect("forward");
            update(&candle_nn::loss::cross_entropy(&logits, y).expect("loss"));
        }
    })
}

/// The pool's batches as candle tensors.
fn tensors(pool: &Pool) -> Vec<(Tensor, Tensor)> {
    pool.inputs
        .iter()
        .zip(&pool.labels)
        .map(|(x, y)| {
            (
                Tensor::from_slice(x, shape(pool), &Device::Cpu).expect("input tensor"),
                Tensor::from_slice(y, pool.batch, &Device::Cpu).expect("label tensor"),
            )
        })
        .collect()
}

impl Peer for Candle {
    fn name(&self) -> &'static str {
        "candle"
    }

    fn gemm(&self, n: usize) -> Box<dyn FnMut(usize)> {
        let a = Tensor::randn(0f32, 1f32, (n, n), &Device::Cpu).expect("operand");
        let b = Tensor::randn(0f32, 1f32, (n, n), &Device::Cpu).expect("operand");
        Box::new(move |iters| {
            for _ in 0..iters {
                a.matmul(&b).expect("matmul");
            }
        })
    }

    fn train(&self, pool: Pool, adam: bool) -> Box<dyn FnMut(usize)> {
        let varmap = VarMap::new();
        let model =
            Mlp::new(VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu)).expect("model");
        let opt: Box<dyn FnMut(&Tensor)> = if adam {
            let params = ParamsAdamW {
                lr: 1e-3,
                weight_decay: 0.0,
                ..Default::default()
            };
            let mut o = AdamW::new(varmap.all_vars(), params).expect("optimizer");
            Box::new(move |loss| o.backward_step(loss).expect("step"))
        } else {
            let mut o = SGD::new(varmap.all_vars(), 0.01).expect("optimizer");
            Box::new(move |loss| o.backward_step(loss).expect("step"))
        };
        training_steps(&pool, move |x| model.forward(x), opt)
    }

    fn infer(&self, pool: Pool) -> Box<dyn FnMut(usize)> {
        // Weights as plain tensors (as loaded for inference), so no graph is recorded.
        let varmap = VarMap::new();
        let model =
            Mlp::new(VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu)).expect("model");
        let model = Mlp {
            layers: model
                .layers
                .map(|l| Linear::new(l.weight().detach(), l.bias().map(|b| b.detach()))),
        };
        let batches = tensors(&pool);
        let mut k = 0;
        Box::new(move |iters| {
            for _ in 0..iters {
                model
                    .forward(&batches[k % batches.len()].0)
                    .expect("forward");
                k += 1;
            }
        })
    }

    fn train_cnn(&self, pool: Pool, net: Cnn) -> Box<dyn FnMut(usize)> {
        let varmap = VarMap::new();
        let model = Net::new(
            net,
            VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
        )
        .expect("model");
        let mut opt = Momentum {
            vars: varmap.all_vars().into_iter().map(|v| (v, None)).collect(),
            lr: 0.01,
            mu: 0.9,
        };
        training_steps(
            &pool,
            move |x| model.forward(x),
            move |loss| opt.step(loss).expect("step"),
        )
    }
}
