//! Property tests on random compositions of ops: evaluated eagerly and compiled into static
//! graphs (with and without the passes), they give the same values and gradients, special
//! values (0, +-1, +-inf, NaN) included; and on random finite inputs, compositions of smooth
//! ops pass a float64 gradient check.

use ferrograd_core::{GradcheckOptions, Result, Tensor, gradcheck};
use ferrograd_testkit::modes::{in_both_modes, same_value};
use proptest::prelude::*;

/// An expression over two inputs of shape [4] (`X(1)` is broadcast from shape [1] when the
/// case asks for it).
#[derive(Debug, Clone)]
enum Expr {
    X(usize),
    Unary(Unary, Box<Expr>),
    Binary(Binary, Box<Expr>, Box<Expr>),
    /// A reduction over the axis, broadcast back.
    Reduce(Reduce, Box<Expr>),
}

#[derive(Debug, Clone, Copy)]
enum Unary {
    Tanh,
    Sigmoid,
    Sin,
    Neg,
    Square,
    Erf,
    Scale,
    // Not smooth everywhere, or partial:
    Exp,
    Log,
    Sqrt,
    Relu,
    Abs,
    Recip,
    Clamp,
    Softmax,
    LogSoftmax,
}

#[derive(Debug, Clone, Copy)]
enum Binary {
    Add,
    Sub,
    Mul,
    /// `a / (1 + b^2)`: smooth and total.
    SafeDiv,
    // Not smooth everywhere, or partial:
    Div,
    Pow,
    Maximum,
    Minimum,
}

#[derive(Debug, Clone, Copy)]
enum Reduce {
    Sum,
    Mean,
    Max,
    LogSumExp,
}

const SMOOTH_UNARY: [Unary; 7] = [
    Unary::Tanh,
    Unary::Sigmoid,
    Unary::Sin,
    Unary::Neg,
    Unary::Square,
    Unary::Erf,
    Unary::Scale,
];
const OTHER_UNARY: [Unary; 9] = [
    Unary::Exp,
    Unary::Log,
    Unary::Sqrt,
    Unary::Relu,
    Unary::Abs,
    Unary::Recip,
    Unary::Clamp,
    Unary::Softmax,
    Unary::LogSoftmax,
];
const SMOOTH_BINARY: [Binary; 4] = [Binary::Add, Binary::Sub, Binary::Mul, Binary::SafeDiv];
const OTHER_BINARY: [Binary; 4] = [Binary::Div, Binary::Pow, Binary::Maximum, Binary::Minimum];

fn expr(smooth: bool) -> impl Strategy<Value = Expr> {
    let mut unary: Vec<Unary> = SMOOTH_UNARY.to_vec();
    let mut binary: Vec<Binary> = SMOOTH_BINARY.to_vec();
    let mut reduce = vec![Reduce::Sum, Reduce::Mean, Reduce::LogSumExp];
    if !smooth {
        unary.extend(OTHER_UNARY);
        binary.extend(OTHER_BINARY);
        reduce.push(Reduce::Max);
    }
    let leaf = (0usize..2).prop_map(Expr::X);
    leaf.prop_recursive(5, 24, 2, move |inner| {
        prop_oneof![
            3 => (prop::sample::select(unary.clone()), inner.clone())
                .prop_map(|(u, e)| Expr::Unary(u, Box::new(e))),
            3 => (prop::sample::select(binary.clone()), inner.clone(), inner.clone())
                .prop_map(|(b, l, r)| Expr::Binary(b, Box::new(l), Box::new(r))),
            1 => (prop::sample::select(reduce.clone()), inner)
                .prop_map(|(r, e)| Expr::Reduce(r, Box::new(e))),
        ]
    })
}

fn eval(e: &Expr, xs: &[Tensor]) -> Result<Tensor> {
    Ok(match e {
        Expr::X(k) => xs[*k].broadcast_to(&[4])?,
        Expr::Unary(u, a) => {
            let a = eval(a, xs)?;
            match u {
                Unary::Tanh => a.tanh()?,
                Unary::Sigmoid => a.sigmoid()?,
                Unary::Sin => a.sin()?,
                Unary::Neg => a.neg()?,
                Unary::Square => a.square()?,
                Unary::Erf => a.erf()?,
                Unary::Scale => a.mul_scalar(0.5)?,
                Unary::Exp => a.exp()?,
                Unary::Log => a.log()?,
                Unary::Sqrt => a.sqrt()?,
                Unary::Relu => a.relu()?,
                Unary::Abs => a.abs()?,
                Unary::Recip => a.recip()?,
                Unary::Clamp => a.clamp(-1.0, 1.0)?,
                Unary::Softmax => a.softmax(0)?,
                Unary::LogSoftmax => a.log_softmax(0)?,
            }
        }
        Expr::Binary(b, l, r) => {
            let (l, r) = (eval(l, xs)?, eval(r, xs)?);
            match b {
                Binary::Add => l.add(&r)?,
                Binary::Sub => l.sub(&r)?,
                Binary::Mul => l.mul(&r)?,
                Binary::SafeDiv => l.div(&r.square()?.add_scalar(1.0)?)?,
                Binary::Div => l.div(&r)?,
                Binary::Pow => l.pow(&r)?,
                Binary::Maximum => l.maximum(&r)?,
                Binary::Minimum => l.minimum(&r)?,
            }
        }
        Expr::Reduce(r, a) => {
            let a = eval(a, xs)?;
            let reduced = match r {
                Reduce::Sum => a.sum(&[0], true)?,
                Reduce::Mean => a.mean(&[0], true)?,
                Reduce::Max => a.max(&[0], true)?,
                Reduce::LogSumExp => a.logsumexp(&[0], true)?,
            };
            reduced.broadcast_to(&[4])?
        }
    })
}

/// The value and the gradients of `sum(f(x))` with respect to both inputs.
fn value_and_grads(e: &Expr, xs: &[Tensor]) -> Result<Vec<Tensor>> {
    let leaves: Vec<Tensor> = xs.iter().map(|x| x.with_requires_grad(true)).collect();
    let out = eval(e, &leaves)?;
    let grads = out.sum_all()?.backward()?;
    let mut results = vec![out];
    for l in &leaves {
        results.push(grads.get(l).cloned().unwrap_or_else(|| l.zeros_like()));
    }
    Ok(results)
}

/// Inputs drawn from ordinary numbers and the special values.
fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => -3.0f64..3.0,
        1 => prop::sample::select(vec![
            0.0,
            1.0,
            -1.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            800.0,
        ]),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn eager_and_static_agree_on_values_and_gradients(
        e in expr(false),
        a in prop::collection::vec(value(), 4),
        b in prop::collection::vec(value(), 1),
        broadcast in any::<bool>(),
    ) {
        let b = if broadcast { b } else { vec![b[0], -b[0], 0.5, 2.0] };
        let n = b.len();
        let xs = [
            Tensor::from_vec(a, &[4]).unwrap(),
            Tensor::from_vec(b, &[n]).unwrap(),
        ];
        let runs = in_both_modes(|x: &[Tensor]| value_and_grads(&e, x), &xs).unwrap();
        let (_, eager) = &runs[0];
        for (mode, results) in &runs[1..] {
            for (k, (got, want)) in results.iter().zip(eager).enumerate() {
                for (i, (g, w)) in got.to_vec_f64().iter().zip(want.to_vec_f64()).enumerate() {
                    prop_assert!(
                        same_value(*g, w, 1e-12),
                        "{mode} result {k} [{i}]: {g:e} vs eager {w:e} for {e:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn smooth_compositions_pass_gradcheck(
        e in expr(true),
        a in prop::collection::vec(-2.0f64..2.0, 4),
        b in -2.0f64..2.0,
    ) {
        let xs = [Tensor::from_vec(a, &[4]).unwrap(), Tensor::from_vec(vec![b], &[1]).unwrap()];
        let report = gradcheck(|x| eval(&e, x), &xs, &GradcheckOptions::default()).unwrap();
        prop_assert!(report.passed(), "{report} for {e:?}");
    }
}
