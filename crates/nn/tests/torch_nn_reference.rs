//! ferrograd-nn against PyTorch: activations, losses (with every reduction and option),
//! optimizers (with AMSGrad and `maximize`), gradient clipping and learning-rate schedules, with the PyTorch values frozen in
//! `tests/reference/torch_nn_reference.json`, so this test needs no PyTorch to run.
//!
//! The JSON is written by `tests/reference/generate.py` (rerun it with
//! `/path/to/python crates/nn/tests/reference/generate.py`). Each section has one generic
//! driver here and one table mapping a case name to the ferrograd code that rebuilds it, so
//! adding a case is one line in `generate.py` and one line in a table. A JSON case without a
//! table entry, or a table entry without a JSON case, fails the test. The file is read, and
//! its activation and loss cases checked, by `ferrograd_testkit::reference` (shared with
//! ferrograd-core's reference test).
//!
//! Tolerances (each as `|got - want| <= tol * (1 + |want|)`): forward values and gradients
//! 1e-10 in f64 (f32 forward values 1e-5), optimizer trajectories 1e-9, clipping and
//! schedules 1e-12.

use ferrograd_core::{DType, GradStore, Result, Tensor};
use ferrograd_nn::activation::{self as act, Activation};
use ferrograd_nn::loss::{BceOptions, ClassLossOptions, Reduction};
use ferrograd_nn::{
    Adagrad, AdagradConfig, Adam, AdamConfig, LrSchedule, Maxout, Module, Optimizer, PRelu,
    RmsProp, RmsPropConfig, Schedule, Sgd, SgdConfig, clip_grad_norm, loss,
};
use ferrograd_testkit::reference::{
    Check, Differentiated, ForwardCheck, ForwardFn, Reference, Stored, Value, all_passed, close,
    compare,
};

const REFERENCE: &str = include_str!("reference/torch_nn_reference.json");
const TOL_TRAJECTORY: f64 = 1e-9;
const TOL_EXACTISH: f64 = 1e-12;

/// Activations and losses: each input says whether it is differentiated.
const FORWARD: ForwardCheck = ForwardCheck {
    differentiated: Differentiated::Flagged,
    tol_f64: 1e-10,
    tol_f32: 1e-5,
};

/// `table! { "name" => entry; ... }`: a `&[(name, entry)]` table, one line per case.
macro_rules! table {
    ($($name:literal => $entry:expr;)*) => {
        &[$(($name, $entry)),*]
    };
}

/// Every activation case of the JSON, by name.
const ACTIVATIONS: &[(&str, ForwardFn)] = table! {
    "sigmoid" => |x| act::sigmoid(&x[0]);
    "tanh" => |x| act::tanh(&x[0]);
    "hard_sigmoid" => |x| act::hard_sigmoid(&x[0]);
    "hard_tanh" => |x| act::hard_tanh(&x[0]);
    "relu" => |x| act::relu(&x[0]);
    "leaky_relu_0.1" => |x| act::leaky_relu(&x[0], 0.1);
    "elu_1" => |x| act::elu(&x[0], 1.0);
    "elu_0.5" => |x| act::elu(&x[0], 0.5);
    "softplus" => |x| act::softplus(&x[0]);
    "silu" => |x| act::silu(&x[0]);
    "gelu" => |x| act::gelu(&x[0]);
    "gelu_tanh" => |x| act::gelu_tanh(&x[0]);
    "softmax" => |x| Activation::Softmax.forward(&x[0]);
    "log_softmax" => |x| Activation::LogSoftmax.forward(&x[0]);
    "prelu_per_feature" => |x| PRelu { weight: x[1].clone() }.forward(&x[0]);
    "prelu_shared" => |x| PRelu { weight: x[1].clone() }.forward(&x[0]);
    "maxout_2" => |x| Maxout(2).forward(&x[0]);
    "maxout_3" => |x| act::maxout(&x[0], 3);
};

/// Every loss case of the JSON, by name.
const LOSSES: &[(&str, ForwardFn)] = table! {
    "mse" => |x| loss::mse(&x[0], &x[1]);
    "l1" => |x| loss::l1(&x[0], &x[1]);
    "huber_1.0" => |x| loss::huber(&x[0], &x[1], 1.0);
    "huber_0.5" => |x| loss::huber(&x[0], &x[1], 0.5);
    "binary_cross_entropy" => |x| loss::binary_cross_entropy(&x[0], &x[1]);
    "binary_cross_entropy_with_logits" => |x| loss::binary_cross_entropy_with_logits(&x[0], &x[1]);
    "cross_entropy_ls_0.0" => |x| loss::cross_entropy(&x[0], &x[1], 0.0);
    "cross_entropy_ls_0.1" => |x| loss::cross_entropy(&x[0], &x[1], 0.1);
    "nll" => |x| loss::nll(&x[0], &x[1]);
};

/// Class-loss options from their four fields.
fn class_opts(
    weight: Option<&Tensor>,
    ignore_index: Option<i64>,
    label_smoothing: f64,
    reduction: Reduction,
) -> ClassLossOptions<'_> {
    ClassLossOptions {
        weight,
        ignore_index,
        label_smoothing,
        reduction,
    }
}

/// Every case of the `loss_options` section, by name.
const LOSS_OPTIONS: &[(&str, ForwardFn)] = table! {
    "mse_sum" => |x| loss::mse_with(&x[0], &x[1], Reduction::Sum);
    "mse_none" => |x| loss::mse_with(&x[0], &x[1], Reduction::None);
    "l1_sum" => |x| loss::l1_with(&x[0], &x[1], Reduction::Sum);
    "huber_none" => |x| loss::huber_with(&x[0], &x[1], 1.0, Reduction::None);
    "binary_cross_entropy_sum" => |x| loss::binary_cross_entropy_with(&x[0], &x[1], Reduction::Sum);
    "bce_logits_pos_weight" => |x| {
        let opts = BceOptions { pos_weight: Some(&x[2]), ..Default::default() };
        loss::bce_with_logits(&x[0], &x[1], &opts)
    };
    "bce_logits_pos_weight_weight_none" => |x| {
        let opts = BceOptions { pos_weight: Some(&x[2]), weight: Some(&x[3]), reduction: Reduction::None };
        loss::bce_with_logits(&x[0], &x[1], &opts)
    };
    "cross_entropy_weight" => |x| {
        loss::cross_entropy_with(&x[0], &x[1], &class_opts(Some(&x[2]), None, 0.0, Reduction::Mean))
    };
    "cross_entropy_ignore_index" => |x| {
        loss::cross_entropy_with(&x[0], &x[1], &class_opts(None, Some(-100), 0.0, Reduction::Mean))
    };
    "cross_entropy_weight_ignore_smoothing" => |x| {
        loss::cross_entropy_with(&x[0], &x[1], &class_opts(Some(&x[2]), Some(1), 0.2, Reduction::Mean))
    };
    "cross_entropy_sum" => |x| {
        loss::cross_entropy_with(&x[0], &x[1], &class_opts(None, None, 0.0, Reduction::Sum))
    };
    "cross_entropy_soft_targets" => |x| {
        loss::cross_entropy_with(&x[0], &x[1], &class_opts(None, None, 0.0, Reduction::Mean))
    };
    "cross_entropy_soft_weight_smoothing" => |x| {
        loss::cross_entropy_with(&x[0], &x[1], &class_opts(Some(&x[2]), None, 0.1, Reduction::Mean))
    };
    "cross_entropy_spatial_none" => |x| {
        loss::cross_entropy_with(&x[0], &x[1], &class_opts(None, None, 0.0, Reduction::None))
    };
    "cross_entropy_spatial_weight_ignore" => |x| {
        loss::cross_entropy_with(&x[0], &x[1], &class_opts(Some(&x[2]), Some(2), 0.0, Reduction::Mean))
    };
    "cross_entropy_spatial_soft" => |x| {
        loss::cross_entropy_with(&x[0], &x[1], &class_opts(None, None, 0.0, Reduction::Mean))
    };
    "nll_weight_ignore" => |x| {
        loss::nll_with(&x[0], &x[1], &class_opts(Some(&x[2]), Some(3), 0.0, Reduction::Mean))
    };
    "nll_spatial_sum" => |x| {
        loss::nll_with(&x[0], &x[1], &class_opts(None, None, 0.0, Reduction::Sum))
    };
    "kl_div_batchmean" => |x| loss::kl_div(&x[0], &x[1], false, Reduction::BatchMean);
    "kl_div_mean_log_target" => |x| loss::kl_div(&x[0], &x[1], true, Reduction::Mean);
    "kl_div_none" => |x| loss::kl_div(&x[0], &x[1], false, Reduction::None);
};

type Params = Vec<(String, Tensor)>;
type BoxedOptimizer = Result<Box<dyn Optimizer>>;

/// Builds an optimizer over the named parameters of the fixed problem.
type MakeOptimizer = fn(Params) -> BoxedOptimizer;

/// The learning rate of every optimizer case except the `*_torch_defaults` ones.
const LR: f64 = 0.1;

fn boxed(opt: Result<impl Optimizer + 'static>) -> BoxedOptimizer {
    Ok(Box::new(opt?))
}

/// SGD with `lr = LR`.
fn sgd(
    p: Params,
    momentum: f64,
    dampening: f64,
    nesterov: bool,
    weight_decay: f64,
) -> BoxedOptimizer {
    let cfg = SgdConfig {
        lr: LR,
        momentum,
        dampening,
        nesterov,
        weight_decay,
    };
    boxed(Sgd::new(p, cfg))
}

/// Adam (AdamW when `decoupled`) with `lr = LR` and the default betas and eps.
fn adam(p: Params, weight_decay: f64, decoupled: bool) -> BoxedOptimizer {
    let cfg = AdamConfig {
        lr: LR,
        weight_decay,
        decoupled,
        ..AdamConfig::default()
    };
    boxed(Adam::new(p, cfg))
}

/// RMSprop with `lr = LR` and the default alpha and eps.
fn rmsprop(p: Params, centered: bool, momentum: f64, weight_decay: f64) -> BoxedOptimizer {
    let cfg = RmsPropConfig {
        lr: LR,
        centered,
        momentum,
        weight_decay,
        ..RmsPropConfig::default()
    };
    boxed(RmsProp::new(p, cfg))
}

/// Adagrad with `lr = LR` and the default eps.
fn adagrad(
    p: Params,
    lr_decay: f64,
    initial_accumulator_value: f64,
    weight_decay: f64,
) -> BoxedOptimizer {
    let cfg = AdagradConfig {
        lr: LR,
        lr_decay,
        initial_accumulator_value,
        weight_decay,
        ..AdagradConfig::default()
    };
    boxed(Adagrad::new(p, cfg))
}

/// Every optimizer configuration of the JSON, by name (each case's `expr` is the PyTorch
/// call). The `*_torch_defaults` cases check that ferrograd's `Default`s are PyTorch's.
const OPTIMIZERS: &[(&str, MakeOptimizer)] = table! {
    "sgd" => |p| sgd(p, 0.0, 0.0, false, 0.0);
    "sgd_momentum" => |p| sgd(p, 0.9, 0.0, false, 0.0);
    "sgd_momentum_dampening" => |p| sgd(p, 0.9, 0.1, false, 0.0);
    "sgd_nesterov_weight_decay" => |p| sgd(p, 0.9, 0.0, true, 0.01);
    "adam" => |p| adam(p, 0.0, false);
    "adam_torch_defaults" => |p| boxed(Adam::new(p, AdamConfig::default()));
    "adam_weight_decay" => |p| adam(p, 0.1, false);
    "adamw" => |p| adam(p, 0.1, true);
    "adamw_torch_defaults" => |p| boxed(Adam::new(p, AdamConfig::adamw()));
    "rmsprop" => |p| rmsprop(p, false, 0.0, 0.0);
    "rmsprop_torch_defaults" => |p| boxed(RmsProp::new(p, RmsPropConfig::default()));
    "rmsprop_centered_momentum_weight_decay" => |p| rmsprop(p, true, 0.5, 0.01);
    "adagrad" => |p| adagrad(p, 0.0, 0.0, 0.0);
    "adagrad_torch_defaults" => |p| boxed(Adagrad::new(p, AdagradConfig::default()));
    "adagrad_lr_decay_init_acc" => |p| adagrad(p, 0.1, 0.1, 0.0);
    "adagrad_weight_decay" => |p| adagrad(p, 0.0, 0.0, 0.05);
};

/// Adam with `lr = LR`, AMSGrad and the given decay, maximizing when asked.
fn amsgrad(p: Params, weight_decay: f64, decoupled: bool, maximize: bool) -> BoxedOptimizer {
    let cfg = AdamConfig {
        lr: LR,
        weight_decay,
        decoupled,
        amsgrad: true,
        ..AdamConfig::default()
    };
    boxed(Adam::new(p, cfg).map(|o| o.maximize(maximize)))
}

/// The `optimizer_options` section: AMSGrad, and `maximize` for every optimizer.
const OPTIMIZER_OPTIONS: &[(&str, MakeOptimizer)] = table! {
    "adam_amsgrad" => |p| amsgrad(p, 0.0, false, false);
    "adamw_amsgrad" => |p| amsgrad(p, 0.1, true, false);
    "adam_amsgrad_maximize" => |p| amsgrad(p, 0.1, false, true);
    "sgd_maximize" => |p| {
        let cfg = SgdConfig { lr: LR, momentum: 0.9, weight_decay: 0.01, ..SgdConfig::default() };
        boxed(Sgd::new(p, cfg).map(|o| o.maximize(true)))
    };
    "adamw_maximize" => |p| {
        let cfg = AdamConfig { lr: LR, weight_decay: 0.1, ..AdamConfig::adamw() };
        boxed(Adam::new(p, cfg).map(|o| o.maximize(true)))
    };
    "rmsprop_maximize" => |p| {
        let cfg = RmsPropConfig { lr: LR, centered: true, momentum: 0.5, ..RmsPropConfig::default() };
        boxed(RmsProp::new(p, cfg).map(|o| o.maximize(true)))
    };
    "adagrad_maximize" => |p| {
        let cfg = AdagradConfig { lr: LR, weight_decay: 0.05, ..AdagradConfig::default() };
        boxed(Adagrad::new(p, cfg).map(|o| o.maximize(true)))
    };
};

/// Builds a schedule from the JSON's base rate.
type MakeSchedule = fn(f64) -> LrSchedule;

/// Every schedule case of the JSON, by name.
const SCHEDULES: &[(&str, MakeSchedule)] = table! {
    "step" => |lr| schedule(lr, Schedule::Step { step_size: 2, gamma: 0.5 }, 0);
    "exponential" => |lr| schedule(lr, Schedule::Exponential { gamma: 0.9 }, 0);
    "cosine" => |lr| schedule(lr, Schedule::Cosine { t_max: 5, eta_min: 0.01 }, 0);
    "warmup_constant" => |lr| schedule(lr, Schedule::Constant, 4);
    "warmup_step" => |lr| schedule(lr, Schedule::Step { step_size: 2, gamma: 0.5 }, 4);
    "warmup_exponential" => |lr| schedule(lr, Schedule::Exponential { gamma: 0.9 }, 4);
};

/// Clip cases are data only (max_norm and gradients are in the JSON); the table lists them so
/// that the JSON and the test agree on the set of cases.
const CLIP: &[(&str, ())] = table! {
    "clips" => ();
    "below_max_norm" => ();
    "max_norm_zero" => ();
    "missing_grad" => ();
};

fn schedule(base_lr: f64, schedule: Schedule, warmup: usize) -> LrSchedule {
    LrSchedule {
        base_lr,
        schedule,
        warmup,
    }
}

fn err(e: ferrograd_core::Error) -> String {
    e.to_string()
}

fn reference() -> Reference {
    Reference::parse(REFERENCE, "torch_nn_reference.json")
}

// ---------------------------------------------------------------------------------------------
// Activations and losses: forward and gradients of `(out * weight).sum()`.

#[test]
fn activations_match_pytorch() {
    reference().run_section("activations", ACTIVATIONS, |case, f| FORWARD.run(case, *f));
}

#[test]
fn losses_match_pytorch() {
    reference().run_section("losses", LOSSES, |case, f| FORWARD.run(case, *f));
}

// ---------------------------------------------------------------------------------------------
// Optimizers: parameter trajectories on the fixed problem.

/// The fixed problem of the JSON: data and initial parameters.
struct Problem {
    x: Tensor,
    y: Tensor,
    w0: Stored,
    b0: Stored,
    steps: usize,
}

fn problem(root: &Value) -> Problem {
    let p = &root["problem"];
    assert_eq!(
        p["expr"], "sum((tanh(x @ W + b) - y)^2) + 0.5 * sum(sin(2 W))",
        "the problem's loss changed in generate.py: update problem_loss"
    );
    let get =
        |v: &Value, what: &str| Stored::parse(v).unwrap_or_else(|m| panic!("problem {what}: {m}"));
    Problem {
        x: get(&p["x"], "x").f64_tensor().unwrap(),
        y: get(&p["y"], "y").f64_tensor().unwrap(),
        w0: get(&p["params"]["W"], "W"),
        b0: get(&p["params"]["b"], "b"),
        steps: p["steps"].as_u64().expect("problem steps") as usize,
    }
}

/// `sum((tanh(x @ W + b) - y)^2) + 0.5 * sum(sin(2 W))`.
fn problem_loss(x: &Tensor, y: &Tensor, w: &Tensor, b: &Tensor) -> Result<Tensor> {
    let fit = x.matmul(w)?.add(b)?.tanh()?.sub(y)?.square()?.sum_all()?;
    fit.add(&w.mul_scalar(2.0)?.sin()?.sum_all()?.mul_scalar(0.5)?)
}

fn check_optimizer_case(pb: &Problem, case: &Value, make: &MakeOptimizer) -> Check {
    let w = pb.w0.f64_tensor()?.with_requires_grad(true);
    let b = pb.b0.f64_tensor()?.with_requires_grad(true);
    let mut opt = make(vec![("W".into(), w.clone()), ("b".into(), b.clone())]).map_err(err)?;
    let trajectory = case["trajectory"].as_array().ok_or("missing trajectory")?;
    if trajectory.len() != pb.steps {
        return Err(format!(
            "{} steps stored, problem says {}",
            trajectory.len(),
            pb.steps
        ));
    }
    let mut failures = Vec::new();
    for (i, want) in trajectory.iter().enumerate() {
        let grads = problem_loss(&pb.x, &pb.y, &w, &b)
            .and_then(|l| l.backward())
            .map_err(err)?;
        opt.step(&grads)
            .map_err(|e| format!("step {}: {e}", i + 1))?;
        for (name, p) in [("W", &w), ("b", &b)] {
            let want =
                Stored::parse(&want[name]).map_err(|m| format!("step {}: {name}: {m}", i + 1))?;
            let what = format!("{name} after step {}", i + 1);
            failures.extend(compare(&what, p, DType::F64, &want, TOL_TRAJECTORY).err());
        }
    }
    all_passed(failures)
}

#[test]
fn optimizers_match_pytorch() {
    let reference = reference();
    let pb = problem(reference.root());
    reference.run_section("optimizers", OPTIMIZERS, |case, make| {
        check_optimizer_case(&pb, case, make)
    });
}

#[test]
fn loss_options_match_pytorch() {
    reference().run_section("loss_options", LOSS_OPTIONS, |case, f| {
        FORWARD.run(case, *f)
    });
}

#[test]
fn amsgrad_and_maximize_match_pytorch() {
    let reference = reference();
    let pb = problem(reference.root());
    reference.run_section("optimizer_options", OPTIMIZER_OPTIONS, |case, make| {
        check_optimizer_case(&pb, case, make)
    });
}

// ---------------------------------------------------------------------------------------------
// Gradient clipping: fully described by the JSON (max_norm, gradients before and after).

fn check_clip_case(case: &Value) -> Check {
    let max_norm = case["max_norm"].as_f64().ok_or("missing max_norm")?;
    let before = case["before"].as_array().ok_or("missing before")?;
    let after = case["after"].as_array().ok_or("missing after")?;
    if before.len() != after.len() {
        return Err("before and after differ in length".into());
    }
    let mut grads = GradStore::default();
    let mut params = Vec::new();
    for (i, (b, a)) in before.iter().zip(after).enumerate() {
        // A parameter without gradient is `null` before; its shape comes from `after` or is
        // irrelevant (it must stay without gradient).
        let shape = if b.is_null() {
            vec![1]
        } else {
            Stored::parse(b)?.shape
        };
        let p = Tensor::zeros(&shape, DType::F64)
            .unwrap()
            .with_requires_grad(true);
        if !b.is_null() {
            grads.insert(
                &p,
                Stored::parse(b)
                    .map_err(|m| format!("before[{i}]: {m}"))?
                    .f64_tensor()?,
            );
        }
        if b.is_null() != a.is_null() {
            return Err(format!("param {i}: gradient presence differs before/after"));
        }
        params.push(p);
    }
    let norm = clip_grad_norm(&mut grads, &params, max_norm).map_err(err)?;
    let mut failures = Vec::new();
    let want_norm = case["norm"].as_f64().ok_or("missing norm")?;
    if !close(norm, want_norm, TOL_EXACTISH) {
        failures.push(format!("norm {norm:e}, want {want_norm:e}"));
    }
    for (i, (p, a)) in params.iter().zip(after).enumerate() {
        match (grads.get(p), a.is_null()) {
            (None, true) => {}
            (Some(_), true) => failures.push(format!("param {i} gained a gradient")),
            (None, false) => failures.push(format!("param {i} lost its gradient")),
            (Some(g), false) => {
                let want = Stored::parse(a).map_err(|m| format!("after[{i}]: {m}"))?;
                let what = format!("grad {i} after clipping");
                failures.extend(compare(&what, g, DType::F64, &want, TOL_EXACTISH).err());
            }
        }
    }
    all_passed(failures)
}

#[test]
fn clip_grad_norm_matches_pytorch() {
    reference().run_section("clip", CLIP, |case, _| check_clip_case(case));
}

// ---------------------------------------------------------------------------------------------
// Learning-rate schedules.

fn check_schedule_case(case: &Value, make: &MakeSchedule) -> Check {
    let base_lr = case["base_lr"].as_f64().ok_or("missing base_lr")?;
    let sched = make(base_lr);
    let lrs = case["lrs"].as_array().ok_or("missing lrs")?;
    let bad: Vec<String> = lrs
        .iter()
        .enumerate()
        .filter_map(|(epoch, want)| {
            let want = want.as_f64()?;
            let got = sched.lr_at(epoch);
            (!close(got, want, TOL_EXACTISH))
                .then(|| format!("epoch {epoch}: got {got:e}, want {want:e}"))
        })
        .collect();
    if lrs.iter().any(|v| v.as_f64().is_none()) {
        return Err("non-numeric learning rate".into());
    }
    if bad.is_empty() {
        Ok(())
    } else {
        Err(bad.join("; "))
    }
}

#[test]
fn schedules_match_pytorch() {
    reference().run_section("schedules", SCHEDULES, check_schedule_case);
}

/// Past `T_max` PyTorch's recursive `CosineAnnealingLR` rises again (it is periodic), so the
/// JSON stops at `T_max`; ferrograd documents the closed form with the epoch clamped to
/// `T_max`, i.e. it stays at `eta_min`.
#[test]
fn cosine_stays_at_eta_min_after_t_max() {
    let s = schedule(
        0.1,
        Schedule::Cosine {
            t_max: 5,
            eta_min: 0.01,
        },
        0,
    );
    for epoch in 5..=9 {
        assert!(
            close(s.lr_at(epoch), 0.01, 1e-15),
            "epoch {epoch}: {}",
            s.lr_at(epoch)
        );
    }
}

/// The documented warm-up, `lr * (epoch + 1) / warmup` for `epoch < warmup`, on top of the
/// cosine (for which no chained PyTorch scheduler gives the same product).
#[test]
fn warmup_scales_the_cosine_as_documented() {
    let plain = schedule(
        0.1,
        Schedule::Cosine {
            t_max: 6,
            eta_min: 0.0,
        },
        0,
    );
    let warm = schedule(
        0.1,
        Schedule::Cosine {
            t_max: 6,
            eta_min: 0.0,
        },
        3,
    );
    for epoch in 0..9 {
        let factor = if epoch < 3 {
            (epoch + 1) as f64 / 3.0
        } else {
            1.0
        };
        let want = plain.lr_at(epoch) * factor;
        assert!(
            close(warm.lr_at(epoch), want, 1e-15),
            "epoch {epoch}: {} vs {want}",
            warm.lr_at(epoch)
        );
    }
}
