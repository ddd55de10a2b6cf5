//! Convolution and max-pooling kernels over contiguous NCHW buffers.
//!
//! A convolution is computed sample by sample and group by group as one matrix product
//! (`gemm`, on one core) of the weight `[o, c k k]` with the sample's im2col matrix
//! `[c k k, ho wo]`; a pointwise convolution (1x1, stride 1, no padding) multiplies the input
//! plane matrix directly. The gradients are the two other products of the same three matrices:
//! the input's through the weight's transpose and a col2im scatter, the weight's by summing
//! each sample's product with its im2col matrix. Samples are spread over a fixed number of
//! tasks (not the thread count), each with its own slice of one scratch buffer, so the results
//! do not depend on the thread count and a compiled graph can plan the scratch buffer once.

use std::borrow::Cow;

use rayon::prelude::*;

use super::elementwise::contiguous;
use super::matmul::{Mat, gemm_into};
use crate::op::{Conv2dParams, Op, Pool2dParams};
use crate::{Element, Error, Layout, Result, Storage};

/// Most tasks a batch is split into.
const TASKS: usize = 16;

/// The sizes of one convolution: input `[n, c, h, w]`, weight `[o, c / groups, kh, kw]`,
/// output `[n, o, ho, wo]`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Geometry {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub o: usize,
    pub kh: usize,
    pub kw: usize,
    pub ho: usize,
    pub wo: usize,
    pub p: Conv2dParams,
}

/// Which of the three products a kernel computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    Forward,
    InputGrad,
    WeightGrad,
}

impl Geometry {
    /// The geometry of input `[n, c, h, w]`, `o` output channels and a `kernel`, or `None`
    /// when the window does not fit or the channels do not split into the groups.
    pub fn new(x: [usize; 4], o: usize, kernel: [usize; 2], p: Conv2dParams) -> Option<Self> {
        let [n, c, h, w] = x;
        let [ho, wo] = p.output_size([h, w], kernel)?;
        let g = p.groups;
        (g > 0 && c.is_multiple_of(g) && o.is_multiple_of(g)).then_some(Geometry {
            n,
            c,
            h,
            w,
            o,
            kh: kernel[0],
            kw: kernel[1],
            ho,
            wo,
            p,
        })
    }

    fn cg(&self) -> usize {
        self.c / self.p.groups
    }

    fn og(&self) -> usize {
        self.o / self.p.groups
    }

    /// Rows of the im2col matrix: one per (input channel of a group, kernel tap).
    fn ckk(&self) -> usize {
        self.cg() * self.kh * self.kw
    }

    /// Output positions per channel.
    fn l(&self) -> usize {
        self.ho * self.wo
    }

    fn pointwise(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.p.stride == [1, 1] && self.p.padding == [0, 0]
    }

    fn weight_len(&self) -> usize {
        self.o * self.ckk()
    }

    fn tasks(&self) -> usize {
        self.n.clamp(1, TASKS)
    }

    /// Samples per task.
    fn chunk(&self) -> usize {
        self.n.div_ceil(self.tasks()).max(1)
    }

    /// Scratch elements one task uses (at least one, so tasks can be zipped with them).
    fn per_task(&self, dir: Direction) -> usize {
        let cols = if self.pointwise() {
            0
        } else {
            self.ckk() * self.l()
        };
        let partial = if dir == Direction::WeightGrad {
            self.weight_len()
        } else {
            0
        };
        (cols + partial).max(1)
    }

    /// Scratch elements a kernel of this direction needs.
    pub fn scratch_len(&self, dir: Direction) -> usize {
        self.tasks() * self.per_task(dir)
    }
}

/// Writes the im2col matrix `[cg kh kw, ho wo]` of one group's input planes `x [cg, h, w]`.
fn im2col<T: Element>(g: &Geometry, x: &[T], cols: &mut [T]) {
    each_tap(g, cols, |plane, row, src_row, ow0, ow1, iw0| {
        let src = &x[plane * g.h * g.w + src_row * g.w..][..g.w];
        if g.p.stride[1] == 1 {
            copy_short(&mut row[ow0..ow1], &src[iw0..iw0 + (ow1 - ow0)]);
        } else {
            for (k, d) in row[ow0..ow1].iter_mut().enumerate() {
                *d = src[iw0 + k * g.p.stride[1]];
            }
        }
    });
}

/// Copies a short row in blocks of eight, inline: a call to `memmove` for each of the many
/// rows of an im2col matrix (a few dozen elements) costs more than the copy.
#[inline(always)]
fn copy_short<T: Copy>(dst: &mut [T], src: &[T]) {
    let mut d = dst.chunks_exact_mut(8);
    let mut s = src.chunks_exact(8);
    for (d, s) in (&mut d).zip(&mut s) {
        d.copy_from_slice(s);
    }
    for (d, s) in d.into_remainder().iter_mut().zip(s.remainder()) {
        *d = *s;
    }
}

/// Adds the im2col matrix `cols` back into the planes `x [cg, h, w]` it was read from (the
/// adjoint of [`im2col`]); `x` must be zeroed first.
fn col2im<T: Element>(g: &Geometry, cols: &[T], x: &mut [T]) {
    let (h, w, l, wo) = (g.h, g.w, g.l(), g.wo);
    let (kh, kw) = (g.kh, g.kw);
    let [sh, sw] = g.p.stride;
    let [ph, pw] = g.p.padding;
    let [dh, dw] = g.p.dilation;
    for ci in 0..g.cg() {
        let plane = &mut x[ci * h * w..][..h * w];
        for ki in 0..kh {
            for kj in 0..kw {
                let row = &cols[((ci * kh + ki) * kw + kj) * l..][..l];
                let (ow0, ow1) = valid_range(wo, w, sw, kj * dw, pw);
                for oh in 0..g.ho {
                    let Some(ih) = (oh * sh + ki * dh).checked_sub(ph).filter(|&i| i < h) else {
                        continue;
                    };
                    if ow0 >= ow1 {
                        continue;
                    }
                    let iw0 = ow0 * sw + kj * dw - pw;
                    let dst = &mut plane[ih * w..][..w];
                    let src = &row[oh * wo..][..wo];
                    for (k, &v) in src[ow0..ow1].iter().enumerate() {
                        let d = &mut dst[iw0 + k * sw];
                        *d = *d + v;
                    }
                }
            }
        }
    }
}

/// The output columns `ow0..ow1` whose input column `ow * stride + tap - pad` lies in
/// `0..w`.
fn valid_range(wo: usize, w: usize, stride: usize, tap: usize, pad: usize) -> (usize, usize) {
    let lo = pad.saturating_sub(tap).div_ceil(stride).min(wo);
    let hi = (w + pad).saturating_sub(tap).div_ceil(stride).min(wo);
    (lo, hi.max(lo))
}

/// Walks the rows of an im2col matrix: for each (plane, tap) row and output row `oh`, calls
/// `f(plane, row_slice, input_row, ow0, ow1, iw0)` for the valid columns after zeroing the rest.
fn each_tap<T: Element>(
    g: &Geometry,
    cols: &mut [T],
    mut f: impl FnMut(usize, &mut [T], usize, usize, usize, usize),
) {
    let (h, w, l, wo) = (g.h, g.w, g.l(), g.wo);
    let (kh, kw) = (g.kh, g.kw);
    let [sh, sw] = g.p.stride;
    let [ph, pw] = g.p.padding;
    let [dh, dw] = g.p.dilation;
    for ci in 0..g.cg() {
        for ki in 0..kh {
            for kj in 0..kw {
                let row = &mut cols[((ci * kh + ki) * kw + kj) * l..][..l];
                let (ow0, ow1) = valid_range(wo, w, sw, kj * dw, pw);
                for oh in 0..g.ho {
                    let dst = &mut row[oh * wo..][..wo];
                    match (oh * sh + ki * dh).checked_sub(ph).filter(|&i| i < h) {
                        Some(ih) if ow0 < ow1 => {
                            dst[..ow0].fill(T::ZERO);
                            dst[ow1..].fill(T::ZERO);
                            f(ci, dst, ih, ow0, ow1, ow0 * sw + kj * dw - pw);
                        }
                        _ => dst.fill(T::ZERO),
                    }
                }
            }
        }
    }
}

/// The group `grp` of `rows`-row blocks of `len` elements each, of one sample's buffer.
fn group<T>(s: &[T], grp: usize, rows: usize, len: usize) -> &[T] {
    &s[grp * rows * len..][..rows * len]
}

/// The matrix of one sample group's im2col (or, pointwise, its input planes).
fn columns<'a, T: Element>(g: &Geometry, xg: &'a [T], cols: &'a mut [T]) -> &'a [T] {
    if g.pointwise() {
        xg
    } else {
        im2col(g, xg, cols);
        &cols[..g.ckk() * g.l()]
    }
}

/// Runs `f(first_sample, samples_in_chunk, out_chunk, scratch_slice)` for every task, in
/// parallel; `out_per_sample` elements of `out` belong to each sample.
fn for_tasks<T: Element>(
    g: &Geometry,
    dir: Direction,
    out: &mut [T],
    out_per_sample: usize,
    scratch: &mut [T],
    f: impl Fn(usize, &mut [T], &mut [T]) -> Result<()> + Sync + Send,
) -> Result<()> {
    let need = g.scratch_len(dir);
    if scratch.len() < need || out.len() != g.n * out_per_sample {
        return Err(Error::Internal(format!(
            "conv2d kernel: scratch of {} for {need}, output of {} for {}",
            scratch.len(),
            out.len(),
            g.n * out_per_sample
        )));
    }
    let chunk = g.chunk();
    if out_per_sample == 0 || g.n == 0 {
        return Ok(());
    }
    out.par_chunks_mut(chunk * out_per_sample)
        .zip(scratch[..need].par_chunks_mut(g.per_task(dir)))
        .enumerate()
        .try_for_each(|(t, (o, s))| f(t * chunk, o, s))
}

/// `out [n, o, ho, wo] = conv2d(x [n, c, h, w], w [o, cg, kh, kw])`.
pub(crate) fn forward<T: Element>(
    g: &Geometry,
    x: &[T],
    w: &[T],
    out: &mut [T],
    scratch: &mut [T],
) -> Result<()> {
    let (l, ckk, og, cg, hw) = (g.l(), g.ckk(), g.og(), g.cg(), g.h * g.w);
    for_tasks(
        g,
        Direction::Forward,
        out,
        g.o * l,
        scratch,
        |first, outs, cols| {
            for (s, out_s) in outs.chunks_mut(g.o * l).enumerate() {
                let xs = &x[(first + s) * g.c * hw..][..g.c * hw];
                for grp in 0..g.p.groups {
                    let b = columns(g, group(xs, grp, cg, hw), cols);
                    gemm_into(
                        &mut out_s[grp * og * l..][..og * l],
                        l,
                        Mat::row_major(group(w, grp, og, ckk), og, ckk),
                        Mat::row_major(b, ckk, l),
                        false,
                    )?;
                }
            }
            Ok(())
        },
    )
}

/// `dx [n, c, h, w]`, the gradient of the input of `conv2d(x, w)` given the output's
/// gradient `dy [n, o, ho, wo]` (a transposed convolution).
pub(crate) fn input_grad<T: Element>(
    g: &Geometry,
    dy: &[T],
    w: &[T],
    dx: &mut [T],
    scratch: &mut [T],
) -> Result<()> {
    let (l, ckk, og, cg, hw) = (g.l(), g.ckk(), g.og(), g.cg(), g.h * g.w);
    for_tasks(
        g,
        Direction::InputGrad,
        dx,
        g.c * hw,
        scratch,
        |first, dxs, cols| {
            for (s, dx_s) in dxs.chunks_mut(g.c * hw).enumerate() {
                let dys = &dy[(first + s) * g.o * l..][..g.o * l];
                for grp in 0..g.p.groups {
                    let a = Mat::row_major(group(w, grp, og, ckk), og, ckk).t();
                    let b = Mat::row_major(group(dys, grp, og, l), og, l);
                    let dxg = &mut dx_s[grp * cg * hw..][..cg * hw];
                    if g.pointwise() {
                        gemm_into(dxg, l, a, b, false)?;
                    } else {
                        gemm_into(&mut cols[..ckk * l], l, a, b, false)?;
                        dxg.fill(T::ZERO);
                        col2im(g, cols, dxg);
                    }
                }
            }
            Ok(())
        },
    )
}

/// `dw [o, cg, kh, kw]`, the gradient of the weight of `conv2d(x, w)` given the output's
/// gradient `dy`: each task sums its samples' products into its own partial, and the partials
/// are added in task order.
pub(crate) fn weight_grad<T: Element>(
    g: &Geometry,
    x: &[T],
    dy: &[T],
    dw: &mut [T],
    scratch: &mut [T],
) -> Result<()> {
    let (l, ckk, og, cg, hw) = (g.l(), g.ckk(), g.og(), g.cg(), g.h * g.w);
    let wl = g.weight_len();
    if dw.len() != wl {
        return Err(Error::Internal("conv2d weight grad: output size".into()));
    }
    let per_task = g.per_task(Direction::WeightGrad);
    let need = g.scratch_len(Direction::WeightGrad);
    if scratch.len() < need {
        return Err(Error::Internal("conv2d weight grad: scratch size".into()));
    }
    let chunk = g.chunk();
    let tasks = g.n.div_ceil(chunk);
    scratch[..tasks * per_task]
        .par_chunks_mut(per_task)
        .enumerate()
        .try_for_each(|(t, s)| -> Result<()> {
            let (partial, cols) = s.split_at_mut(wl);
            partial.fill(T::ZERO);
            let samples = (t * chunk)..((t + 1) * chunk).min(g.n);
            for n in samples {
                let xs = &x[n * g.c * hw..][..g.c * hw];
                let dys = &dy[n * g.o * l..][..g.o * l];
                for grp in 0..g.p.groups {
                    let b = columns(g, group(xs, grp, cg, hw), cols);
                    gemm_into(
                        &mut partial[grp * og * ckk..][..og * ckk],
                        ckk,
                        Mat::row_major(group(dys, grp, og, l), og, l),
                        Mat::row_major(b, ckk, l).t(),
                        true,
                    )?;
                }
            }
            Ok(())
        })?;
    dw.fill(T::ZERO);
    for t in 0..tasks {
        for (d, &p) in dw.iter_mut().zip(&scratch[t * per_task..][..wl]) {
            *d = *d + p;
        }
    }
    Ok(())
}

/// Runs one of the three convolution products on float storages of one dtype.
///
/// # Errors
/// [`Error::DTypeMismatch`] for mixed or integer storages, [`Error::Internal`] for buffers of
/// the wrong size.
pub(crate) fn run(
    dir: Direction,
    g: &Geometry,
    a: &Storage,
    b: &Storage,
    out: &mut Storage,
    scratch: &mut Storage,
) -> Result<()> {
    macro_rules! go {
        ($a:expr, $b:expr, $o:expr, $s:expr) => {
            match dir {
                Direction::Forward => forward(g, $a, $b, $o, $s),
                Direction::InputGrad => input_grad(g, $a, $b, $o, $s),
                Direction::WeightGrad => weight_grad(g, $a, $b, $o, $s),
            }
        };
    }
    match (a, b, out, scratch) {
        (Storage::F32(a), Storage::F32(b), Storage::F32(o), Storage::F32(s)) => go!(a, b, o, s),
        (Storage::F64(a), Storage::F64(b), Storage::F64(o), Storage::F64(s)) => go!(a, b, o, s),
        (a, b, _, _) => Err(Error::DTypeMismatch {
            op: "conv2d",
            lhs: a.dtype(),
            rhs: b.dtype(),
        }),
    }
}

/// For each window of a max pooling of `x [planes, h, w]`, the index `ih * w + iw` of its
/// maximum, into `out [planes, ho * wo]`: the first maximum in row-major window order, and the
/// last NaN when there is one (PyTorch's CPU kernel does the same).
fn max_pool_index_t<T: Element>(
    x: &[T],
    [h, w]: [usize; 2],
    [ho, wo]: [usize; 2],
    p: &Pool2dParams,
    out: &mut [i64],
) {
    let [kh, kw] = p.kernel;
    let [sh, sw] = p.stride;
    let [ph, pw] = p.padding;
    let [dh, dw] = p.dilation;
    let plane_out = ho * wo;
    if plane_out == 0 || h * w == 0 {
        return;
    }
    let per_task = (super::TASK_SIZE / (kh * kw).max(1)).max(plane_out);
    let planes_per_task = (per_task / plane_out).max(1);
    // The taps `k` of an axis whose input position `o * stride + k * dilation - pad` lies
    // inside `0..size`.
    // (Divisions only for dilated windows: they would cost more than the window itself.)
    let taps = |o: usize, stride: usize, dil: usize, pad: usize, k: usize, size: usize| {
        let start = o * stride;
        let (before, past) = (
            pad.saturating_sub(start),
            (size + pad).saturating_sub(start),
        );
        let (lo, hi) = if dil == 1 {
            (before.min(k), past.min(k))
        } else {
            (before.div_ceil(dil).min(k), past.div_ceil(dil).min(k))
        };
        (lo, hi.max(lo), (start + lo * dil).saturating_sub(pad))
    };
    out.par_chunks_mut(planes_per_task * plane_out)
        .enumerate()
        .for_each(|(t, chunk)| {
            for (q, o) in chunk.chunks_mut(plane_out).enumerate() {
                let plane = &x[(t * planes_per_task + q) * h * w..][..h * w];
                for oh in 0..ho {
                    let (ki0, ki1, ih0) = taps(oh, sh, dh, ph, kh, h);
                    for ow in 0..wo {
                        let (kj0, kj1, iw0) = taps(ow, sw, dw, pw, kw, w);
                        let mut at = ih0 * w + iw0;
                        for r in 0..ki1 - ki0 {
                            let row = (ih0 + r * dh) * w + iw0;
                            for c in 0..kj1 - kj0 {
                                let i = row + c * dw;
                                let v = plane[i];
                                // Branch-free: the comparison is unpredictable on real data.
                                // Branch-free (the comparison is unpredictable on real data):
                                // the running maximum is re-read at its index.
                                let take = (v > plane[at]) | v.is_nan();
                                at = std::hint::select_unpredictable(take, i, at);
                            }
                        }
                        o[oh * wo + ow] = at as i64;
                    }
                }
            }
        });
}

/// [`max_pool_index_t`] on a float storage of `[planes, h, w]` (from its first element)
/// into i64 `out`.
///
/// # Errors
/// [`Error::UnsupportedDType`] for an integer input, [`Error::Internal`] for an output of the
/// wrong type or size.
pub(crate) fn max_pool_index(
    x: &Storage,
    planes: usize,
    hw: [usize; 2],
    out_hw: [usize; 2],
    p: &Pool2dParams,
    out: &mut Storage,
) -> Result<()> {
    let Storage::I64(o) = out else {
        return Err(Error::Internal("max_pool2d_index: output not i64".into()));
    };
    if o.len() != planes * out_hw[0] * out_hw[1] || x.len() < planes * hw[0] * hw[1] {
        return Err(Error::Internal("max_pool2d_index: output size".into()));
    }
    match x {
        Storage::F32(v) => max_pool_index_t(v, hw, out_hw, p, o),
        Storage::F64(v) => max_pool_index_t(v, hw, out_hw, p, o),
        Storage::I64(_) => {
            return Err(Error::UnsupportedDType {
                op: "max_pool2d",
                dtype: crate::DType::I64,
            });
        }
    }
    Ok(())
}

/// The direction, geometry and output shape of a convolution op whose inputs have shapes `a`
/// and `b` (already validated by the op's public method); `None` for other ops or shapes that
/// do not fit.
pub(crate) fn plan(op: &Op, a: &[usize], b: &[usize]) -> Option<(Direction, Geometry, Vec<usize>)> {
    let four = |s: &[usize]| -> Option<[usize; 4]> { s.try_into().ok() };
    match op {
        Op::Conv2d(p) => {
            let [o, _, kh, kw] = four(b)?;
            let g = Geometry::new(four(a)?, o, [kh, kw], *p)?;
            Some((Direction::Forward, g, vec![g.n, o, g.ho, g.wo]))
        }
        Op::Conv2dInputGrad { conv, input } => {
            let [n, o, ho, wo] = four(a)?;
            let [o2, cg, kh, kw] = four(b)?;
            let x = [n, cg * conv.groups, input[0], input[1]];
            let g = Geometry::new(x, o, [kh, kw], *conv)?;
            (o == o2 && [g.ho, g.wo] == [ho, wo]).then(|| (Direction::InputGrad, g, x.to_vec()))
        }
        Op::Conv2dWeightGrad { conv, kernel } => {
            let x = four(a)?;
            let [n, o, ho, wo] = four(b)?;
            let g = Geometry::new(x, o, *kernel, *conv)?;
            (n == x[0] && [g.ho, g.wo] == [ho, wo]).then(|| {
                let shape = vec![o, x[1] / conv.groups, kernel[0], kernel[1]];
                (Direction::WeightGrad, g, shape)
            })
        }
        _ => None,
    }
}

thread_local! {
    /// The eager ops' scratch buffer, one per thread and dtype, grown as needed and kept, so
    /// a convolution does not allocate and zero its im2col columns at every call.
    static SCRATCH: std::cell::RefCell<[Storage; 2]> =
        const { std::cell::RefCell::new([Storage::F32(Vec::new()), Storage::F64(Vec::new())]) };
}

/// Runs `f` with this thread's scratch buffer of `dtype`, at least `len` elements long (its
/// contents are whatever the last user left). A thread that is already inside `f` (a rayon
/// worker that took up another convolution while waiting for its tasks) gets a new buffer.
pub(crate) fn with_scratch<R>(
    dtype: crate::DType,
    len: usize,
    f: impl FnOnce(&mut Storage) -> R,
) -> R {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buffers) => {
            let k = usize::from(dtype == crate::DType::F64);
            if buffers[k].len() < len {
                buffers[k] = Storage::zeros(dtype, len);
            }
            f(&mut buffers[k])
        }
        Err(_) => f(&mut Storage::zeros(dtype, len)),
    })
}

/// A storage as a contiguous buffer from its first element: borrowed when it already is one.
pub(crate) fn dense<'a>(s: &'a Storage, l: &Layout) -> Cow<'a, Storage> {
    if l.is_contiguous() && l.offset() == 0 {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(contiguous(s, l))
    }
}

/// The output shape `[n, c, ho * wo]` of [`Op::MaxPool2dIndex`] on `x [n, c, h, w]`, with
/// `[h, w]` and `[ho, wo]`.
pub(crate) fn pool_shapes(
    x: &[usize],
    p: &Pool2dParams,
) -> Option<(Vec<usize>, [usize; 2], [usize; 2])> {
    let [n, c, h, w]: [usize; 4] = x.try_into().ok()?;
    let [ho, wo] = p.as_conv().output_size([h, w], p.kernel)?;
    Some((vec![n, c, ho * wo], [h, w], [ho, wo]))
}
