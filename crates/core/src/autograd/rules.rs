//! The backward rule of every primitive op, in one exhaustive `match`. Rules are written with
//! tensor operations, so with `create_graph` they are themselves recorded and differentiable,
//! and a graph-to-graph transformation can apply them symbolically. Each rule returns one
//! gradient per input, of that input's shape; broadcasting is undone in exactly one place, the
//! rule of `Op::Expand`, via [`sum_to_shape`].

use crate::op::{BinaryOp, Op, ReduceOp, UnaryOp};
use crate::tensor::Node;
use crate::{Error, Result, Tensor};

/// Sums a gradient down to `shape`, the inverse of broadcasting `shape` up to `g.shape()`.
pub(crate) fn sum_to_shape(g: &Tensor, shape: &[usize]) -> Result<Tensor> {
    if g.shape() == shape {
        return Ok(g.clone());
    }
    let lead = g.rank() - shape.len();
    let dims: Vec<isize> = (0..g.rank())
        .filter(|&d| d < lead || (shape[d - lead] == 1 && g.shape()[d] != 1))
        .map(|d| d as isize)
        .collect();
    g.sum(&dims, true)?.reshape(shape)
}

/// `a @ b`, computed as `(b^T @ a^T)^T` when `like` is a transposed (column-major) matrix, so
/// that a gradient has the memory layout of the input it belongs to. The gradient of a weight
/// used as `x @ W^T` then comes out contiguous, and the optimizer reads it without strides.
fn product_laid_out_like(a: &Tensor, b: &Tensor, like: &Tensor) -> Result<Tensor> {
    let r = like.rank();
    let s = like.layout().strides();
    let column_major =
        r >= 2 && like.shape()[r - 2] > 1 && s[r - 2] == 1 && s[r - 1] == like.shape()[r - 2];
    if column_major {
        b.t()?.matmul(&a.t()?)?.t()
    } else {
        a.matmul(b)
    }
}

/// The last two sizes of a 4-D tensor (height and width).
fn hw(t: &Tensor) -> [usize; 2] {
    let r = t.rank();
    [t.shape()[r - 2], t.shape()[r - 1]]
}

/// Fails if a tensor saved for this op (an input or the output) was written in place after the
/// op was recorded.
pub(crate) fn check_versions(out: &Tensor, node: &Node) -> Result<()> {
    let saved = node
        .inputs
        .iter()
        .zip(&node.versions)
        .chain(std::iter::once((out, &node.out_version)));
    for (t, &recorded) in saved {
        let now = t.storage_cell().version();
        if now != recorded {
            return Err(Error::ModifiedInPlace {
                op: node.op.name(),
                recorded,
                now,
            });
        }
    }
    Ok(())
}

/// A comparison mask, cut from the graph (masks carry no gradient).
fn mask(cond: Result<Tensor>) -> Result<Tensor> {
    cond.map(|m| m.detach())
}

/// Gradients of `op`'s inputs given the gradient `g` of its output `out`. Products (and the
/// factors of an elementwise product) are computed only for inputs that track a gradient: the
/// gradient of a model's input batch through its first layer is a product as large as the
/// weight gradient's, which nothing reads. `wanted` narrows this further to the inputs the
/// walk is headed for (`Tensor::backward_to`).
pub(crate) fn backward(
    op: &Op,
    inputs: &[Tensor],
    out: &Tensor,
    g: &Tensor,
    wanted: &dyn Fn(&Tensor) -> bool,
) -> Result<Vec<Option<Tensor>>> {
    let x = &inputs[0];
    let needed = |k: usize| inputs.get(k).is_some_and(|t| t.tracks_grad() && wanted(t));
    let one = |t: Result<Tensor>| t.map(|t| vec![Some(t)]);
    match op {
        Op::Unary(u) => one(match u {
            UnaryOp::Neg => g.neg(),
            UnaryOp::Exp => g.mul(out),
            UnaryOp::Expm1 => g.mul(&out.add_scalar(1.0)?),
            UnaryOp::Log => g.div(x),
            UnaryOp::Log1p => g.div(&x.add_scalar(1.0)?),
            UnaryOp::Sqrt => g.div(&out.mul_scalar(2.0)?),
            UnaryOp::Abs => g.mul(&mask(x.sign())?),
            UnaryOp::Tanh => g.mul(&out.square()?.neg()?.add_scalar(1.0)?),
            UnaryOp::Sigmoid => g.mul(&out.mul(&out.neg()?.add_scalar(1.0)?)?),
            // out > 0 exactly where x > 0; reading the output lets a static graph fuse the
            // forward bias + ReLU, since the pre-activation then has a single user.
            // The gradient passes except where out <= 0, so a NaN input passes it (as PyTorch).
            UnaryOp::Relu => Tensor::where_cond(&mask(out.le_scalar(0.0))?, &g.scalar_like(0.0), g),
            UnaryOp::Recip => g.mul(&out.square()?)?.neg(),
            UnaryOp::Erf => {
                let c = 2.0 / std::f64::consts::PI.sqrt();
                g.mul(&x.square()?.neg()?.exp()?.mul_scalar(c)?)
            }
            UnaryOp::Sin => g.mul(&x.cos()?),
            UnaryOp::Cos => g.mul(&x.sin()?)?.neg(),
            UnaryOp::Atan => g.div(&x.square()?.add_scalar(1.0)?),
            UnaryOp::Asin => g.div(&x.square()?.neg()?.add_scalar(1.0)?.sqrt()?),
            UnaryOp::Acos => g.div(&x.square()?.neg()?.add_scalar(1.0)?.sqrt()?)?.neg(),
            // Piecewise constant: zero almost everywhere, as in PyTorch.
            UnaryOp::Floor | UnaryOp::Ceil | UnaryOp::Round => Ok(g.zeros_like()),
        }),
        // d/dx x^e = e x^(e-1), written so that no 0 * inf arises at x = 0: 0 for e = 0 and
        // 1 for e = 1 everywhere (PyTorch masks the e = 0 case the same way).
        Op::Powf(e) => one(if *e == 0.0 {
            Ok(g.zeros_like())
        } else if *e == 1.0 {
            Ok(g.clone())
        } else {
            g.mul(&x.powf(e - 1.0)?.mul_scalar(*e)?)
        }),
        Op::Binary(b) => {
            let y = &inputs[1];
            let (ga, gb) = match b {
                BinaryOp::Add => (g.clone(), g.clone()),
                BinaryOp::Sub => (g.clone(), g.neg()?),
                BinaryOp::Mul => {
                    let (ga, gb) = (needed(0).then(|| g.mul(y)), needed(1).then(|| g.mul(x)));
                    return Ok(vec![ga.transpose()?, gb.transpose()?]);
                }
                BinaryOp::Div => {
                    let ga = g.div(y)?;
                    (ga.clone(), ga.mul(out)?.neg()?)
                }
                BinaryOp::Pow => {
                    // d/dx x^y = y x^(y-1), taken as 0 where y == 0 (not 0 * 0^-1 = NaN).
                    let dx = y.mul(&x.pow(&y.sub_scalar(1.0)?)?)?;
                    let dx = Tensor::where_cond(&mask(y.eq_scalar(0.0))?, &y.zeros_like(), &dx)?;
                    // d/dy x^y = x^y ln x, taken as 0 where x == 0 and y >= 0 (0 * -inf); for
                    // y < 0 it is inf * -inf = -inf. Both as PyTorch.
                    let zero_base = mask(x.eq_scalar(0.0)?.mul(&y.ge_scalar(0.0)?))?;
                    let dy = Tensor::where_cond(&zero_base, &x.zeros_like(), &out.mul(&x.log()?)?)?;
                    (g.mul(&dx)?, g.mul(&dy)?)
                }
                BinaryOp::BinaryCrossEntropy => {
                    // PyTorch's rules: d/dp = (p - t) / max(p (1 - p), eps) with its float32
                    // eps of 1e-12, finite at p = 0 and 1; d/dt = ln(1 - p) - ln p, unclamped.
                    let eps = f64::from(1e-12_f32);
                    let gp = needed(0)
                        .then(|| {
                            let var = x.mul(&x.neg()?.add_scalar(1.0)?)?.maximum_scalar(eps)?;
                            g.mul(&x.sub(y)?.div(&var)?)
                        })
                        .transpose()?;
                    let gt = needed(1)
                        .then(|| g.mul(&x.neg()?.log1p()?.sub(&x.log()?)?))
                        .transpose()?;
                    return Ok(vec![gp, gt]);
                }
                BinaryOp::Maximum | BinaryOp::Minimum => {
                    // Each side takes the gradient unless it loses; a tie splits it evenly. A
                    // NaN loses to nothing and beats nothing, so both sides keep it (as
                    // PyTorch).
                    let (a_loses, b_loses) = if *b == BinaryOp::Maximum {
                        (x.lt(y), x.gt(y))
                    } else {
                        (x.gt(y), x.lt(y))
                    };
                    let half_tie = mask(x.eq(y))?.mul_scalar(0.5)?;
                    let share =
                        |loses: Result<Tensor>| mask(loses)?.add(&half_tie)?.neg()?.add_scalar(1.0);
                    let ga = needed(0).then(|| g.mul(&share(a_loses)?)).transpose()?;
                    let gb = needed(1).then(|| g.mul(&share(b_loses)?)).transpose()?;
                    return Ok(vec![ga, gb]);
                }
            };
            Ok(vec![Some(ga), Some(gb)])
        }
        Op::Cmp(_) | Op::Argmax { .. } | Op::Argsort { .. } | Op::MaxPool2dIndex(_) => {
            Err(Error::NotDifferentiable { op: op.name() })
        }
        Op::Where => {
            let cond = &inputs[0];
            let zero = g.scalar_like(0.0);
            Ok(vec![
                None,
                Some(Tensor::where_cond(cond, g, &zero)?),
                Some(Tensor::where_cond(cond, &zero, g)?),
            ])
        }
        Op::Reduce { op: r, .. } => {
            let ge = g.broadcast_to(x.shape())?;
            one(match r {
                ReduceOp::Sum => Ok(ge),
                ReduceOp::Max | ReduceOp::Min => {
                    let dims: Vec<isize> = (0..x.rank())
                        .filter(|&d| out.shape()[d] == 1 && x.shape()[d] != 1)
                        .map(|d| d as isize)
                        .collect();
                    let hit = mask(x.eq(&out.broadcast_to(x.shape())?))?;
                    let count = hit.sum(&dims, true)?;
                    hit.mul(&g.div(&count)?)
                }
            })
        }
        Op::MatMul => {
            let y = &inputs[1];
            let gx = needed(0).then(|| product_laid_out_like(g, &y.t()?, x));
            let gy = needed(1).then(|| product_laid_out_like(&x.t()?, g, y));
            Ok(vec![gx.transpose()?, gy.transpose()?])
        }
        Op::Reshape(_) => one(g.reshape(x.shape())),
        Op::Permute(p) => {
            let mut inverse = vec![0; p.len()];
            for (i, &pi) in p.iter().enumerate() {
                inverse[pi] = i;
            }
            one(g.permute(&inverse))
        }
        Op::Expand(_) => one(sum_to_shape(g, x.shape())),
        Op::Narrow { dim, start, len } => {
            let size = x.shape()[*dim];
            let zeros = |n: usize| {
                let mut s = x.shape().to_vec();
                s[*dim] = n;
                Tensor::zeros(&s, g.dtype())
            };
            let (before, after) = (zeros(*start)?, zeros(size - start - len)?);
            one(Tensor::cat(&[&before, g, &after], *dim as isize))
        }
        Op::Cat { dim } => {
            let mut start = 0;
            inputs
                .iter()
                .map(|t| {
                    let len = t.shape()[*dim];
                    let part = g.narrow(*dim as isize, start, len);
                    start += len;
                    part.map(Some)
                })
                .collect()
        }
        Op::Gather { dim } => {
            let idx = &inputs[1];
            Ok(vec![
                Some(x.zeros_like().scatter_add(*dim as isize, idx, g)?),
                None,
            ])
        }
        Op::ScatterAdd { dim } => {
            let idx = &inputs[1];
            Ok(vec![
                Some(g.clone()),
                None,
                Some(g.gather(*dim as isize, idx)?),
            ])
        }
        Op::Cast(_) => {
            if x.dtype().is_float() {
                one(g.to_dtype(x.dtype()))
            } else {
                Ok(vec![None])
            }
        }
        Op::Contiguous => one(Ok(g.clone())),
        Op::SoftmaxCrossEntropy => {
            let labels = &inputs[1];
            let classes = x.shape()[1];
            // The forward pass validated the labels.
            let target = labels.one_hot_unchecked(classes, x.dtype())?;
            let dx = x.softmax(-1)?.sub(&target)?.mul(&g.unsqueeze(-1)?)?;
            Ok(vec![Some(dx), None])
        }
        // The three products of a convolution are linear in each input, and each one's
        // gradients are the other two (transposed convolution = input gradient).
        Op::Conv2d(p) => {
            let w = &inputs[1];
            let gx = needed(0).then(|| g.conv2d_input_grad(w, *p, hw(x)));
            let gw = needed(1).then(|| x.conv2d_weight_grad(g, *p, hw(w)));
            Ok(vec![gx.transpose()?, gw.transpose()?])
        }
        Op::Conv2dInputGrad { conv, .. } => {
            let (dy, w) = (&inputs[0], &inputs[1]);
            let gdy = needed(0).then(|| g.conv2d(w, None, *conv));
            let gw = needed(1).then(|| g.conv2d_weight_grad(dy, *conv, hw(w)));
            Ok(vec![gdy.transpose()?, gw.transpose()?])
        }
        Op::Conv2dWeightGrad { conv, .. } => {
            let dy = &inputs[1];
            let gx = needed(0).then(|| dy.conv2d_input_grad(g, *conv, hw(x)));
            let gdy = needed(1).then(|| x.conv2d(g, None, *conv));
            Ok(vec![gx.transpose()?, gdy.transpose()?])
        }
    }
}
