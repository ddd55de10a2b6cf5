//! Every activation and loss through `ferrograd_core::gradcheck` in f64 on random inputs (one
//! table line per function), and the behaviour of layers, the MLP builder, dropout and the
//! optimizers: Linear against a naive `x W^T + b`, parameter names and shapes, eval-mode dropout,
//! missing gradients, optimizer state round trips, and a tiny MLP learning XOR.

use std::str::FromStr;

use ferrograd_core::{DType, GradcheckOptions, Result, Rng, Tensor, gradcheck};
use ferrograd_nn::activation::{self as act, Activation};
use ferrograd_nn::loss::{BceOptions, ClassLossOptions, Reduction};
use ferrograd_nn::{
    Adagrad, AdagradConfig, Adam, AdamConfig, Dropout, Embedding, EmbeddingConfig, Linear,
    LinearConfig, Maxout, MlpConfig, Module, Optimizer, PRelu, RmsProp, RmsPropConfig,
    RuleOptimizer, Sgd, SgdConfig, UpdateRule, clip_grad_value, loss, mlp, named_params,
};

type CaseFn = fn(&[Tensor]) -> Result<Tensor>;

/// One function under gradcheck: its inputs are drawn uniformly, each from its own range.
struct Case {
    name: &'static str,
    inputs: &'static [(&'static [usize], (f64, f64))],
    f: CaseFn,
}

const WIDE: (f64, f64) = (-4.0, 4.0);
const UNIT: (f64, f64) = (-1.0, 1.0);
const PROB: (f64, f64) = (0.05, 0.95);

fn labels() -> Result<Tensor> {
    Tensor::from_vec(vec![2i64, 0, 4, 2], &[4])
}

macro_rules! cases {
    ($($name:literal, [$($shape:expr => $domain:expr),*], $f:expr;)*) => {
        &[$(Case { name: $name, inputs: &[$(($shape, $domain)),*], f: $f }),*]
    };
}

/// Every activation and loss of ferrograd-nn, plus the layers with parameters.
const CASES: &[Case] = cases! {
    "sigmoid", [&[3, 4] => WIDE], |x| act::sigmoid(&x[0]);
    "tanh", [&[3, 4] => WIDE], |x| act::tanh(&x[0]);
    "hard_sigmoid", [&[3, 4] => WIDE], |x| act::hard_sigmoid(&x[0]);
    "hard_tanh", [&[3, 4] => WIDE], |x| act::hard_tanh(&x[0]);
    "relu", [&[3, 4] => WIDE], |x| act::relu(&x[0]);
    "leaky_relu", [&[3, 4] => WIDE], |x| act::leaky_relu(&x[0], 0.1);
    "prelu", [&[3, 4] => WIDE, &[4] => UNIT], |x| act::prelu(&x[0], &x[1]);
    "prelu_layer_shared", [&[2, 3, 4] => WIDE, &[1] => UNIT],
        |x| PRelu { weight: x[1].clone() }.forward(&x[0]);
    "elu", [&[3, 4] => WIDE], |x| act::elu(&x[0], 1.0);
    "elu_0.5", [&[3, 4] => WIDE], |x| act::elu(&x[0], 0.5);
    "softplus", [&[3, 4] => (-30.0, 30.0)], |x| act::softplus(&x[0]);
    "silu", [&[3, 4] => WIDE], |x| act::silu(&x[0]);
    "gelu", [&[3, 4] => WIDE], |x| act::gelu(&x[0]);
    "gelu_tanh", [&[3, 4] => WIDE], |x| act::gelu_tanh(&x[0]);
    "maxout", [&[3, 6] => WIDE], |x| act::maxout(&x[0], 3);
    "maxout_layer", [&[2, 2, 4] => WIDE], |x| Maxout(2).forward(&x[0]);
    "softmax", [&[3, 5] => WIDE], |x| Activation::Softmax.forward(&x[0]);
    "log_softmax", [&[3, 5] => WIDE], |x| Activation::LogSoftmax.forward(&x[0]);
    "linear", [&[5, 3] => UNIT, &[2, 3] => UNIT, &[2] => UNIT],
        |x| Linear::from_tensors(x[1].clone(), Some(x[2].clone()))?.forward(&x[0]);
    "linear_no_bias_batched", [&[2, 4, 3] => UNIT, &[2, 3] => UNIT],
        |x| Linear::from_tensors(x[1].clone(), None)?.forward(&x[0]);
    "mse", [&[3, 4] => WIDE, &[3, 4] => WIDE], |x| loss::mse(&x[0], &x[1]);
    "l1", [&[3, 4] => WIDE, &[3, 4] => WIDE], |x| loss::l1(&x[0], &x[1]);
    "huber", [&[3, 4] => WIDE, &[3, 4] => UNIT], |x| loss::huber(&x[0], &x[1], 1.0);
    "huber_0.5", [&[3, 4] => UNIT, &[3, 4] => UNIT], |x| loss::huber(&x[0], &x[1], 0.5);
    "binary_cross_entropy", [&[3, 4] => PROB, &[3, 4] => (0.0, 1.0)],
        |x| loss::binary_cross_entropy(&x[0], &x[1]);
    "binary_cross_entropy_with_logits", [&[3, 4] => (-6.0, 6.0), &[3, 4] => (0.0, 1.0)],
        |x| loss::binary_cross_entropy_with_logits(&x[0], &x[1]);
    "cross_entropy", [&[4, 5] => WIDE], |x| loss::cross_entropy(&x[0], &labels()?, 0.0);
    "cross_entropy_smoothed", [&[4, 5] => WIDE], |x| loss::cross_entropy(&x[0], &labels()?, 0.1);
    "nll", [&[4, 5] => (-4.0, 0.0)], |x| loss::nll(&x[0], &labels()?);
    "nll_of_log_softmax", [&[4, 5] => WIDE], |x| loss::nll(&x[0].log_softmax(-1)?, &labels()?);
    "mse_sum", [&[3, 4] => WIDE, &[3, 4] => WIDE], |x| loss::mse_with(&x[0], &x[1], Reduction::Sum);
    "huber_none", [&[3, 4] => WIDE, &[3, 4] => UNIT],
        |x| loss::huber_with(&x[0], &x[1], 1.0, Reduction::None);
    "bce_logits_pos_weight", [&[3, 4] => (-6.0, 6.0), &[3, 4] => (0.0, 1.0), &[4] => (0.5, 3.0)],
        |x| {
            let opts = BceOptions { pos_weight: Some(&x[2]), ..Default::default() };
            loss::bce_with_logits(&x[0], &x[1], &opts)
        };
    "cross_entropy_weight_ignore_smoothing", [&[4, 5] => WIDE, &[5] => (0.2, 2.0)], |x| {
        let opts = ClassLossOptions {
            weight: Some(&x[1]), ignore_index: Some(0), label_smoothing: 0.2, ..Default::default()
        };
        loss::cross_entropy_with(&x[0], &labels()?, &opts)
    };
    "cross_entropy_spatial_soft", [&[2, 3, 2, 2] => WIDE, &[2, 3, 2, 2] => (0.0, 1.0)], |x| {
        let opts = ClassLossOptions { reduction: Reduction::Sum, ..Default::default() };
        loss::cross_entropy_with(&x[0], &x[1].softmax(1)?, &opts)
    };
    "nll_spatial_none", [&[2, 5, 2] => (-4.0, 0.0)], |x| {
        let labels = labels()?.reshape(&[2, 2])?;
        let opts = ClassLossOptions { reduction: Reduction::None, ..Default::default() };
        loss::nll_with(&x[0], &labels, &opts)
    };
    "kl_div", [&[3, 4] => WIDE, &[3, 4] => WIDE],
        |x| loss::kl_div(&x[0].log_softmax(-1)?, &x[1].softmax(-1)?, false, Reduction::BatchMean);
    "kl_div_log_target", [&[3, 4] => WIDE, &[3, 4] => WIDE],
        |x| loss::kl_div(&x[0], &x[1].log_softmax(-1)?, true, Reduction::Mean);
    // The padding row passes no gradient by design (finite differences would see its value),
    // so it is left out of the lookups here; see the embedding test below.
    "embedding", [&[6, 3] => WIDE], |x| {
        let idx = Tensor::from_vec(vec![0i64, 2, 5, 2, 1, 0], &[2, 3])?;
        Embedding::from_tensor(x[0].clone(), Some(3))?.forward(&idx)?.sin()
    };
};

fn seed_of(name: &str) -> u64 {
    name.bytes().fold(1469598103934665603u64, |h, b| {
        (h ^ b as u64).wrapping_mul(1099511628211)
    })
}

fn random_inputs(case: &Case) -> Vec<Tensor> {
    let mut rng = Rng::new(seed_of(case.name));
    case.inputs
        .iter()
        .map(|(shape, (lo, hi))| {
            Tensor::rand_uniform(shape, *lo, *hi, DType::F64, &mut rng).unwrap()
        })
        .collect()
}

#[test]
fn activations_and_losses_pass_gradcheck() {
    let mut failures = Vec::new();
    for case in CASES {
        let inputs = random_inputs(case);
        match gradcheck(case.f, &inputs, &GradcheckOptions::default()) {
            Ok(report) if report.passed() && report.checked > 0 => {}
            Ok(report) => failures.push(format!("{}: {report}", case.name)),
            Err(e) => failures.push(format!("{}: error {e}", case.name)),
        }
    }
    assert!(
        failures.is_empty(),
        "gradcheck failures:\n{}",
        failures.join("\n")
    );
}

/// Every name the command line accepts parses to an activation that passes gradcheck (through
/// `Activation::forward`, the path the MLP uses).
#[test]
fn every_named_activation_passes_gradcheck() {
    let mut failures = Vec::new();
    for name in Activation::NAMES {
        let a = Activation::from_str(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut rng = Rng::new(seed_of(name));
        let x = Tensor::rand_uniform(&[3, 4], -4.0, 4.0, DType::F64, &mut rng).unwrap();
        match gradcheck(|v| a.forward(&v[0]), &[x], &GradcheckOptions::default()) {
            Ok(report) if report.passed() => {}
            Ok(report) => failures.push(format!("{name} ({a}): {report}")),
            Err(e) => failures.push(format!("{name} ({a}): error {e}")),
        }
    }
    assert!(
        failures.is_empty(),
        "gradcheck failures:\n{}",
        failures.join("\n")
    );
}

#[test]
fn linear_forward_is_x_w_transposed_plus_b() {
    let mut rng = Rng::new(11);
    let layer = Linear::new(4, 3, LinearConfig::default(), DType::F64, &mut rng).unwrap();
    assert_eq!((layer.in_features(), layer.out_features()), (4, 3));
    assert_eq!(layer.weight.shape(), &[3, 4]);
    let x = Tensor::randn(&[5, 4], 0.0, 1.0, DType::F64, &mut rng).unwrap();
    let got = layer.forward(&x).unwrap();
    assert_eq!(got.shape(), &[5, 3]);

    let (xv, wv) = (
        x.to_vec::<f64>().unwrap(),
        layer.weight.to_vec::<f64>().unwrap(),
    );
    let bv = layer
        .bias
        .as_ref()
        .expect("default Linear has a bias")
        .to_vec::<f64>()
        .unwrap();
    let mut want = vec![0.0; 5 * 3];
    for i in 0..5 {
        for o in 0..3 {
            want[i * 3 + o] = bv[o] + (0..4).map(|k| xv[i * 4 + k] * wv[o * 4 + k]).sum::<f64>();
        }
    }
    for (g, w) in got.to_vec::<f64>().unwrap().iter().zip(&want) {
        assert!((g - w).abs() <= 1e-12 * (1.0 + w.abs()), "{g} vs {w}");
    }

    let no_bias = Linear::from_tensors(layer.weight.clone(), None).unwrap();
    let got = no_bias.forward(&x).unwrap().to_vec::<f64>().unwrap();
    for ((g, w), o) in got.iter().zip(&want).zip((0..15).map(|i| i % 3)) {
        assert!(
            (g - (w - bv[o])).abs() <= 1e-12 * (1.0 + w.abs()),
            "{g} vs {}",
            w - bv[o]
        );
    }

    // Bad input width, bad bias shape.
    assert!(
        layer
            .forward(&Tensor::ones(&[5, 3], DType::F64).unwrap())
            .is_err()
    );
    assert!(
        Linear::from_tensors(
            layer.weight.clone(),
            Some(Tensor::ones(&[4], DType::F64).unwrap())
        )
        .is_err()
    );
}

fn shapes(m: &dyn Module) -> Vec<(String, Vec<usize>)> {
    named_params(m)
        .into_iter()
        .map(|(n, t)| (n, t.shape().to_vec()))
        .collect()
}

fn owned(expected: &[(&str, &[usize])]) -> Vec<(String, Vec<usize>)> {
    expected
        .iter()
        .map(|(n, s)| (n.to_string(), s.to_vec()))
        .collect()
}

#[test]
fn mlp_parameter_names_and_shapes() {
    let mut rng = Rng::new(0);
    let cfg = |hidden: Vec<usize>, activation, dropout| MlpConfig {
        input: 4,
        hidden,
        output: 3,
        activation,
        dropout,
    };

    let m = mlp(
        &cfg(vec![8, 6], Activation::Relu, 0.0),
        DType::F64,
        &mut rng,
    )
    .unwrap();
    assert_eq!(
        shapes(&m),
        owned(&[
            ("layers.0.weight", &[8, 4]),
            ("layers.0.bias", &[8]),
            ("layers.2.weight", &[6, 8]),
            ("layers.2.bias", &[6]),
            ("layers.4.weight", &[3, 6]),
            ("layers.4.bias", &[3]),
        ])
    );
    assert!(
        named_params(&m)
            .iter()
            .all(|(_, t)| t.requires_grad() && t.dtype() == DType::F64)
    );
    assert_eq!(m.len(), 5);

    // Dropout layers count in the indices, as in PyTorch.
    let m = mlp(&cfg(vec![8], Activation::Tanh, 0.2), DType::F32, &mut rng).unwrap();
    assert_eq!(
        shapes(&m),
        owned(&[
            ("layers.0.weight", &[8, 4]),
            ("layers.0.bias", &[8]),
            ("layers.3.weight", &[3, 8]),
            ("layers.3.bias", &[3])
        ])
    );

    // PReLU has one learnable slope per hidden layer.
    let m = mlp(&cfg(vec![5], Activation::PRelu, 0.0), DType::F64, &mut rng).unwrap();
    assert_eq!(
        shapes(&m),
        owned(&[
            ("layers.0.weight", &[5, 4]),
            ("layers.0.bias", &[5]),
            ("layers.1.weight", &[1]),
            ("layers.2.weight", &[3, 5]),
            ("layers.2.bias", &[3])
        ])
    );

    // Maxout's linear layer produces k pieces per unit.
    let m = mlp(
        &cfg(vec![5], Activation::Maxout(3), 0.0),
        DType::F64,
        &mut rng,
    )
    .unwrap();
    assert_eq!(
        shapes(&m),
        owned(&[
            ("layers.0.weight", &[15, 4]),
            ("layers.0.bias", &[15]),
            ("layers.2.weight", &[3, 5]),
            ("layers.2.bias", &[3])
        ])
    );
    assert_eq!(
        m.forward(&Tensor::ones(&[2, 4], DType::F64).unwrap())
            .unwrap()
            .shape(),
        &[2, 3]
    );

    // No hidden layer: softmax regression.
    let m = mlp(&cfg(vec![], Activation::Relu, 0.0), DType::F64, &mut rng).unwrap();
    assert_eq!(
        shapes(&m),
        owned(&[("layers.0.weight", &[3, 4]), ("layers.0.bias", &[3])])
    );

    assert!(mlp(&cfg(vec![0], Activation::Relu, 0.0), DType::F64, &mut rng).is_err());
    assert!(mlp(&cfg(vec![4], Activation::Relu, 1.0), DType::F64, &mut rng).is_err());
}

#[test]
fn dropout_in_eval_mode_is_the_identity() {
    let mut rng = Rng::new(5);
    let x = Tensor::randn(&[4, 7], 0.0, 1.0, DType::F64, &mut rng).unwrap();
    let d = Dropout::new(0.5, rng.fork()).unwrap();
    assert_ne!(
        d.forward(&x).unwrap().to_vec::<f64>().unwrap(),
        x.to_vec::<f64>().unwrap()
    );
    d.set_training(false);
    assert_eq!(
        d.forward(&x).unwrap().to_vec::<f64>().unwrap(),
        x.to_vec::<f64>().unwrap()
    );

    // Through a model: eval mode makes the forward deterministic and dropout-free.
    let cfg = MlpConfig {
        input: 7,
        hidden: vec![16],
        output: 2,
        activation: Activation::Relu,
        dropout: 0.5,
    };
    let m = mlp(&cfg, DType::F64, &mut rng).unwrap();
    m.set_training(false);
    let a = m.forward(&x).unwrap().to_vec::<f64>().unwrap();
    let b = m.forward(&x).unwrap().to_vec::<f64>().unwrap();
    assert_eq!(a, b);
    let outs = m.forward_all(&x).unwrap();
    assert_eq!(
        outs[2].to_vec::<f64>().unwrap(),
        outs[1].to_vec::<f64>().unwrap(),
        "dropout layer changed its input"
    );
}

fn param(values: Vec<f64>, shape: &[usize]) -> Tensor {
    Tensor::from_vec(values, shape)
        .unwrap()
        .with_requires_grad(true)
}

#[test]
fn step_without_a_gradient_names_the_parameter() {
    let used = param(vec![1.0, -2.0, 0.5], &[3]);
    let unused = param(vec![3.0, 4.0], &[2]);
    let params = vec![
        ("layers.0.weight".to_string(), used.clone()),
        ("layers.0.bias".to_string(), unused.clone()),
    ];
    let mut opt = Adam::new(
        params,
        AdamConfig {
            lr: 0.1,
            ..Default::default()
        },
    )
    .unwrap();
    let grads = used
        .square()
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let e = opt
        .step(&grads)
        .expect_err("a parameter without gradient must be an error");
    let msg = e.to_string();
    assert!(
        msg.contains("layers.0.bias"),
        "error does not name the parameter: {msg}"
    );
    assert!(
        !msg.contains("layers.0.weight"),
        "error names the wrong parameter: {msg}"
    );
    // The failed step changes nothing: no parameter, no state, no step count.
    assert_eq!(
        used.to_vec::<f64>().unwrap(),
        vec![1.0, -2.0, 0.5],
        "a failed step updated a parameter"
    );
    assert_eq!(unused.to_vec::<f64>().unwrap(), vec![3.0, 4.0]);
    assert_eq!(opt.steps(), 0);
    assert_eq!(
        opt.state().len(),
        1,
        "a failed step left optimizer state: {:?}",
        opt.state().iter().map(|(k, _)| k).collect::<Vec<_>>()
    );
}

// ---------------------------------------------------------------------------------------------
// Optimizer state round trips.

type MakeOpt = fn(Vec<(String, Tensor)>) -> Box<dyn Optimizer>;

fn boxed(opt: Result<impl Optimizer + 'static>) -> Box<dyn Optimizer> {
    Box::new(opt.unwrap())
}

/// One optimizer per update rule, each with every state buffer in use.
const STATEFUL: &[(&str, MakeOpt)] = &[
    ("sgd_nesterov", |p| boxed(Sgd::new(p, SGD_NESTEROV))),
    ("adam", |p| boxed(Adam::new(p, ADAM))),
    ("adamw", |p| boxed(Adam::new(p, ADAMW))),
    ("rmsprop_centered", |p| {
        boxed(RmsProp::new(p, RMSPROP_CENTERED))
    }),
    ("adagrad", |p| boxed(Adagrad::new(p, ADAGRAD))),
];

const SGD_NESTEROV: SgdConfig = SgdConfig {
    lr: 0.1,
    momentum: 0.9,
    dampening: 0.0,
    nesterov: true,
    weight_decay: 0.01,
};
const ADAM: AdamConfig = AdamConfig {
    lr: 0.1,
    betas: (0.9, 0.999),
    eps: 1e-8,
    weight_decay: 0.0,
    decoupled: false,
    amsgrad: false,
};
const ADAMW: AdamConfig = AdamConfig {
    weight_decay: 0.1,
    decoupled: true,
    ..ADAM
};
const RMSPROP_CENTERED: RmsPropConfig = RmsPropConfig {
    lr: 0.05,
    alpha: 0.99,
    eps: 1e-8,
    weight_decay: 0.0,
    momentum: 0.5,
    centered: true,
};
const ADAGRAD: AdagradConfig = AdagradConfig {
    lr: 0.1,
    lr_decay: 0.1,
    weight_decay: 0.0,
    initial_accumulator_value: 0.1,
    eps: 1e-10,
};

/// Fresh parameters `W [3, 2]` and `b [2]` with fixed values.
fn problem_params() -> Vec<(String, Tensor)> {
    vec![
        (
            "W".to_string(),
            param(vec![0.5, -0.3, 0.8, 0.1, -0.6, 0.4], &[3, 2]),
        ),
        ("b".to_string(), param(vec![0.2, -0.1], &[2])),
    ]
}

fn problem_step(opt: &mut dyn Optimizer) {
    let (w, b) = (opt.params()[0].1.clone(), opt.params()[1].1.clone());
    let x = Tensor::from_vec(
        vec![0.3, -1.1, 0.7, 1.2, 0.4, -0.5, -0.8, 0.9, 0.2],
        &[3, 3],
    )
    .unwrap();
    let y = Tensor::from_vec(vec![0.5, -0.5, 0.1, 0.9, -0.3, 0.2], &[3, 2]).unwrap();
    let loss = x
        .matmul(&w)
        .unwrap()
        .add(&b)
        .unwrap()
        .tanh()
        .unwrap()
        .sub(&y)
        .unwrap();
    let loss = loss
        .square()
        .unwrap()
        .sum_all()
        .unwrap()
        .add(&w.sin().unwrap().sum_all().unwrap())
        .unwrap();
    opt.step(&loss.backward().unwrap()).unwrap();
}

fn values(opt: &dyn Optimizer) -> Vec<Vec<f64>> {
    opt.params()
        .iter()
        .map(|(_, t)| t.to_vec::<f64>().unwrap())
        .collect()
}

/// A deep copy, as if the state went through a checkpoint file.
fn copy_state(state: &[(String, Tensor)]) -> Vec<(String, Tensor)> {
    state
        .iter()
        .map(|(k, t)| {
            let t = match t.dtype() {
                DType::I64 => Tensor::from_vec(t.to_vec::<i64>().unwrap(), t.shape()),
                DType::F64 => Tensor::from_vec(t.to_vec::<f64>().unwrap(), t.shape()),
                DType::F32 => Tensor::from_vec(t.to_vec::<f32>().unwrap(), t.shape()),
            };
            (k.clone(), t.unwrap())
        })
        .collect()
}

#[test]
fn state_round_trip_continues_the_trajectory_exactly() {
    for (name, make) in STATEFUL {
        let mut straight = make(problem_params());
        for _ in 0..3 {
            problem_step(straight.as_mut());
        }

        let mut first = make(problem_params());
        problem_step(first.as_mut());
        let state = copy_state(&first.state());
        let params = first.params().to_vec();
        drop(first);
        assert!(
            state.iter().any(|(k, _)| k == "step"),
            "{name}: no step in state"
        );
        assert!(state.len() > 1, "{name}: no buffers in state");
        let mut resumed = make(params);
        resumed
            .load_state(&state)
            .unwrap_or_else(|e| panic!("{name}: load_state: {e}"));
        for _ in 0..2 {
            problem_step(resumed.as_mut());
        }
        assert_eq!(
            values(resumed.as_ref()),
            values(straight.as_ref()),
            "{name}: resumed trajectory differs"
        );

        // Without the state, the trajectory differs (the test is not vacuous).
        let mut fresh = make(problem_params());
        problem_step(fresh.as_mut());
        let mut restarted = make(fresh.params().to_vec());
        for _ in 0..2 {
            problem_step(restarted.as_mut());
        }
        assert_ne!(
            values(restarted.as_ref()),
            values(straight.as_ref()),
            "{name}: state made no difference"
        );
    }
}

#[test]
fn load_state_rejects_wrong_shapes_and_missing_step() {
    let mut opt = Adam::new(problem_params(), AdamConfig::default()).unwrap();
    problem_step(&mut opt);
    let state = opt.state();
    let keys: Vec<&str> = state.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "step",
            "W.exp_avg",
            "W.exp_avg_sq",
            "b.exp_avg",
            "b.exp_avg_sq"
        ]
    );

    let mut wrong = copy_state(&state);
    let slot = wrong.iter_mut().find(|(k, _)| k == "W.exp_avg_sq").unwrap();
    slot.1 = Tensor::zeros(&[2, 3], DType::F64).unwrap();
    let mut fresh = Adam::new(problem_params(), AdamConfig::default()).unwrap();
    let msg = fresh
        .load_state(&wrong)
        .expect_err("wrong shape must be rejected")
        .to_string();
    assert!(
        msg.contains("W.exp_avg_sq"),
        "error does not name the entry: {msg}"
    );
    assert_eq!(fresh.steps(), 0, "a failed load changed the step count");
    assert_eq!(fresh.state().len(), 1, "a failed load left buffers behind");

    let mut wrong_dtype = copy_state(&state);
    wrong_dtype[1].1 = Tensor::zeros(&[3, 2], DType::F32).unwrap();
    assert!(
        fresh.load_state(&wrong_dtype).is_err(),
        "wrong dtype must be rejected"
    );

    // The state of a differently shaped model.
    let other = vec![
        ("W".to_string(), param(vec![0.0; 4], &[2, 2])),
        ("b".to_string(), param(vec![0.0; 2], &[2])),
    ];
    let mut other = Adam::new(other, AdamConfig::default()).unwrap();
    assert!(other.load_state(&state).is_err());

    let no_step: Vec<_> = copy_state(&state)
        .into_iter()
        .filter(|(k, _)| k != "step")
        .collect();
    assert!(
        fresh.load_state(&no_step).is_err(),
        "missing step must be rejected"
    );
    fresh.load_state(&state).unwrap();
    assert_eq!(fresh.steps(), 1);
}

#[test]
fn mlp_learns_xor_with_adam() {
    let mut rng = Rng::new(42);
    let cfg = MlpConfig {
        input: 2,
        hidden: vec![8],
        output: 2,
        activation: Activation::Tanh,
        dropout: 0.0,
    };
    let model = mlp(&cfg, DType::F64, &mut rng).unwrap();
    let mut opt = Adam::new(
        named_params(&model),
        AdamConfig {
            lr: 0.05,
            ..Default::default()
        },
    )
    .unwrap();
    let x = Tensor::from_vec(vec![0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0], &[4, 2]).unwrap();
    let y = Tensor::from_vec(vec![0i64, 1, 1, 0], &[4]).unwrap();
    let mut last = f64::INFINITY;
    for _ in 0..300 {
        let l = loss::cross_entropy(&model.forward(&x).unwrap(), &y, 0.0).unwrap();
        last = l.item().unwrap();
        opt.step(&l.backward().unwrap()).unwrap();
    }
    assert!(last < 0.05, "XOR loss after 300 Adam steps: {last}");
    let logits = model.forward(&x).unwrap();
    assert_eq!(ferrograd_nn::accuracy(&logits, &y).unwrap(), 1.0);
}

#[test]
fn embedding_looks_up_rows_and_leaves_the_padding_row_untrained() {
    let w = Tensor::from_vec((0..8).map(f64::from).collect(), &[4, 2])
        .unwrap()
        .with_requires_grad(true);
    let e = Embedding::from_tensor(w.clone(), Some(2)).unwrap();
    let idx = Tensor::from_vec(vec![3i64, 2, 3, 0], &[2, 2]).unwrap();
    let y = e.forward(&idx).unwrap();
    assert_eq!(y.shape(), &[2, 2, 2]);
    assert_eq!(
        y.to_vec::<f64>().unwrap(),
        vec![6.0, 7.0, 4.0, 5.0, 6.0, 7.0, 0.0, 1.0]
    );
    let g = y.sum_all().unwrap().backward().unwrap();
    // Row 3 is used twice; the padding row 2 gets nothing although it is looked up.
    assert_eq!(
        g.get(&w).unwrap().to_vec::<f64>().unwrap(),
        vec![1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 2.0, 2.0]
    );
    let fresh = Embedding::new(
        5,
        3,
        EmbeddingConfig {
            padding_idx: Some(4),
            ..Default::default()
        },
        DType::F32,
        &mut Rng::new(1),
    )
    .unwrap();
    assert_eq!(
        fresh
            .weight
            .narrow(0, 4, 1)
            .unwrap()
            .to_vec::<f32>()
            .unwrap(),
        vec![0.0; 3]
    );
    assert_eq!(named_params(&fresh)[0].0, "weight");
    assert!(
        Embedding::new(
            5,
            3,
            EmbeddingConfig {
                padding_idx: Some(5),
                ..Default::default()
            },
            DType::F32,
            &mut Rng::new(1)
        )
        .is_err()
    );
    assert!(
        e.forward(&Tensor::from_vec(vec![4i64], &[1]).unwrap())
            .is_err()
    );
    assert!(e.forward(&Tensor::ones(&[2], DType::F64).unwrap()).is_err());
}

#[test]
fn clip_grad_value_clamps_each_gradient() {
    let w = param(vec![3.0, -0.25, -2.0], &[3]);
    let unused = param(vec![1.0], &[1]);
    let mut grads = w.mul(&w).unwrap().sum_all().unwrap().backward().unwrap();
    clip_grad_value(&mut grads, &[w.clone(), unused.clone()], 1.0).unwrap();
    assert_eq!(
        grads.get(&w).unwrap().to_vec::<f64>().unwrap(),
        vec![1.0, -0.5, -1.0]
    );
    assert!(grads.get(&unused).is_none());
    assert!(clip_grad_value(&mut grads, &[w], f64::NAN).is_err());
}

#[test]
fn class_losses_refuse_bad_targets_with_named_errors() {
    let logits = Tensor::zeros(&[2, 3], DType::F64).unwrap();
    let bad_label = Tensor::from_vec(vec![0i64, 3], &[2]).unwrap();
    assert!(
        loss::cross_entropy_with(
            &logits,
            &bad_label,
            &ClassLossOptions {
                ignore_index: Some(-1),
                ..Default::default()
            }
        )
        .is_err()
    );
    let wrong_shape = Tensor::from_vec(vec![0i64, 1, 2], &[3]).unwrap();
    assert!(loss::cross_entropy(&logits, &wrong_shape, 0.0).is_err());
    let w = Tensor::ones(&[4], DType::F64).unwrap();
    let labels = Tensor::from_vec(vec![0i64, 1], &[2]).unwrap();
    let opts = ClassLossOptions {
        weight: Some(&w),
        ..Default::default()
    };
    assert!(loss::nll_with(&logits, &labels, &opts).is_err());
    let soft = Tensor::ones(&[2, 3], DType::F64).unwrap();
    let opts = ClassLossOptions {
        ignore_index: Some(0),
        ..Default::default()
    };
    assert!(loss::cross_entropy_with(&logits, &soft, &opts).is_err());
    let opts = ClassLossOptions {
        label_smoothing: 0.1,
        ..Default::default()
    };
    assert!(loss::nll_with(&logits, &labels, &opts).is_err());
    assert!(loss::cross_entropy(&Tensor::zeros(&[3], DType::F64).unwrap(), &labels, 0.0).is_err());
    assert!(loss::kl_div(&logits, &w, false, Reduction::Sum).is_err());
}

/// Five steps on `f(w) = sum(sin(w) w^2)` (negated when `sign` is -1); the weights after each.
fn steps_on<R: UpdateRule>(rule: R, maximize: bool, sign: f64) -> Vec<Vec<f64>> {
    let w = param(vec![0.5, -1.2, 2.0], &[3]);
    let mut opt = RuleOptimizer::new(vec![("w".into(), w.clone())], rule)
        .unwrap()
        .maximize(maximize);
    assert_eq!(opt.maximizes(), maximize);
    (0..5)
        .map(|_| {
            let f = w
                .sin()
                .unwrap()
                .mul(&w.square().unwrap())
                .unwrap()
                .sum_all()
                .unwrap();
            opt.step(&f.mul_scalar(sign).unwrap().backward().unwrap())
                .unwrap();
            w.to_vec::<f64>().unwrap()
        })
        .collect()
}

#[test]
fn maximizing_the_negated_objective_retraces_minimization_exactly() {
    // From the second step on the update runs compiled, so both paths are covered.
    let adam = AdamConfig {
        lr: 0.1,
        amsgrad: true,
        weight_decay: 0.1,
        ..AdamConfig::default()
    };
    assert_eq!(steps_on(adam, true, -1.0), steps_on(adam, false, 1.0));
    let sgd = SgdConfig {
        lr: 0.05,
        momentum: 0.9,
        weight_decay: 0.01,
        ..SgdConfig::default()
    };
    assert_eq!(steps_on(sgd, true, -1.0), steps_on(sgd, false, 1.0));
    assert_eq!(
        steps_on(RMSPROP_CENTERED, true, -1.0),
        steps_on(RMSPROP_CENTERED, false, 1.0)
    );
    assert_eq!(steps_on(ADAGRAD, true, -1.0), steps_on(ADAGRAD, false, 1.0));
    // And maximizing really goes uphill.
    let up = steps_on(sgd, true, 1.0);
    let down = steps_on(sgd, false, 1.0);
    assert_ne!(up, down);
}
