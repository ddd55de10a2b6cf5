//! The workloads in burn, on its `flex` CPU backend (autodiff enabled on the device for
//! training): `burn::nn::Linear` layers, `CrossEntropyLoss` (mean), and burn's SGD and Adam.

use burn::module::Module;
use burn::nn::loss::{CrossEntropyLoss, CrossEntropyLossConfig};
use burn::nn::{Linear, LinearConfig};
use burn::optim::{AdamConfig, GradientsParams, SgdConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};

use crate::{Peer, Pool};

pub struct Burn;

#[derive(Module, Debug)]
struct Mlp {
    l1: Linear,
    l2: Linear,
    l3: Linear,
}

impl Mlp {
    fn new(device: &Device) -> Mlp {
        Mlp {
            l1: LinearConfig::new(784, 256).init(device),
            l2: LinearConfig::new(256, 128).init(device),
            l3: LinearConfig::new(128, 10).init(device),
        }
    }

    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let h = relu(self.l1.forward(x));
        let h = relu(self.l2.forward(h));
        self.l3.forward(h)
    }
}

/// The pool's batches as burn tensors on `device`.
fn tensors(pool: &Pool, device: &Device) -> Vec<(Tensor<2>, Tensor<1, Int>)> {
    pool.inputs
        .iter()
        .zip(&pool.labels)
        .map(|(x, y)| {
            let labels: Vec<i64> = y.iter().map(|&l| l as i64).collect();
            (
                Tensor::from_data(TensorData::new(x.clone(), [pool.batch, 784]), device),
                Tensor::from_data(TensorData::new(labels, [pool.batch]), device),
            )
        })
        .collect()
}

impl Peer for Burn {
    fn name(&self) -> &'static str {
        "burn"
    }

    fn gemm(&self, n: usize) -> Box<dyn FnMut(usize)> {
        let device = Device::flex();
        let a = Tensor::<2>::random([n, n], Distribution::Normal(0.0, 1.0), &device);
        let b = Tensor::<2>::random([n, n], Distribution::Normal(0.0, 1.0), &device);
        Box::new(move |iters| {
            for _ in 0..iters {
                let _ = a.clone().matmul(b.clone());
            }
        })
    }

    fn train(&self, pool: Pool, adam: bool) -> Box<dyn FnMut(usize)> {
        let device = Device::flex().autodiff();
        let mut model = Some(Mlp::new(&device));
        let loss_fn: CrossEntropyLoss = CrossEntropyLossConfig::new().init(&device);
        let (mut opt, lr) = if adam {
            (AdamConfig::new().init(), 1e-3)
        } else {
            (SgdConfig::new().init(), 0.01)
        };
        let batches = tensors(&pool, &device);
        let mut k = 0;
        Box::new(move |iters| {
            for _ in 0..iters {
                let (x, y) = &batches[k % batches.len()];
                k += 1;
                let m = model.take().expect("the model between steps");
                let loss = loss_fn.forward(m.forward(x.clone()), y.clone());
                let grads = GradientsParams::from_grads(loss.backward(), &m);
                model = Some(opt.step(lr, m, grads));
            }
        })
    }

    fn infer(&self, pool: Pool) -> Box<dyn FnMut(usize)> {
        let device = Device::flex();
        let model = Mlp::new(&device);
        let batches = tensors(&pool, &device);
        let mut k = 0;
        Box::new(move |iters| {
            for _ in 0..iters {
                let _ = model.forward(batches[k % batches.len()].0.clone());
                k += 1;
            }
        })
    }
}
