//! The workloads in burn, on its `flex` CPU backend (autodiff enabled on the device for
//! training): `burn::nn::Linear`, `Conv2d`, `MaxPool2d`, `BatchNorm` and `AdaptiveAvgPool2d`
//! layers, `CrossEntropyLoss` (mean), and burn's SGD (with momentum for the CNNs) and Adam.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::loss::{CrossEntropyLoss, CrossEntropyLossConfig};
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig, MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer, SgdConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};

use crate::{Cnn, Peer, Pool};

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

/// LeNet-5 as `Cnn::LeNet` defines it.
#[derive(Module, Debug)]
struct LeNet {
    c1: Conv2d,
    c2: Conv2d,
    pool: MaxPool2d,
    f1: Linear,
    f2: Linear,
    f3: Linear,
}

/// The plain CNN as `Cnn::Cifar` defines it.
#[derive(Module, Debug)]
struct CifarCnn {
    convs: Vec<Conv2d>,
    norms: Vec<BatchNorm>,
    pool: MaxPool2d,
    global: AdaptiveAvgPool2d,
    head: Linear,
}

/// Either network, as one module for the optimizer.
#[derive(Module, Debug)]
enum Net {
    LeNet(LeNet),
    Cifar(CifarCnn),
}

impl Net {
    fn new(net: Cnn, device: &Device) -> Net {
        let pool = MaxPool2dConfig::new([2, 2]).init();
        match net {
            Cnn::LeNet => Net::LeNet(LeNet {
                c1: Conv2dConfig::new([1, 6], [5, 5])
                    .with_padding(PaddingConfig2d::Explicit(2, 2, 2, 2))
                    .init(device),
                c2: Conv2dConfig::new([6, 16], [5, 5]).init(device),
                pool,
                f1: LinearConfig::new(400, 120).init(device),
                f2: LinearConfig::new(120, 84).init(device),
                f3: LinearConfig::new(84, 10).init(device),
            }),
            Cnn::Cifar => {
                let mut c = 3;
                let (mut convs, mut norms) = (Vec::new(), Vec::new());
                for width in Cnn::CIFAR_WIDTHS {
                    convs.push(
                        Conv2dConfig::new([c, width], [3, 3])
                            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                            .with_bias(false)
                            .init(device),
                    );
                    norms.push(BatchNormConfig::new(width).init(device));
                    c = width;
                }
                Net::Cifar(CifarCnn {
                    convs,
                    norms,
                    pool,
                    global: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
                    head: LinearConfig::new(c, 10).init(device),
                })
            }
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        match self {
            Net::LeNet(m) => {
                let h = m.pool.forward(relu(m.c1.forward(x)));
                let h = m.pool.forward(relu(m.c2.forward(h)));
                let [b, ..] = h.dims();
                let h = relu(m.f1.forward(h.reshape([b, 400])));
                let h = relu(m.f2.forward(h));
                m.f3.forward(h)
            }
            Net::Cifar(m) => {
                let mut h = x;
                for (conv, norm) in m.convs.iter().zip(&m.norms) {
                    h = m.pool.forward(relu(norm.forward(conv.forward(h))));
                }
                let [b, c, ..] = h.dims();
                m.head.forward(m.global.forward(h).reshape([b, c]))
            }
        }
    }
}

/// The step closure of a training workload: `forward`, mean softmax cross-entropy, backward
/// and `opt`'s step at learning rate `lr` on the batches in turn.
fn training_steps<M: Module + 'static, const D: usize>(
    batches: Vec<(Tensor<D>, Tensor<1, Int>)>,
    model: M,
    forward: fn(&M, Tensor<D>) -> Tensor<2>,
    mut opt: ModuleOptimizer,
    lr: f64,
) -> Box<dyn FnMut(usize)> {
    let loss_fn: CrossEntropyLoss = CrossEntropyLossConfig::new().init(&batches[0].0.device());
    let mut model = Some(model);
    let mut k = 0;
    Box::new(move |iters| {
        for _ in 0..iters {
            let (x, y) = &batches[k % batches.len()];
            k += 1;
            let m = model.take().expect("the model between steps");
            let loss = loss_fn.forward(forward(&m, x.clone()), y.clone());
            let grads = GradientsParams::from_grads(loss.backward(), &m);
            model = Some(opt.step(lr, m, grads));
        }
    })
}

/// The pool's batches as burn tensors of rank `D` on `device`.
fn tensors<const D: usize>(pool: &Pool, device: &Device) -> Vec<(Tensor<D>, Tensor<1, Int>)> {
    let mut shape = [pool.batch; D];
    shape[1..].copy_from_slice(&pool.sample);
    pool.inputs
        .iter()
        .zip(&pool.labels)
        .map(|(x, y)| {
            let labels: Vec<i64> = y.iter().map(|&l| l as i64).collect();
            (
                Tensor::from_data(TensorData::new(x.clone(), shape), device),
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
        let model = Mlp::new(&device);
        let (opt, lr) = if adam {
            (AdamConfig::new().init(), 1e-3)
        } else {
            (SgdConfig::new().init(), 0.01)
        };
        training_steps(tensors::<2>(&pool, &device), model, Mlp::forward, opt, lr)
    }

    fn infer(&self, pool: Pool) -> Box<dyn FnMut(usize)> {
        let device = Device::flex();
        let model = Mlp::new(&device);
        let batches = tensors::<2>(&pool, &device);
        let mut k = 0;
        Box::new(move |iters| {
            for _ in 0..iters {
                let _ = model.forward(batches[k % batches.len()].0.clone());
                k += 1;
            }
        })
    }

    fn train_cnn(&self, pool: Pool, net: Cnn) -> Box<dyn FnMut(usize)> {
        let device = Device::flex().autodiff();
        let model = Net::new(net, &device);
        let momentum = MomentumConfig::new().with_momentum(0.9).with_dampening(0.0);
        let opt = SgdConfig::new().with_momentum(Some(momentum)).init();
        training_steps(tensors::<4>(&pool, &device), model, Net::forward, opt, 0.01)
    }
}
