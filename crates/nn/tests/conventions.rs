//! One test per row of `docs/conventions.md`: the gradient at kinks and ties (and the few
//! values there) matches PyTorch 2.15, in eager mode and in static graphs.

use ferrograd_core::op::Pool2dParams;
use ferrograd_core::{Result, Tensor};
use ferrograd_nn::{activation as act, loss};
use ferrograd_testkit::modes::{in_both_modes, same_value};

type Unary = fn(&Tensor) -> Result<Tensor>;

/// The gradient of `sum(f(x))` at `xs`, in every mode, checked against `want`.
fn check_grad(what: &str, f: Unary, xs: &[f64], want: &[f64]) {
    let run = move |inputs: &[Tensor]| -> Result<Vec<Tensor>> {
        let x = inputs[0].with_requires_grad(true);
        let y = f(&x)?;
        let g = y.sum_all()?.backward()?;
        Ok(vec![
            y,
            g.get(&x).cloned().unwrap_or_else(|| x.zeros_like()),
        ])
    };
    let x = Tensor::from_vec(xs.to_vec(), &[xs.len()]).unwrap();
    for (mode, results) in in_both_modes(run, &[x]).unwrap() {
        let got = results[1].to_vec_f64();
        for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
            assert!(
                same_value(g, w, 1e-15),
                "{what} ({mode}): gradient [{i}] at x = {} is {g}, PyTorch gives {w}",
                xs[i]
            );
        }
    }
}

#[test]
fn relu_abs_and_l1_at_zero() {
    check_grad("relu", |x| x.relu(), &[0.0], &[0.0]);
    check_grad("abs", |x| x.abs(), &[0.0], &[0.0]);
    check_grad(
        "l1",
        |x| loss::l1(x, &x.zeros_like().detach()),
        &[0.0],
        &[0.0],
    );
}

#[test]
fn leaky_relu_prelu_and_elu_take_the_negative_slope_at_zero() {
    check_grad("leaky_relu", |x| act::leaky_relu(x, 0.1), &[0.0], &[0.1]);
    check_grad(
        "prelu",
        |x| act::prelu(x, &Tensor::from_vec(vec![0.25f64], &[1])?),
        &[0.0],
        &[0.25],
    );
    check_grad("elu", |x| act::elu(x, 2.0), &[0.0], &[2.0]);
}

#[test]
fn softplus_has_no_kink_at_zero() {
    check_grad("softplus", act::softplus, &[0.0], &[0.5]);
}

#[test]
fn clamp_hard_tanh_and_hard_sigmoid_pass_nothing_at_their_bounds() {
    check_grad(
        "clamp",
        |x| x.clamp(-1.0, 1.0),
        &[-1.0, 1.0, 0.0],
        &[0.0, 0.0, 1.0],
    );
    check_grad(
        "clamp to a point",
        |x| x.clamp(1.0, 1.0),
        &[0.0, 1.0, 2.0],
        &[0.0; 3],
    );
    check_grad(
        "hard_tanh",
        act::hard_tanh,
        &[-1.0, 1.0, 0.0],
        &[0.0, 0.0, 1.0],
    );
    check_grad(
        "hard_sigmoid",
        act::hard_sigmoid,
        &[-3.0, 3.0, 0.0],
        &[0.0, 0.0, 1.0 / 6.0],
    );
}

#[test]
fn huber_at_delta_is_continuous() {
    // PyTorch (reduction "none"): 2 and -2 at d = +-delta; the mean halves them.
    check_grad(
        "huber",
        |x| loss::huber(x, &x.zeros_like().detach(), 2.0),
        &[2.0, -2.0],
        &[1.0, -1.0],
    );
}

#[test]
fn ties_split_in_maximum_minimum_and_reductions() {
    check_grad(
        "maximum",
        |x| x.maximum(&Tensor::from_vec(vec![1.0f64, 1.0], &[2])?),
        &[1.0, 1.0],
        &[0.5, 0.5],
    );
    check_grad(
        "minimum",
        |x| x.minimum(&Tensor::from_vec(vec![1.0f64], &[1])?),
        &[1.0, 1.0],
        &[0.5, 0.5],
    );
    check_grad(
        "max over an axis",
        |x| x.max(&[0], true),
        &[1.0, 1.0, 0.0],
        &[0.5, 0.5, 0.0],
    );
    check_grad(
        "min over an axis",
        |x| x.min(&[0], true),
        &[0.0, 0.0, 1.0],
        &[0.5, 0.5, 0.0],
    );
    check_grad(
        "three-way tie",
        |x| x.max(&[0], false),
        &[2.0, 2.0, 2.0],
        &[1.0 / 3.0; 3],
    );
}

#[test]
fn max_pooling_sends_a_tie_to_the_first_maximum() {
    check_grad(
        "max_pool2d",
        |x| x.reshape(&[1, 1, 2, 2])?.max_pool2d(Pool2dParams::new(2)),
        &[1.0, 1.0, 1.0, 0.0],
        &[1.0, 0.0, 0.0, 0.0],
    );
}

#[test]
fn sqrt_at_zero_is_infinitely_steep() {
    check_grad("sqrt", |x| x.sqrt(), &[0.0], &[f64::INFINITY]);
}
