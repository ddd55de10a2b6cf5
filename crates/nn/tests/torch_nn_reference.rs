//! ferrograd-nn against PyTorch: activations, losses, optimizers, gradient clipping and
//! learning-rate schedules, with the PyTorch values frozen in
//! `tests/reference/torch_nn_reference.json`, so this test needs no PyTorch to run.
//!
//! The JSON is written by `tests/reference/generate.py` (rerun it with
//! `/path/to/python crates/nn/tests/reference/generate.py`). Each section has one generic
//! driver here and one table mapping a case name to the ferrograd code that rebuilds it, so
//! adding a case is one line in `generate.py` and one line in a table. A JSON case without a
//! table entry, or a table entry without a JSON case, fails the test.
//!
//! Tolerances (each as `|got - want| <= tol * (1 + |want|)`): forward values and gradients
//! 1e-10 in f64 (f32 forward values 1e-5), optimizer trajectories 1e-9, clipping and
//! schedules 1e-12.

use std::collections::BTreeSet;

use ferrograd_core::{DType, GradStore, Result, Tensor};
use ferrograd_nn::activation::{self as act, Activation};
use ferrograd_nn::{
    Adagrad, AdagradConfig, Adam, AdamConfig, LrSchedule, Maxout, Module, Optimizer, PRelu,
    RmsProp, RmsPropConfig, Schedule, Sgd, SgdConfig, clip_grad_norm, loss,
};
use serde_json::Value;

const REFERENCE: &str = include_str!("reference/torch_nn_reference.json");
const TOL_F64: f64 = 1e-10;
const TOL_F32: f64 = 1e-5;
const TOL_TRAJECTORY: f64 = 1e-9;
const TOL_EXACTISH: f64 = 1e-12;

/// Rebuilds an activation or loss case from its inputs, in the order the JSON lists them.
type ForwardFn = fn(&[Tensor]) -> Result<Tensor>;

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

// ---------------------------------------------------------------------------------------------
// JSON helpers and comparison.

type Check = std::result::Result<(), String>;

fn err(e: ferrograd_core::Error) -> String {
    e.to_string()
}

/// A `{"shape": [...], "values": [...]}` object of the JSON.
struct Stored {
    shape: Vec<usize>,
    values: Vec<f64>,
}

impl Stored {
    fn f64_tensor(&self) -> std::result::Result<Tensor, String> {
        Tensor::from_vec(self.values.clone(), &self.shape).map_err(err)
    }
}

fn stored(v: &Value) -> std::result::Result<Stored, String> {
    let shape = v["shape"]
        .as_array()
        .ok_or("missing shape")?
        .iter()
        .map(|d| d.as_u64().map(|d| d as usize).ok_or("bad dimension"))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let values = v["values"]
        .as_array()
        .ok_or("missing values")?
        .iter()
        .map(|x| x.as_f64().ok_or("non-numeric value"))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    if values.len() != shape.iter().product::<usize>() {
        return Err(format!("{} values for shape {shape:?}", values.len()));
    }
    Ok(Stored { shape, values })
}

/// `|got - want| <= tol * (1 + |want|)`; false for NaN.
fn close(got: f64, want: f64, tol: f64) -> bool {
    (got - want).abs() <= tol * (1.0 + want.abs())
}

/// Compares `got` with the reference `want` (dtype, shape and values).
fn compare(what: &str, got: &Tensor, dtype: DType, want: &Stored, tol: f64) -> Check {
    if got.dtype() != dtype {
        return Err(format!(
            "{what}: dtype {:?}, expected {dtype:?}",
            got.dtype()
        ));
    }
    if got.shape() != want.shape.as_slice() {
        return Err(format!(
            "{what}: shape {:?}, expected {:?}",
            got.shape(),
            want.shape
        ));
    }
    let bad: Vec<String> = got
        .to_vec_f64()
        .iter()
        .zip(&want.values)
        .enumerate()
        .filter(|(_, (g, w))| !close(**g, **w, tol))
        .map(|(i, (g, w))| format!("[{i}] got {g:e}, want {w:e}, diff {:.3e}", (g - w).abs()))
        .collect();
    if bad.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{what}: {} mismatches (tol {tol:e}): {}",
            bad.len(),
            bad.join("; ")
        ))
    }
}

fn root() -> Value {
    serde_json::from_str(REFERENCE).expect("torch_nn_reference.json is not JSON")
}

/// Runs every case of JSON section `section` through its table entry; a case without an entry,
/// an entry without a case and duplicate names are failures too. Panics listing every failure.
fn run_section<T>(section: &str, table: &[(&str, T)], run: impl Fn(&Value, &T) -> Check) {
    let root = root();
    assert_eq!(
        root["meta"]["dtype"], "float64",
        "reference must be float64"
    );
    let cases = root[section]
        .as_array()
        .unwrap_or_else(|| panic!("no {section:?} array in torch_nn_reference.json"));
    assert!(
        !cases.is_empty(),
        "no {section} cases in torch_nn_reference.json"
    );
    let table_names: BTreeSet<&str> = table.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        table_names.len(),
        table.len(),
        "duplicate name in the {section} table"
    );

    let mut seen = BTreeSet::new();
    let mut failures = Vec::new();
    for case in cases {
        let Some(name) = case["name"].as_str() else {
            failures.push("a JSON case has no name".to_string());
            continue;
        };
        if !seen.insert(name) {
            failures.push(format!("{name}: duplicate JSON case"));
        }
        match table.iter().find(|(n, _)| *n == name) {
            Some((_, entry)) => {
                if let Err(msg) = run(case, entry) {
                    failures.push(format!("{name} ({}):\n    {msg}", case["expr"]));
                }
            }
            None => failures.push(format!("{name}: JSON case has no Rust entry in the table")),
        }
    }
    for name in table_names.difference(&seen) {
        failures.push(format!(
            "{name}: in the Rust table but not in the JSON {section}"
        ));
    }
    assert!(
        failures.is_empty(),
        "{} of {} {section} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// Activations and losses: forward and gradients of `(out * weight).sum()`.

/// Runs one activation or loss case: forward and gradients in f64, forward in f32.
fn check_forward_case(case: &Value, f: &ForwardFn) -> Check {
    let mut names = Vec::new();
    let mut inputs64 = Vec::new();
    let mut inputs32 = Vec::new();
    let mut differentiated = BTreeSet::new();
    for input in case["inputs"].as_array().ok_or("missing inputs")? {
        let name = input["name"].as_str().ok_or("input without name")?;
        let s = stored(input).map_err(|m| format!("input {name}: {m}"))?;
        let grad = input["grad"].as_bool().ok_or("input without grad flag")?;
        let (t64, t32) = match input["dtype"].as_str() {
            Some("float64") => (
                s.f64_tensor()?.with_requires_grad(grad),
                Tensor::from_vec(s.values.iter().map(|&v| v as f32).collect(), &s.shape)
                    .map_err(err)?,
            ),
            Some("int64") if !grad => {
                let t = Tensor::from_vec(s.values.iter().map(|&v| v as i64).collect(), &s.shape)
                    .map_err(err)?;
                (t.clone(), t)
            }
            other => return Err(format!("input {name}: unsupported dtype {other:?}")),
        };
        if grad {
            differentiated.insert(name);
        }
        names.push(name);
        inputs64.push(t64);
        inputs32.push(t32);
    }
    let grads_json = case["grads"].as_object().ok_or("missing grads")?;
    let grad_names: BTreeSet<&str> = grads_json.keys().map(String::as_str).collect();
    if grad_names != differentiated {
        return Err(format!(
            "JSON grads for {grad_names:?}, but the differentiated inputs are {differentiated:?}"
        ));
    }
    let want_out = stored(&case["output"]).map_err(|m| format!("output: {m}"))?;
    let w = stored(&case["weight"])
        .map_err(|m| format!("weight: {m}"))?
        .f64_tensor()?;

    let mut failures = Vec::new();
    let out = f(&inputs64).map_err(|e| format!("f64 forward: {e}"))?;
    failures.extend(compare("f64 forward", &out, DType::F64, &want_out, TOL_F64).err());
    let grads = out
        .mul(&w)
        .and_then(|l| l.sum_all())
        .and_then(|l| l.backward())
        .map_err(|e| format!("backward: {e}"))?;
    for (name, t) in names.iter().zip(&inputs64) {
        if !differentiated.contains(name) {
            continue;
        }
        let want = stored(&grads_json[*name]).map_err(|m| format!("grad {name}: {m}"))?;
        match grads.get(t) {
            Some(g) => {
                let what = format!("f64 grad of {name}");
                failures.extend(compare(&what, g, DType::F64, &want, TOL_F64).err());
            }
            None => failures.push(format!("no gradient for input {name}")),
        }
    }
    match f(&inputs32) {
        Ok(out) => {
            failures.extend(compare("f32 forward", &out, DType::F32, &want_out, TOL_F32).err())
        }
        Err(e) => failures.push(format!("f32 forward: {e}")),
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("\n    "))
    }
}

#[test]
fn activations_match_pytorch() {
    run_section("activations", ACTIVATIONS, check_forward_case);
}

#[test]
fn losses_match_pytorch() {
    run_section("losses", LOSSES, check_forward_case);
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
    let get = |v: &Value, what: &str| stored(v).unwrap_or_else(|m| panic!("problem {what}: {m}"));
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
            let want = stored(&want[name]).map_err(|m| format!("step {}: {name}: {m}", i + 1))?;
            let what = format!("{name} after step {}", i + 1);
            failures.extend(compare(&what, p, DType::F64, &want, TOL_TRAJECTORY).err());
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("\n    "))
    }
}

#[test]
fn optimizers_match_pytorch() {
    let pb = problem(&root());
    run_section("optimizers", OPTIMIZERS, |case, make| {
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
            stored(b)?.shape
        };
        let p = Tensor::zeros(&shape, DType::F64).with_requires_grad(true);
        if !b.is_null() {
            grads.insert(
                &p,
                stored(b)
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
                let want = stored(a).map_err(|m| format!("after[{i}]: {m}"))?;
                let what = format!("grad {i} after clipping");
                failures.extend(compare(&what, g, DType::F64, &want, TOL_EXACTISH).err());
            }
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("\n    "))
    }
}

#[test]
fn clip_grad_norm_matches_pytorch() {
    run_section("clip", CLIP, |case, _| check_clip_case(case));
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
    run_section("schedules", SCHEDULES, check_schedule_case);
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
