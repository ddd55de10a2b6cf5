//! The public tensor operations and the one place primitives are executed.
//!
//! Every tensor operation, public or internal, ends in [`apply`]: it validates nothing (the
//! public methods in the submodules do that and compute output shapes), evaluates the
//! primitive ([`Op`]) with the CPU kernels, records it for autograd when an input tracks
//! gradients and grad mode is on, and reports it to the graph tracer when one is active.
//! Backward rules for each [`Op`] live in `autograd::rules`, written with these same tensor
//! operations.

mod access;
mod conv;
mod elementwise;
mod indexing;
mod linalg;
mod movement;
mod nn;
mod norm;
mod pool;
mod reduce;
mod shaping;
mod sorting;
mod statistics;

use std::sync::Arc;

pub use norm::BatchNormOptions;

use crate::autograd::{anomaly, is_grad_enabled};
use crate::kernels;
use crate::kernels::conv as conv_kernels;
use crate::op::Op;
use crate::shape::numel;
use crate::tensor::Node;
use crate::{DType, Error, Layout, Result, Storage, StorageCell, Tensor};

/// Evaluates `op` on `inputs` (already validated) and returns the output's storage and layout.
/// View ops return the input's storage with a new layout.
fn eval(op: &Op, inputs: &[&Tensor]) -> Result<(Arc<StorageCell>, Layout)> {
    let fresh =
        |s: Storage, shape: &[usize]| (Arc::new(StorageCell::new(s)), Layout::contiguous(shape));
    let x = inputs[0];
    let xl = x.layout();
    let view = |l: Layout| (x.storage_cell().clone(), l);
    Ok(match op {
        Op::Unary(u) => fresh(
            kernels::elementwise::unary(*u, &x.storage(), xl)?,
            x.shape(),
        ),
        Op::Powf(e) => fresh(kernels::elementwise::powf(&x.storage(), xl, *e)?, x.shape()),
        Op::Binary(b) => {
            let y = inputs[1];
            let s = kernels::elementwise::binary(*b, &x.storage(), xl, &y.storage(), y.layout())?;
            fresh(s, x.shape())
        }
        Op::Cmp(c) => {
            let y = inputs[1];
            let s = kernels::elementwise::cmp(*c, &x.storage(), xl, &y.storage(), y.layout())?;
            fresh(s, x.shape())
        }
        Op::Where => {
            let (a, b) = (inputs[1], inputs[2]);
            let s = kernels::elementwise::where_(
                &x.storage(),
                xl,
                &a.storage(),
                a.layout(),
                &b.storage(),
                b.layout(),
            )?;
            fresh(s, x.shape())
        }
        Op::Reduce { op, dims } => {
            let s = kernels::reduce::reduce(*op, &x.storage(), xl, dims)?;
            let mut shape = x.shape().to_vec();
            for &d in dims {
                shape[d] = 1;
            }
            fresh(s, &shape)
        }
        Op::Argmax { dim } => {
            let s = kernels::reduce::argmax(&x.storage(), xl, *dim)?;
            let mut shape = x.shape().to_vec();
            shape[*dim] = 1;
            fresh(s, &shape)
        }
        Op::Argsort { dim, descending } => fresh(
            kernels::reduce::argsort(&x.storage(), xl, *dim, *descending),
            x.shape(),
        ),
        Op::MatMul => {
            let y = inputs[1];
            let s = kernels::matmul::matmul(&x.storage(), xl, &y.storage(), y.layout())?;
            let mut shape = x.shape().to_vec();
            let r = shape.len();
            shape[r - 1] = y.shape()[r - 1];
            fresh(s, &shape)
        }
        Op::Reshape(shape) => match xl.reshaped(shape) {
            Some(l) => view(l),
            None => fresh(kernels::elementwise::contiguous(&x.storage(), xl), shape),
        },
        Op::Permute(p) => view(xl.permuted(p)),
        Op::Expand(shape) => view(xl.broadcast_to(shape)),
        Op::Narrow { dim, start, len } => view(xl.narrowed(*dim, *start, *len)),
        Op::Cat { dim } => {
            let guards: Vec<_> = inputs.iter().map(|t| t.storage()).collect();
            let parts: Vec<(&Storage, &Layout)> = guards
                .iter()
                .zip(inputs)
                .map(|(g, t)| (&**g, t.layout()))
                .collect();
            let mut shape = x.shape().to_vec();
            shape[*dim] = inputs.iter().map(|t| t.shape()[*dim]).sum();
            fresh(kernels::index::cat(&parts, *dim, x.dtype()), &shape)
        }
        Op::Gather { dim } => {
            let idx = inputs[1];
            let mut s = Storage::zeros(x.dtype(), idx.numel());
            kernels::index::gather_into(
                &x.storage(),
                xl,
                &idx.storage(),
                idx.layout(),
                *dim,
                &mut s,
            )?;
            fresh(s, idx.shape())
        }
        Op::ScatterAdd { dim } => {
            let (idx, src) = (inputs[1], inputs[2]);
            let mut s = Storage::zeros(x.dtype(), x.numel());
            kernels::index::scatter_add_into(
                &x.storage(),
                xl,
                &idx.storage(),
                idx.layout(),
                &src.storage(),
                src.layout(),
                *dim,
                &mut s,
            )?;
            fresh(s, x.shape())
        }
        Op::Cast(dt) => fresh(kernels::elementwise::cast(&x.storage(), xl, *dt), x.shape()),
        Op::Contiguous => fresh(
            kernels::elementwise::contiguous(&x.storage(), xl),
            x.shape(),
        ),
        Op::SoftmaxCrossEntropy => {
            let y = inputs[1];
            let s =
                kernels::reduce::softmax_cross_entropy(&x.storage(), xl, &y.storage(), y.layout())?;
            fresh(s, &x.shape()[..1])
        }
        Op::Conv2d(_) | Op::Conv2dInputGrad { .. } | Op::Conv2dWeightGrad { .. } => {
            let y = inputs[1];
            let (dir, g, shape) = conv_kernels::plan(op, x.shape(), y.shape())
                .ok_or_else(|| Error::Internal(format!("{}: unchecked shapes", op.name())))?;
            let (xs, ys) = (x.storage(), y.storage());
            let mut out = Storage::zeros(x.dtype(), numel(&shape));
            let (a, b) = (
                conv_kernels::dense(&xs, xl),
                conv_kernels::dense(&ys, y.layout()),
            );
            conv_kernels::with_scratch(x.dtype(), g.scratch_len(dir), |scratch| {
                conv_kernels::run(dir, &g, &a, &b, &mut out, scratch)
            })?;
            fresh(out, &shape)
        }
        Op::MaxPool2dIndex(p) => {
            let (shape, hw, out_hw) = conv_kernels::pool_shapes(x.shape(), p)
                .ok_or_else(|| Error::Internal("max_pool2d_index: unchecked shape".into()))?;
            let mut out = Storage::zeros(DType::I64, numel(&shape));
            let xs = x.storage();
            conv_kernels::max_pool_index(
                &conv_kernels::dense(&xs, xl),
                shape[0] * shape[1],
                hw,
                out_hw,
                p,
                &mut out,
            )?;
            fresh(out, &shape)
        }
    })
}

/// Runs a primitive op: evaluates it and, when grad mode is on and an input tracks gradients,
/// records it (with its inputs' storage versions) for `backward`.
pub(crate) fn apply(op: Op, inputs: &[&Tensor]) -> Result<Tensor> {
    let (storage, layout) = eval(&op, inputs)?;
    let record =
        op.is_differentiable() && is_grad_enabled() && inputs.iter().any(|t| t.tracks_grad());
    // The op moves into the autograd record when there is one; the tracer reads it there.
    let (node, unrecorded) = if record {
        let node = Node {
            versions: inputs.iter().map(|t| t.storage_cell().version()).collect(),
            out_version: storage.version(),
            inputs: inputs.iter().map(|&t| t.clone()).collect(),
            op,
            site: None,
        };
        (Some(node), None)
    } else {
        (None, Some(op))
    };
    if anomaly::is_anomaly_enabled() {
        return apply_checked(storage, layout, node, unrecorded, inputs);
    }
    let out = Tensor::from_parts(storage, layout, false, node);
    if let Some(op) = out.node().map(|n| &n.op).or(unrecorded.as_ref()) {
        crate::graph::trace::record(op, inputs, &out, None);
    }
    Ok(out)
}

/// The end of [`apply`] in anomaly mode: the op's site is recorded (on the autograd node and
/// in a trace) and its value checked for NaN and infinity.
#[cold]
fn apply_checked(
    storage: Arc<StorageCell>,
    layout: Layout,
    mut node: Option<Node>,
    unrecorded: Option<Op>,
    inputs: &[&Tensor],
) -> Result<Tensor> {
    let site = anomaly::current_site();
    if let Some(n) = node.as_mut() {
        n.site = site.clone();
    }
    let out = Tensor::from_parts(storage, layout, false, node);
    let Some(op) = out.node().map(|n| &n.op).or(unrecorded.as_ref()) else {
        return Err(Error::Internal(
            "an op was neither recorded nor kept".into(),
        ));
    };
    crate::graph::trace::record(op, inputs, &out, site.clone());
    anomaly::check(
        op.name(),
        || inputs.iter().map(|t| t.shape().to_vec()).collect(),
        &out.storage(),
        out.layout(),
        site.as_ref(),
        || inputs.iter().all(|t| anomaly::is_finite(t)),
    )?;
    Ok(out)
}
