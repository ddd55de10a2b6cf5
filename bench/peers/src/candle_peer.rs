//! The workloads in candle: `candle_nn::Linear` layers built from a `VarMap`, mean softmax
//! cross-entropy (`candle_nn::loss::cross_entropy`), and candle-nn's SGD and AdamW optimizers
//! (AdamW with no weight decay is Adam).

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{AdamW, Linear, Optimizer, ParamsAdamW, SGD, VarBuilder, VarMap};

use crate::{Peer, Pool};

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

/// The pool's batches as candle tensors.
fn tensors(pool: &Pool) -> Vec<(Tensor, Tensor)> {
    pool.inputs
        .iter()
        .zip(&pool.labels)
        .map(|(x, y)| {
            (
                Tensor::from_slice(x, (pool.batch, 784), &Device::Cpu).expect("input tensor"),
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
        let mut opt: Box<dyn FnMut(&Tensor)> = if adam {
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
        let batches = tensors(&pool);
        let mut k = 0;
        Box::new(move |iters| {
            for _ in 0..iters {
                let (x, y) = &batches[k % batches.len()];
                k += 1;
                let logits = model.forward(x).expect("forward");
                let loss = candle_nn::loss::cross_entropy(&logits, y).expect("loss");
                opt(&loss);
            }
        })
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
}
