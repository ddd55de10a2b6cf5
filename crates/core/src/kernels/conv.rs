//! Convolution and max-pooling kernels over contiguous NCHW buffers.
//!
//! A convolution is computed as matrix products (`gemm`, each on one core) of the weight
//! `[o, c k k]` with an im2col matrix `[c k k, positions]` holding the columns of several
//! samples side by side; a pointwise convolution (1x1, stride 1, no padding) multiplies the
//! input planes directly. The gradients are the two other products of the same three
//! matrices: the input's through the weight's transpose and a col2im scatter, the weight's by
//! multiplying the output's gradient with the im2col matrix's transpose.
//!
//! The im2col matrix is read from a zero-padded copy of the input planes. With a stride of one
//! along the rows, each output row is computed at every position of the padded row (`wq`
//! positions, not `wo`): a row of the im2col matrix is then one contiguous run of the padded
//! planes, copied (and, for col2im, added back) in one pass instead of one short copy per
//! output row. The extra positions are computed and discarded in the forward product; in the
//! gradients the output's gradient is zero there, so they add exact zeros (they are zeroed
//! explicitly when an operand holds a non-finite value, where `0 * inf` would not be zero).
//!
//! Samples are spread over a fixed number of tasks (not the thread count), each with its own
//! slice of one scratch buffer, so the results do not depend on the thread count and a
//! compiled graph can plan the scratch buffer once.

use std::borrow::Cow;

use rayon::prelude::*;

use super::elementwise::contiguous;
use super::matmul::{Mat, gemm_into};
use crate::op::{Conv2dParams, Op, Pool2dParams};
use crate::{Element, Error, Layout, Result, Storage};

/// Most tasks a batch is split into.
const TASKS: usize = 16;

/// About how many elements the im2col matrix of one product holds: a task multiplies the
/// columns of several samples at once (one wider product costs less than several narrow
/// ones), as many as keep the matrix within the caches.
const COLUMN_ELEMS: usize = 1 << 16;

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

    /// The padded input plane's height and width.
    fn padded(&self) -> [usize; 2] {
        let [ph, pw] = self.p.padding;
        [self.h + 2 * ph, self.w + 2 * pw]
    }

    /// Positions computed per output row: every position of the padded row for a stride of
    /// one along the rows (those from `wo` on are discarded), else `wo`.
    fn wq(&self) -> usize {
        if self.p.stride[1] == 1 {
            self.padded()[1]
        } else {
            self.wo
        }
    }

    /// Positions computed per output channel: the columns of one sample in the im2col matrix.
    fn lq(&self) -> usize {
        self.ho * self.wq()
    }

    /// Whether every computed position is an output position.
    fn exact(&self) -> bool {
        self.wq() == self.wo
    }

    fn pointwise(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.p.stride == [1, 1] && self.p.padding == [0, 0]
    }

    /// Elements of a zero-padded copy of one sample's group of input planes, with room for a
    /// row of an im2col matrix to run past the last plane by the kernel's width.
    fn padded_len(&self) -> usize {
        if self.pointwise() {
            return 0;
        }
        let [hp, wp] = self.padded();
        self.cg() * hp * wp + (self.kw - 1) * self.p.dilation[1]
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

    /// Samples per product: a task's samples in runs of equal length that keep the im2col
    /// matrix near [`COLUMN_ELEMS`]; one for a pointwise convolution, which reads its input
    /// planes in place.
    fn batch(&self) -> usize {
        if self.pointwise() {
            return 1;
        }
        let most = (COLUMN_ELEMS / (self.ckk() * self.lq()).max(1)).clamp(1, self.chunk());
        self.chunk().div_ceil(self.chunk().div_ceil(most))
    }

    /// The lengths of a task's scratch parts: the im2col matrix of a run of samples, the
    /// run's output-shaped operand as a `[og, run * lq]` matrix, and a padded input plane.
    fn run_scratch(&self) -> [usize; 3] {
        let b = self.batch();
        let cols = if self.pointwise() {
            0
        } else {
            self.ckk() * b * self.lq()
        };
        let stage = if b > 1 || !self.exact() {
            self.og() * b * self.lq()
        } else {
            0
        };
        [cols, stage, self.padded_len()]
    }

    /// Scratch elements one task uses (at least one, so tasks can be zipped with them): its
    /// [`run_scratch`](Self::run_scratch) and, for the weight's gradient, a partial sum.
    fn per_task(&self, dir: Direction) -> usize {
        let partial = if dir == Direction::WeightGrad {
            self.weight_len()
        } else {
            0
        };
        (self.run_scratch().iter().sum::<usize>() + partial).max(1)
    }

    /// Scratch elements a kernel of this direction needs.
    pub fn scratch_len(&self, dir: Direction) -> usize {
        self.tasks() * self.per_task(dir)
    }
}

/// A task's scratch buffer, split into its parts.
struct Scratch<'a, T> {
    cols: &'a mut [T],
    stage: &'a mut [T],
    padded: &'a mut [T],
}

impl<'a, T> Scratch<'a, T> {
    fn split(g: &Geometry, s: &'a mut [T]) -> Self {
        let [c, st, p] = g.run_scratch();
        let (cols, rest) = s.split_at_mut(c);
        let (stage, rest) = rest.split_at_mut(st);
        Scratch {
            cols,
            stage,
            padded: &mut rest[..p],
        }
    }
}

/// Calls `f(im2col_row, padded_offset)` for each row of an im2col matrix: the row's start in
/// the matrix (rows `ld` apart) and its first element's offset in the padded planes.
fn each_row(g: &Geometry, ld: usize, mut f: impl FnMut(usize, usize)) {
    let [hp, wp] = g.padded();
    let [dh, dw] = g.p.dilation;
    for ci in 0..g.cg() {
        for ki in 0..g.kh {
            for kj in 0..g.kw {
                f(
                    ((ci * g.kh + ki) * g.kw + kj) * ld,
                    ci * hp * wp + ki * dh * wp + kj * dw,
                );
            }
        }
    }
}

/// Calls `f(i, j, len)` for each run of one im2col row's elements: its `len` elements from
/// `i` on in the row come from the padded planes at `j, j + stride, ...` (offsets from the
/// row's first padded element). With unit strides the whole row is one run.
fn each_segment(g: &Geometry, mut f: impl FnMut(usize, usize, usize)) {
    let [sh, sw] = g.p.stride;
    let wp = g.padded()[1];
    let wq = g.wq();
    if sh == 1 && sw == 1 {
        return f(0, 0, g.lq());
    }
    for oh in 0..g.ho {
        f(oh * wq, oh * sh * wp, wq);
    }
}

/// Copies one sample's group of input planes `x [cg, h, w]` into `padded` with zero borders.
fn pad<T: Element>(g: &Geometry, x: &[T], padded: &mut [T]) {
    let [hp, wp] = g.padded();
    let [ph, pw] = g.p.padding;
    padded.fill(T::ZERO);
    for ci in 0..g.cg() {
        for ih in 0..g.h {
            let dst = &mut padded[ci * hp * wp + (ih + ph) * wp + pw..][..g.w];
            dst.copy_from_slice(&x[(ci * g.h + ih) * g.w..][..g.w]);
        }
    }
}

/// Writes the im2col matrix `[ckk, lq]` of one sample's padded planes into `cols`, whose rows
/// lie `ld` elements apart.
fn im2col<T: Element>(g: &Geometry, padded: &[T], cols: &mut [T], ld: usize) {
    let sw = g.p.stride[1];
    each_row(g, ld, |r, base| {
        let (row, src) = (&mut cols[r..][..g.lq()], &padded[base..]);
        each_segment(g, |i, j, len| {
            let dst = &mut row[i..][..len];
            if sw == 1 {
                dst.copy_from_slice(&src[j..][..len]);
            } else {
                for (k, d) in dst.iter_mut().enumerate() {
                    *d = src[j + k * sw];
                }
            }
        });
    });
}

/// Adds the im2col matrix `cols` (rows `ld` apart) back into the padded planes it was read
/// from (the adjoint of [`im2col`]); `padded` must be zeroed first.
fn col2im<T: Element>(g: &Geometry, cols: &[T], ld: usize, padded: &mut [T]) {
    let sw = g.p.stride[1];
    each_row(g, ld, |r, base| {
        let row = &cols[r..][..g.lq()];
        each_segment(g, |i, j, len| {
            let dst = &mut padded[base + j..];
            for (k, &v) in row[i..][..len].iter().enumerate() {
                let d = &mut dst[k * sw];
                *d = *d + v;
            }
        });
    });
}

/// Copies the interior of one sample's padded planes into its group of planes `x [cg, h, w]`.
fn unpad<T: Element>(g: &Geometry, padded: &[T], x: &mut [T]) {
    let [hp, wp] = g.padded();
    let [ph, pw] = g.p.padding;
    for ci in 0..g.cg() {
        for ih in 0..g.h {
            x[(ci * g.h + ih) * g.w..][..g.w]
                .copy_from_slice(&padded[ci * hp * wp + (ih + ph) * wp + pw..][..g.w]);
        }
    }
}

/// Sets the discarded positions (those past `wo` in each output row) of every sample of a
/// matrix `[rows, samples * lq]` to zero.
fn zero_discarded<T: Element>(g: &Geometry, m: &mut [T], rows: usize, samples: usize) {
    let (wq, ld) = (g.wq(), samples * g.lq());
    for r in 0..rows {
        for oh in 0..samples * g.ho {
            m[r * ld + oh * wq + g.wo..][..wq - g.wo].fill(T::ZERO);
        }
    }
}

fn all_finite<T: Element>(v: &[T]) -> bool {
    v.iter().all(|&x| x.to_f64().is_finite())
}

/// The group `grp` of `rows`-row blocks of `len` elements each, of one sample's buffer.
fn group<T>(s: &[T], grp: usize, rows: usize, len: usize) -> &[T] {
    &s[grp * rows * len..][..rows * len]
}

/// A run of `count` consecutive samples of a task, and the group of them a product takes.
#[derive(Clone, Copy)]
struct Run {
    /// The run's first sample, counted from the task's first.
    first: usize,
    count: usize,
    grp: usize,
}

impl Run {
    /// Elements between the rows of the run's matrices: its samples side by side.
    fn ld(&self, g: &Geometry) -> usize {
        self.count * g.lq()
    }

    /// Whether the run's output-shaped operand is its own rows, with nothing to gather.
    fn in_place(&self, g: &Geometry) -> bool {
        self.count == 1 && g.exact()
    }
}

/// Calls `f(run)` for each run of at most `g.batch()` of a task's `count` samples and each
/// group.
fn each_run(g: &Geometry, count: usize, mut f: impl FnMut(Run) -> Result<()>) -> Result<()> {
    let b = g.batch();
    for first in (0..count).step_by(b) {
        for grp in 0..g.p.groups {
            f(Run {
                first,
                count: b.min(count - first),
                grp,
            })?;
        }
    }
    Ok(())
}

/// The im2col matrix `[ckk, run.ld()]` of a run's samples of `x` (the task's samples,
/// `[count, c, h, w]`), the samples side by side, with its discarded positions zeroed if
/// `clean`; a pointwise convolution's input planes as they are.
fn columns<'a, T: Element>(
    g: &Geometry,
    x: &'a [T],
    run: Run,
    cols: &'a mut [T],
    padded: &mut [T],
    clean: bool,
) -> &'a [T] {
    let (hw, cg) = (g.h * g.w, g.cg());
    let sample = |s: usize| {
        group(
            &x[(run.first + s) * g.c * hw..][..g.c * hw],
            run.grp,
            cg,
            hw,
        )
    };
    if g.pointwise() {
        return sample(0);
    }
    let ld = run.ld(g);
    for s in 0..run.count {
        pad(g, sample(s), padded);
        im2col(g, padded, &mut cols[s * g.lq()..], ld);
    }
    let cols = &mut cols[..g.ckk() * ld];
    if clean && !g.exact() {
        zero_discarded(g, cols, g.ckk(), run.count);
    }
    cols
}

/// Calls `f(staged, at, len)` for the rows of a run's group of an output-shaped buffer
/// `[count, o, ho, wo]`: `len` elements at `staged` in the matrix `[og, run.ld()]` and at `at`
/// in the buffer.
fn each_staged_row(g: &Geometry, run: Run, mut f: impl FnMut(usize, usize, usize)) {
    let (l, og, ld, lq, wq, wo) = (g.l(), g.og(), run.ld(g), g.lq(), g.wq(), g.wo);
    for s in 0..run.count {
        for oc in 0..og {
            let (st, at) = (
                oc * ld + s * lq,
                ((run.first + s) * g.o + run.grp * og + oc) * l,
            );
            if g.exact() {
                f(st, at, l);
            } else {
                for oh in 0..g.ho {
                    f(st + oh * wq, at + oh * wo, wo);
                }
            }
        }
    }
}

/// The output-shaped operand `dy [count, o, ho, wo]` of a run as the matrix
/// `[og, run.ld()]`, zero at the discarded positions: the sample's own rows when they are
/// that matrix, else gathered into `stage`.
fn staged<'a, T: Element>(g: &Geometry, dy: &'a [T], run: Run, stage: &'a mut [T]) -> Mat<'a, T> {
    let (og, ld) = (g.og(), run.ld(g));
    if run.in_place(g) {
        let at = (run.first * g.o + run.grp * og) * g.l();
        return Mat::row_major(&dy[at..][..og * ld], og, ld);
    }
    let stage = &mut stage[..og * ld];
    if !g.exact() {
        stage.fill(T::ZERO);
    }
    each_staged_row(g, run, |st, at, len| {
        stage[st..][..len].copy_from_slice(&dy[at..][..len]);
    });
    Mat::row_major(stage, og, ld)
}

/// Runs `f(first_sample, out_chunk, scratch_slice)` for every task, in parallel;
/// `out_per_sample` elements of `out` belong to each sample.
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
    let (l, ckk, og, chw) = (g.l(), g.ckk(), g.og(), g.c * g.h * g.w);
    for_tasks(
        g,
        Direction::Forward,
        out,
        g.o * l,
        scratch,
        |first, outs, scratch| {
            let sc = Scratch::split(g, scratch);
            let count = outs.len() / (g.o * l);
            let xs = &x[first * chw..][..count * chw];
            each_run(g, count, |run| {
                let a = Mat::row_major(group(w, run.grp, og, ckk), og, ckk);
                let ld = run.ld(g);
                let b = Mat::row_major(columns(g, xs, run, sc.cols, sc.padded, false), ckk, ld);
                if run.in_place(g) {
                    let at = (run.first * g.o + run.grp * og) * l;
                    return gemm_into(&mut outs[at..][..og * l], l, a, b, false);
                }
                gemm_into(sc.stage, ld, a, b, false)?;
                each_staged_row(g, run, |st, at, len| {
                    outs[at..][..len].copy_from_slice(&sc.stage[st..][..len]);
                });
                Ok(())
            })
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
    // A non-finite weight times the zero gradient of a discarded position is not zero.
    let clean = !g.exact() && !all_finite(w);
    for_tasks(
        g,
        Direction::InputGrad,
        dx,
        g.c * hw,
        scratch,
        |first, dxs, scratch| {
            let sc = Scratch::split(g, scratch);
            let count = dxs.len() / (g.c * hw);
            let dys = &dy[first * g.o * l..][..count * g.o * l];
            each_run(g, count, |run| {
                let a = Mat::row_major(group(w, run.grp, og, ckk), og, ckk).t();
                let b = staged(g, dys, run, sc.stage);
                let dxg = |s: usize| ((run.first + s) * g.c + run.grp * cg) * hw;
                if g.pointwise() {
                    return gemm_into(&mut dxs[dxg(0)..][..cg * hw], l, a, b, false);
                }
                let ld = run.ld(g);
                let cols = &mut sc.cols[..ckk * ld];
                gemm_into(cols, ld, a, b, false)?;
                if clean {
                    zero_discarded(g, cols, ckk, run.count);
                }
                for s in 0..run.count {
                    sc.padded.fill(T::ZERO);
                    col2im(g, &cols[s * g.lq()..], ld, sc.padded);
                    unpad(g, sc.padded, &mut dxs[dxg(s)..][..cg * hw]);
                }
                Ok(())
            })
        },
    )
}

/// `dw [o, cg, kh, kw]`, the gradient of the weight of `conv2d(x, w)` given the output's
/// gradient `dy`: each task sums its samples' products into its own partial (transposed,
/// `[ckk, og]` per group), and the partials are added in task order.
pub(crate) fn weight_grad<T: Element>(
    g: &Geometry,
    x: &[T],
    dy: &[T],
    dw: &mut [T],
    scratch: &mut [T],
) -> Result<()> {
    let (l, ckk, og, chw) = (g.l(), g.ckk(), g.og(), g.c * g.h * g.w);
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
            let (partial, s) = s.split_at_mut(wl);
            let sc = Scratch::split(g, s);
            partial.fill(T::ZERO);
            let count = chunk.min(g.n - t * chunk);
            let xs = &x[t * chunk * chw..][..count * chw];
            let dys = &dy[t * chunk * g.o * l..][..count * g.o * l];
            // A non-finite input at a discarded position times its zero gradient is not zero.
            let clean = !g.exact() && !all_finite(xs);
            each_run(g, count, |run| {
                let ld = run.ld(g);
                let a = Mat::row_major(columns(g, xs, run, sc.cols, sc.padded, clean), ckk, ld);
                // The transposed gradient `[ckk, og]` of the group: `gemm` writes a row-major
                // destination of this shape about twice as fast as `[og, ckk]`.
                gemm_into(
                    &mut partial[run.grp * og * ckk..][..og * ckk],
                    og,
                    a,
                    staged(g, dys, run, sc.stage).t(),
                    true,
                )
            })
        })?;
    dw.fill(T::ZERO);
    for t in 0..tasks {
        let partial = &scratch[t * per_task..][..wl];
        for (dwg, pg) in dw.chunks_mut(og * ckk).zip(partial.chunks(og * ckk)) {
            for (oc, row) in dwg.chunks_mut(ckk).enumerate() {
                for (r, d) in row.iter_mut().enumerate() {
                    *d = *d + pg[r * og + oc];
                }
            }
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
