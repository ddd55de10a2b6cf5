//! Compiling and replaying. [`compile`] traces a function, optimises its graph and plans its
//! memory: every node is placed at compile time, either as a view (reshape, permute,
//! broadcast, narrow: a layout over its input's buffer, no computation) or in a buffer of the
//! workspace. Buffers are reused by liveness: once the last reader of a value (or of a view of
//! it) has run, its buffer serves the next node of the same dtype and size. The workspace is
//! allocated on the first run and reused by every later run, and the kernels write straight
//! into it, so executing the graph allocates nothing (the `gemm` crate allocates up to two packing
//! buffers inside each matrix product). Values that the traced code assigned to outside
//! tensors (weights, optimizer state) are computed straight into them where that is safe, and
//! copied into them at the end of the run otherwise. [`StaticFn`] keeps one compiled graph per input
//! signature and retraces when shapes or dtypes change.

use std::sync::{Arc, RwLockReadGuard, RwLockWriteGuard};
use std::time::Instant;

use super::ir::FusedOp;
use super::ir::{FusedProgram, Graph, NodeKind};
use super::passes::{MAX_FUSED_LEAVES, PassReport, optimize};
use super::trace::trace;
use crate::kernels::fused::{FusedFloat, Leaf, MAX_GROUP, Member, Native, RowPlan};
use crate::kernels::{Plan, elementwise as ew, fused, matmul, reduce};
use crate::ops::{BinaryOp, CmpOp, Op, ReduceOp, UnaryOp, apply};
use crate::{DType, Error, Layout, Result, Storage, StorageCell, Tensor, no_grad};

/// Which passes [`compile`] runs (all by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompileOptions {
    /// Compute ops on constants at compile time.
    pub fold_constants: bool,
    /// Collapse view chains and merge duplicate computations.
    pub eliminate_common: bool,
    /// Fuse chains of elementwise ops into single loops.
    pub fuse: bool,
}

impl Default for CompileOptions {
    fn default() -> Self {
        CompileOptions {
            fold_constants: true,
            eliminate_common: true,
            fuse: true,
        }
    }
}

impl CompileOptions {
    /// No optimisation: the traced graph replayed as recorded.
    pub const NONE: CompileOptions = CompileOptions {
        fold_constants: false,
        eliminate_common: false,
        fuse: false,
    };
}

/// The shapes and dtypes of a call's inputs.
type Signature = Vec<(Vec<usize>, DType)>;

fn signature(inputs: &[Tensor]) -> Signature {
    inputs
        .iter()
        .map(|t| (t.shape().to_vec(), t.dtype()))
        .collect()
}

/// Where a node's value lives during a run.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Slot {
    Input(usize),
    Param(usize),
    Const(usize),
    Buffer(usize),
}

/// What computes a node (views and leaves compute nothing).
enum Kernel {
    Nothing,
    Unary(UnaryOp, Plan<1>),
    Powf(f64, Plan<1>),
    Binary(BinaryOp, Plan<2>),
    Cmp(CmpOp, Plan<2>),
    Where(Plan<3>),
    /// A copy or dtype conversion into a contiguous buffer.
    Convert(Plan<1>),
    MatMul,
    Reduce(ReduceOp, Vec<usize>),
    SoftmaxCrossEntropy,
    /// A fused elementwise program.
    Fused {
        program: Arc<FusedProgram>,
        plan: RowPlan,
        /// Its hand-written loop, if it has one.
        native: Option<Native>,
        /// The nodes run together with it: itself alone, or, for the last of a group of
        /// in-place updates over one index space, the whole group in order. Empty for the other
        /// members of a group, which the last one runs.
        group: Vec<usize>,
    },
    /// `out -= scale * (a b)`: an in-place update `w - g * lr` whose `g` is a matrix product,
    /// computed by one product that reads and writes `w` (nodes: a, b, scale).
    MatMulUpdate(usize, usize, usize),
    /// Ops without an in-place kernel: computed by `apply` and copied into the buffer.
    Other(Op),
}

/// Memory-planning figures of a compiled graph.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryPlan {
    /// Nodes that compute a value.
    pub computed: usize,
    /// Nodes that are views of another node's value.
    pub views: usize,
    /// Workspace buffers after reuse.
    pub buffers: usize,
    /// Bytes of the workspace.
    pub bytes: usize,
    /// Bytes if every computed node had its own buffer.
    pub bytes_without_reuse: usize,
    /// Stored values computed in place into their parameter's storage (no buffer, no copy).
    pub in_place: usize,
    /// In-place updates `w - g * lr` whose product `g` accumulates straight into `w`.
    pub product_updates: usize,
    /// In-place updates run block by block together with the one before them (an optimizer's
    /// moments and its weight): one pass over memory instead of one each.
    pub grouped: usize,
    /// Fused nodes computed by a hand-written loop (Adam's updates) instead of step by step.
    pub native: usize,
}

/// A traced and optimised graph with its memory plan, ready to run on inputs of the traced
/// shapes.
pub struct CompiledGraph {
    graph: Graph,
    slots: Vec<Slot>,
    layouts: Vec<Layout>,
    kernels: Vec<Kernel>,
    consts: Vec<Tensor>,
    /// `(parameter, node)` pairs, to check at each run that parameters kept their layout.
    param_nodes: Vec<(usize, usize)>,
    /// The graph's stores with the plan that copies each value into its parameter.
    stores: Vec<(usize, usize, Plan<1>)>,
    buffer_specs: Vec<(DType, usize)>,
    /// The workspace: shared with the tensors `output` hands out; a buffer still shared when
    /// the graph runs again is replaced by a fresh one (copy on write).
    buffers: Vec<Option<Arc<StorageCell>>>,
    signature: Signature,
    report: PassReport,
    memory: MemoryPlan,
    compile_seconds: f64,
}

/// Where every node lives and what computes it.
struct Placement {
    slots: Vec<Slot>,
    layouts: Vec<Layout>,
    kernels: Vec<Kernel>,
    consts: Vec<Tensor>,
    specs: Vec<(DType, usize)>,
    memory: MemoryPlan,
}

/// Places every node (views over their input, others in buffers reused by liveness) and picks
/// its kernel.
fn plan(graph: &Graph) -> Placement {
    let n = graph.nodes.len();
    let mut slots = Vec::with_capacity(n);
    let mut layouts: Vec<Layout> = Vec::with_capacity(n);
    let mut kernels = Vec::with_capacity(n);
    let mut consts = Vec::new();
    // `base[i]`: the node whose buffer holds node i's elements (i itself unless a view).
    let mut base: Vec<usize> = (0..n).collect();
    let mut memory = MemoryPlan::default();
    for (i, node) in graph.nodes.iter().enumerate() {
        let contiguous = Layout::contiguous(&node.shape);
        let (slot, layout, kernel) = match &node.kind {
            NodeKind::Input(k) => (Slot::Input(*k), contiguous, Kernel::Nothing),
            NodeKind::Param(k) => (
                Slot::Param(*k),
                graph.params[*k].layout().clone(),
                Kernel::Nothing,
            ),
            NodeKind::Const(t) => {
                consts.push(t.clone());
                (
                    Slot::Const(consts.len() - 1),
                    t.layout().clone(),
                    Kernel::Nothing,
                )
            }
            NodeKind::Fused { program, args } => {
                let arg_layouts: Vec<&Layout> = args.iter().map(|&a| &layouts[a]).collect();
                let plan = RowPlan::new(&node.shape, &arg_layouts);
                (
                    Slot::Buffer(usize::MAX),
                    contiguous,
                    Kernel::Fused {
                        program: program.clone(),
                        native: Native::of(program, &plan),
                        plan,
                        group: vec![i],
                    },
                )
            }
            NodeKind::Op { op, args } => {
                let l = |k: usize| &layouts[args[k]];
                let view = match op {
                    Op::Reshape(shape) => l(0).reshaped(shape),
                    Op::Permute(p) => Some(l(0).permuted(p)),
                    Op::Expand(shape) => Some(l(0).broadcast_to(shape)),
                    Op::Narrow { dim, start, len } => Some(l(0).narrowed(*dim, *start, *len)),
                    Op::Contiguous if l(0).is_contiguous() => Some(l(0).clone()),
                    _ => None,
                };
                if let Some(v) = view {
                    base[i] = base[args[0]];
                    memory.views += 1;
                    (slots[args[0]], v, Kernel::Nothing)
                } else {
                    let shape = &node.shape;
                    let kernel = match op {
                        Op::Unary(u) => Kernel::Unary(*u, Plan::new(shape, [l(0)])),
                        Op::Powf(e) => Kernel::Powf(*e, Plan::new(shape, [l(0)])),
                        Op::Binary(b) => Kernel::Binary(*b, Plan::new(shape, [l(0), l(1)])),
                        Op::Cmp(c) => Kernel::Cmp(*c, Plan::new(shape, [l(0), l(1)])),
                        Op::Where => Kernel::Where(Plan::new(shape, [l(0), l(1), l(2)])),
                        Op::Cast(_) | Op::Contiguous | Op::Reshape(_) => {
                            Kernel::Convert(Plan::new(&graph.nodes[args[0]].shape, [l(0)]))
                        }
                        Op::MatMul => Kernel::MatMul,
                        Op::Reduce { op, dims } => Kernel::Reduce(*op, dims.clone()),
                        Op::SoftmaxCrossEntropy => Kernel::SoftmaxCrossEntropy,
                        other => Kernel::Other(other.clone()),
                    };
                    (Slot::Buffer(usize::MAX), contiguous, kernel)
                }
            }
        };
        slots.push(slot);
        layouts.push(layout);
        kernels.push(kernel);
    }
    update_in_place(graph, &base, &layouts, &kernels, &mut slots, &mut memory);
    memory.product_updates = fuse_product_updates(graph, &base, &mut kernels, &mut slots);
    memory.grouped = group_updates(graph, &base, &layouts, &mut kernels, &slots);
    memory.native = kernels
        .iter()
        .filter(|k| {
            matches!(
                k,
                Kernel::Fused {
                    native: Some(_),
                    ..
                }
            )
        })
        .count();
    // The last node reading each buffer's value, directly or through a view.
    // A grouped update reads its operands when its group runs, at the last member.
    let mut runs_at: Vec<usize> = (0..n).collect();
    for (i, kernel) in kernels.iter().enumerate() {
        if let Kernel::Fused { group, .. } = kernel {
            for &m in group {
                runs_at[m] = i;
            }
        }
    }
    let mut end = vec![0usize; n];
    for (i, node) in graph.nodes.iter().enumerate() {
        let moved = match kernels[i] {
            Kernel::MatMulUpdate(a, b, _) => [a, b],
            _ => [i, i],
        };
        for &a in node.args().iter().chain(moved.iter().filter(|&&a| a != i)) {
            end[base[a]] = end[base[a]].max(runs_at[i]);
        }
    }
    for o in graph.roots() {
        end[base[o]] = usize::MAX;
    }
    // Assign buffers: a buffer is free again once its value's last reader has run.
    let mut specs: Vec<(DType, usize)> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let mut live: Vec<(usize, usize)> = Vec::new(); // (buffer, end)
    for (i, node) in graph.nodes.iter().enumerate() {
        if slots[i] != Slot::Buffer(usize::MAX) {
            continue;
        }
        let mut k = 0;
        while k < live.len() {
            if live[k].1 < i {
                free.push(live.swap_remove(k).0);
            } else {
                k += 1;
            }
        }
        let need = (node.dtype, crate::shape::numel(&node.shape));
        memory.computed += 1;
        memory.bytes_without_reuse += need.1 * need.0.size_in_bytes();
        let b = match free.iter().position(|&b| specs[b] == need) {
            Some(p) => free.swap_remove(p),
            None => {
                specs.push(need);
                specs.len() - 1
            }
        };
        slots[i] = Slot::Buffer(b);
        live.push((b, end[i]));
    }
    // Views inherit their base's final slot.
    for i in 0..n {
        if base[i] != i {
            slots[i] = slots[base[i]];
        }
    }
    memory.buffers = specs.len();
    memory.bytes = specs.iter().map(|(d, n)| n * d.size_in_bytes()).sum();
    Placement {
        slots,
        layouts,
        kernels,
        consts,
        specs,
        memory,
    }
}

/// Places stored values straight into their parameter's storage where that is safe: the value
/// is computed by a fused kernel with the parameter's shape and dtype, the parameter is a
/// contiguous tensor, and nothing reads its old value after the update (or through a view in
/// the update itself). The update then reads and writes the parameter in one pass, and the
/// store needs no copy.
fn update_in_place(
    graph: &Graph,
    base: &[usize],
    layouts: &[Layout],
    kernels: &[Kernel],
    slots: &mut [Slot],
    memory: &mut MemoryPlan,
) {
    for &(k, v) in &graph.stores {
        let param = &graph.params[k];
        let node = &graph.nodes[v];
        let fits = matches!(kernels[v], Kernel::Fused { .. })
            && slots[v] == Slot::Buffer(usize::MAX)
            && node.shape == param.shape()
            && node.dtype == param.dtype()
            && *param.layout() == Layout::contiguous(&node.shape)
            && !graph.outputs.contains(&v);
        if !fits {
            continue;
        }
        let reads_old =
            |a: usize| matches!(graph.nodes[base[a]].kind, NodeKind::Param(j) if j == k);
        let late_reader = graph.nodes.iter().enumerate().any(|(j, n)| {
            n.args().iter().any(|&a| {
                reads_old(a) && (j > v || (j == v && layouts[a] != Layout::contiguous(&node.shape)))
            })
        });
        // An output or another store that is the old value reads it after the run.
        let returned = graph.roots().any(reads_old);
        if !late_reader && !returned {
            slots[v] = Slot::Param(k);
            memory.in_place += 1;
        }
    }
}

/// Turns an in-place update `w <- w - g * lr` whose `g` is a matrix product read by nothing
/// else into one product that accumulates into `w` (`gemm` with the destination read): the
/// gradient is never written out and the update needs no pass of its own. The product then
/// runs at the update's place, so its operands stay live until there.
fn fuse_product_updates(
    graph: &Graph,
    base: &[usize],
    kernels: &mut [Kernel],
    slots: &mut [Slot],
) -> usize {
    let users = graph.users();
    let mut fused = 0;
    for &(k, v) in &graph.stores {
        if slots[v] != Slot::Param(k) {
            continue;
        }
        let (Kernel::Fused { program, .. }, NodeKind::Fused { args, .. }) =
            (&kernels[v], &graph.nodes[v].kind)
        else {
            continue;
        };
        let l = program.leaves;
        let [
            FusedOp::Binary(BinaryOp::Mul, x, y),
            FusedOp::Binary(BinaryOp::Sub, w, t),
        ] = program.steps.as_slice()
        else {
            continue;
        };
        let is_target = |r: usize| {
            r < l && matches!(graph.nodes[base[args[r]]].kind, NodeKind::Param(j) if j == k)
        };
        let is_scalar =
            |r: usize| r < l && crate::shape::numel(&graph.nodes[base[args[r]]].shape) == 1;
        let is_product = |r: usize| {
            r < l && {
                let m = args[r];
                matches!(kernels[m], Kernel::MatMul)
                    && base[m] == m
                    && users[m] == [v]
                    && !graph.roots().any(|o| o == m)
                    && graph.nodes[m].shape.len() == 2
            }
        };
        let (product, scale) = if is_product(*x) && is_scalar(*y) {
            (*x, *y)
        } else if is_product(*y) && is_scalar(*x) {
            (*y, *x)
        } else {
            continue;
        };
        if *t != l || !is_target(*w) {
            continue;
        }
        let m = args[product];
        let [a, b] = graph.nodes[m].args() else {
            continue;
        };
        // The operands and the scale must not live in the updated tensor itself.
        if [*a, *b, args[scale]]
            .iter()
            .any(|&o| slots[base[o]] == Slot::Param(k))
        {
            continue;
        }
        kernels[v] = Kernel::MatMulUpdate(*a, *b, args[scale]);
        kernels[m] = Kernel::Nothing;
        slots[m] = Slot::Param(k);
        fused += 1;
    }
    fused
}

/// Groups in-place updates over one index space (the same element count and dtype, every
/// operand read with a single stride) so they run block by block together: an optimizer's
/// moments are then still in cache when the weight's update reads them, and the gradient is
/// read from memory once. A group runs at its last member. It is safe when every operand
/// living in a tensor the group writes (its old value, a member's new value, or a view of
/// either) is read at the index being written: member by member, each block then sees what
/// running the members one after another would have shown it. Nodes between members (the
/// bias corrections computed once for all weights) run before the group; they must write a
/// buffer and read nothing the group writes. Returns how many updates joined a group.
fn group_updates(
    graph: &Graph,
    base: &[usize],
    layouts: &[Layout],
    kernels: &mut [Kernel],
    slots: &[Slot],
) -> usize {
    let target = |i: usize| match (&kernels[i], slots[i]) {
        (Kernel::Fused { plan, .. }, Slot::Param(k)) if plan.is_flat() => Some(k),
        _ => None,
    };
    let size = |i: usize| {
        (
            crate::shape::numel(&graph.nodes[i].shape),
            graph.nodes[i].dtype,
        )
    };
    let written_by =
        |members: &[usize]| -> Vec<usize> { members.iter().filter_map(|&m| target(m)).collect() };
    let reads_written = |i: usize, written: &[usize]| {
        graph.nodes[i]
            .args()
            .iter()
            .any(|&a| matches!(slots[base[a]], Slot::Param(k) if written.contains(&k)))
    };
    // Every operand of a member that lives in a written tensor is read where it is written.
    let safe = |members: &[usize]| {
        let written = written_by(members);
        let distinct = written
            .iter()
            .enumerate()
            .all(|(a, k)| !written[..a].contains(k));
        distinct
            && members.iter().all(|&m| {
                graph.nodes[m].args().iter().all(|&a| {
                    !matches!(slots[base[a]], Slot::Param(k) if written.contains(&k))
                        || layouts[a] == Layout::contiguous(&graph.nodes[m].shape)
                })
            })
    };
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    for (i, kernel) in kernels.iter().enumerate() {
        if matches!(kernel, Kernel::Nothing) {
            continue;
        }
        let eligible = target(i).is_some();
        if !eligible
            && matches!(slots[i], Slot::Buffer(_))
            && !reads_written(i, &written_by(&current))
        {
            // Runs before the group, which stays open.
            continue;
        }
        let joins = eligible
            && current.first().is_some_and(|&f| size(f) == size(i))
            && current.len() < MAX_GROUP
            && safe(&[current.as_slice(), &[i]].concat());
        if !joins {
            if current.len() > 1 {
                groups.push(std::mem::take(&mut current));
            }
            current.clear();
        }
        if eligible {
            current.push(i);
        }
    }
    if current.len() > 1 {
        groups.push(current);
    }
    let mut grouped = 0;
    for group in groups {
        grouped += group.len() - 1;
        let last = group.len() - 1;
        for (j, &m) in group.iter().enumerate() {
            if let Kernel::Fused { group: run, .. } = &mut kernels[m] {
                *run = if j == last { group.clone() } else { Vec::new() };
            }
        }
    }
    grouped
}

/// Traces `f` on `examples`, optimises the graph and plans its memory (see the module docs).
///
/// ```
/// use ferrograd_core::{DType, Tensor, graph::{compile, CompileOptions}};
/// let w = Tensor::full(0.5, &[3, 2], DType::F64).with_requires_grad(true);
/// let step = |i: &[Tensor]| -> ferrograd_core::Result<Vec<Tensor>> {
///     let loss = i[0].matmul(&w)?.tanh()?.sum_all()?;
///     let grads = loss.backward()?;
///     Ok(vec![loss, grads.get(&w).unwrap().clone()])
/// };
/// let x = Tensor::ones(&[4, 3], DType::F64);
/// let mut compiled = compile(step, &[x.clone()], CompileOptions::default())?;
/// let out = compiled.run(&[x.clone()])?;
/// let eager = step(&[x])?;
/// assert_eq!(out[0].item()?, eager[0].item()?);
/// assert_eq!(out[1].to_vec::<f64>()?, eager[1].to_vec::<f64>()?);
/// # Ok::<(), ferrograd_core::Error>(())
/// ```
///
/// # Errors
/// [`Error::DataDependent`] when `f` reads traced values; errors of `f` and of the passes.
pub fn compile(
    f: impl FnOnce(&[Tensor]) -> Result<Vec<Tensor>>,
    examples: &[Tensor],
    opts: CompileOptions,
) -> Result<CompiledGraph> {
    let start = Instant::now();
    let traced = trace(f, examples)?;
    let (graph, report) = optimize(traced, &opts)?;
    let Placement {
        slots,
        layouts,
        kernels,
        consts,
        specs: buffer_specs,
        memory,
    } = plan(&graph);
    // Updates computed in place need no copy.
    let stores = graph
        .stores
        .iter()
        .filter(|&&(k, v)| slots[v] != Slot::Param(k))
        .map(|&(k, v)| (k, v, Plan::new(&graph.nodes[v].shape, [&layouts[v]])))
        .collect();
    let param_nodes = graph
        .nodes
        .iter()
        .enumerate()
        .filter_map(|(i, n)| match n.kind {
            NodeKind::Param(k) => Some((k, i)),
            _ => None,
        })
        .collect();
    Ok(CompiledGraph {
        graph,
        slots,
        layouts,
        kernels,
        consts,
        param_nodes,
        stores,
        buffer_specs,
        buffers: Vec::new(),
        signature: signature(examples),
        report,
        memory,
        compile_seconds: start.elapsed().as_secs_f64(),
    })
}

/// Contiguous copies of the inputs, when any of them is strided or offset (kernel plans assume
/// contiguous inputs); `None` when they can be read as they are.
fn contiguous_inputs(inputs: &[Tensor]) -> Option<Vec<Tensor>> {
    inputs
        .iter()
        .any(|t| !t.is_contiguous() || t.layout().offset() != 0)
        .then(|| inputs.iter().map(Tensor::contiguous_copy).collect())
}

fn fresh_buffer(dtype: DType, n: usize) -> Arc<StorageCell> {
    Arc::new(StorageCell::new(Storage::zeros(dtype, n)))
}

fn internal(msg: &str) -> Error {
    Error::Argument {
        op: "CompiledGraph::run",
        msg: msg.into(),
    }
}

impl CompiledGraph {
    fn check_inputs(&self, inputs: &[Tensor]) -> Result<()> {
        if inputs.len() != self.signature.len() {
            return Err(Error::Argument {
                op: "CompiledGraph::run",
                msg: format!(
                    "expected {} inputs, got {}",
                    self.signature.len(),
                    inputs.len()
                ),
            });
        }
        for (t, (shape, dtype)) in inputs.iter().zip(&self.signature) {
            if t.shape() != shape.as_slice() {
                return Err(Error::Shape {
                    op: "CompiledGraph::run",
                    expected: format!("an input of the traced shape {shape:?}"),
                    got: t.shape().to_vec(),
                });
            }
            if t.dtype() != *dtype {
                return Err(Error::DTypeMismatch {
                    op: "CompiledGraph::run",
                    lhs: *dtype,
                    rhs: t.dtype(),
                });
            }
        }
        for &(k, i) in &self.param_nodes {
            if self.graph.params[k].layout() != &self.layouts[i] {
                return Err(internal("a parameter changed its layout since tracing"));
            }
        }
        Ok(())
    }

    /// Runs every node into the workspace. Inputs that are not contiguous are copied first.
    /// Allocates nothing after the first run, with contiguous inputs, on one thread (the
    /// `gemm` crate's packing buffers aside).
    ///
    /// # Errors
    /// [`Error::Shape`] / [`Error::DTypeMismatch`] for inputs unlike the traced ones; kernel
    /// errors (an index out of range).
    pub fn execute(&mut self, inputs: &[Tensor]) -> Result<()> {
        self.check_inputs(inputs)?;
        if let Some(owned) = contiguous_inputs(inputs) {
            return self.execute(&owned);
        }
        if self.buffers.len() != self.buffer_specs.len() {
            self.buffers = self
                .buffer_specs
                .iter()
                .map(|&(d, n)| Some(fresh_buffer(d, n)))
                .collect();
        }
        let _guard = no_grad();
        for i in 0..self.graph.nodes.len() {
            match &self.kernels[i] {
                Kernel::Nothing => continue,
                // Run by the last member of its group.
                Kernel::Fused { group, .. } if group.is_empty() => continue,
                Kernel::Fused { group, .. } if group.len() > 1 => {
                    match self.graph.nodes[i].dtype {
                        DType::F32 => self.run_group::<f32>(group, inputs)?,
                        DType::F64 => self.run_group::<f64>(group, inputs)?,
                        DType::I64 => return Err(internal("fused integer node")),
                    }
                    continue;
                }
                _ => {}
            }
            let b = match self.slots[i] {
                Slot::Buffer(b) => b,
                Slot::Param(k) => {
                    // An update computed in place into the parameter's own storage.
                    let cell = self.graph.params[k].storage_cell().clone();
                    let mut target = cell.write();
                    self.compute(i, inputs, &mut target)?;
                    continue;
                }
                _ => return Err(internal("a computed node has no buffer")),
            };
            let mut cell = self.buffers[b]
                .take()
                .ok_or_else(|| internal("a buffer is in use"))?;
            if Arc::get_mut(&mut cell).is_none() {
                // A tensor returned by an earlier run still holds this buffer: leave it that
                // value and compute into a new one.
                let (d, n) = self.buffer_specs[b];
                cell = fresh_buffer(d, n);
            }
            let result = match Arc::get_mut(&mut cell) {
                Some(c) => self.compute(i, inputs, c.get_mut()),
                None => Err(internal("a fresh buffer is shared")),
            };
            self.buffers[b] = Some(cell);
            result?;
        }
        self.write_stores(inputs)
    }

    /// Performs the recorded in-place writes: each stored value is copied into its parameter's
    /// storage (whose version is bumped), after every node has read the old values.
    fn write_stores(&self, inputs: &[Tensor]) -> Result<()> {
        for (k, v, plan) in &self.stores {
            let target = self.graph.params[*k].storage_cell();
            let source = self.cell_of(*v, inputs)?;
            if Arc::ptr_eq(target, &source) {
                // A parameter assigned a view of itself (`p.assign(&p.t())`): copy through a
                // temporary, since source and target cannot be locked together.
                let value = Tensor::from_parts(source, self.layouts[*v].clone(), false, None);
                let copy = ew::contiguous(&value.storage(), value.layout());
                let mut dst = target.write();
                ew::cast_into(
                    &Plan::new(value.shape(), [&Layout::contiguous(value.shape())]),
                    &copy,
                    &mut dst,
                );
                continue;
            }
            let src = source.read();
            let mut dst = target.write();
            ew::cast_into(plan, &src, &mut dst);
        }
        Ok(())
    }

    /// Computes node `i` into `out`.
    fn compute(&self, i: usize, inputs: &[Tensor], out: &mut Storage) -> Result<()> {
        let node = &self.graph.nodes[i];
        let args = node.args();
        if let Kernel::Other(op) = &self.kernels[i] {
            // No in-place kernel: run the op on tensors sharing the inputs' storage, then copy.
            let tensors = args
                .iter()
                .map(|&a| {
                    Ok(Tensor::from_parts(
                        self.cell_of(a, inputs)?,
                        self.layouts[a].clone(),
                        false,
                        None,
                    ))
                })
                .collect::<Result<Vec<_>>>()?;
            let refs: Vec<&Tensor> = tensors.iter().collect();
            let value = apply(op.clone(), &refs)?;
            *out = ew::contiguous(&value.storage(), value.layout());
            return Ok(());
        }
        if let Kernel::MatMulUpdate(a, b, scale) = self.kernels[i] {
            let (sa, sb, ss) = (
                self.cell_of(a, inputs)?,
                self.cell_of(b, inputs)?,
                self.cell_of(scale, inputs)?,
            );
            let (ga, gb, gs) = (sa.read(), sb.read(), ss.read());
            let at = self.layouts[scale].offset();
            let s = match &*gs {
                Storage::F32(v) => v.get(at).map(|&x| f64::from(x)),
                Storage::F64(v) => v.get(at).copied(),
                Storage::I64(_) => None,
            }
            .ok_or_else(|| internal("the scale of a fused update is not a float"))?;
            return matmul::matmul_acc_into(&ga, &self.layouts[a], &gb, &self.layouts[b], -s, out);
        }
        if let Kernel::Fused { group, .. } = &self.kernels[i] {
            return match out {
                Storage::F32(o) => self.run_fused::<f32>(group, inputs, &mut [o.as_mut_slice()]),
                Storage::F64(o) => self.run_fused::<f64>(group, inputs, &mut [o.as_mut_slice()]),
                Storage::I64(_) => Err(internal("fused integer node")),
            };
        }
        if args.len() > MAX_FUSED_LEAVES {
            return Err(internal("a node has more inputs than the executor reads"));
        }
        // Only fused kernels update in place, so no input here lives in `out`.
        let mut guards: [Option<RwLockReadGuard<'_, Storage>>; MAX_FUSED_LEAVES] =
            Default::default();
        for (guard, &a) in guards.iter_mut().zip(args) {
            *guard = Some(self.read(a, inputs)?);
        }
        let src = |k: usize| -> Result<&Storage> {
            guards[k]
                .as_deref()
                .ok_or_else(|| internal("an input value is missing"))
        };
        let lay = |k: usize| &self.layouts[args[k]];
        match &self.kernels[i] {
            Kernel::Nothing => Ok(()),
            Kernel::Unary(op, plan) => ew::unary_into(*op, plan, src(0)?, out),
            Kernel::Powf(e, plan) => ew::powf_into(plan, src(0)?, *e, out),
            Kernel::Binary(op, plan) => ew::binary_into(*op, plan, src(0)?, src(1)?, out),
            Kernel::Cmp(op, plan) => ew::cmp_into(*op, plan, src(0)?, src(1)?, out),
            Kernel::Where(plan) => ew::where_into(plan, src(0)?, src(1)?, src(2)?, out),
            Kernel::Convert(plan) => {
                ew::cast_into(plan, src(0)?, out);
                Ok(())
            }
            Kernel::MatMul => matmul::matmul_into(src(0)?, lay(0), src(1)?, lay(1), out),
            Kernel::SoftmaxCrossEntropy => {
                reduce::softmax_cross_entropy_into(src(0)?, lay(0), src(1)?, lay(1), out)
            }
            Kernel::Reduce(op, dims) => {
                if !reduce::reduce_into(*op, src(0)?, lay(0), dims, out) {
                    *out = reduce::reduce(*op, src(0)?, lay(0), dims)?;
                }
                Ok(())
            }
            // Handled before the inputs are locked, above.
            Kernel::Other(_) | Kernel::MatMulUpdate(..) | Kernel::Fused { .. } => Err(internal(
                "an op without in-place kernel reached the dispatch",
            )),
        }
    }

    /// Runs a group of in-place updates, each into its parameter's storage.
    fn run_group<T: FusedFloat>(&self, group: &[usize], inputs: &[Tensor]) -> Result<()> {
        if group.len() > MAX_GROUP {
            return Err(internal("a group has more members than the executor runs"));
        }
        let mut writes: [Option<RwLockWriteGuard<'_, Storage>>; MAX_GROUP] = Default::default();
        for (w, &m) in writes.iter_mut().zip(group) {
            let Slot::Param(k) = self.slots[m] else {
                return Err(internal("a grouped update is not in place"));
            };
            *w = Some(self.graph.params[k].storage_cell().write());
        }
        let mut outs: [&mut [T]; MAX_GROUP] = Default::default();
        for (o, w) in outs.iter_mut().zip(writes.iter_mut().flatten()) {
            *o = T::slice_mut(w).ok_or_else(|| internal("fused inputs of mixed dtypes"))?;
        }
        self.run_fused(group, inputs, &mut outs[..group.len()])
    }

    /// Runs fused nodes `group` (one node, or a group of in-place updates) into `outs`. An
    /// operand living where a member writes is read from that member's output.
    fn run_fused<'s, T: FusedFloat>(
        &'s self,
        group: &[usize],
        inputs: &'s [Tensor],
        outs: &mut [&mut [T]],
    ) -> Result<()> {
        type Guards<'g> = [Option<RwLockReadGuard<'g, Storage>>; MAX_FUSED_LEAVES];
        let mut guards: [Guards<'s>; MAX_GROUP] = Default::default();
        type Program<'p> = (&'p FusedProgram, &'p RowPlan, Option<Native>);
        let mut programs: [Option<Program<'_>>; MAX_GROUP] = [None; MAX_GROUP];
        let written = |a: usize| group.iter().position(|&o| self.slots[o] == self.slots[a]);
        for (j, &m) in group.iter().enumerate().take(MAX_GROUP) {
            let Kernel::Fused {
                program,
                plan,
                native,
                ..
            } = &self.kernels[m]
            else {
                return Err(internal("a group member is not fused"));
            };
            programs[j] = Some((program, plan, *native));
            let args = self.graph.nodes[m].args();
            if args.len() > MAX_FUSED_LEAVES {
                return Err(internal("a node has more inputs than the executor reads"));
            }
            for (k, &a) in args.iter().enumerate() {
                if written(a).is_none() {
                    let g = self.read(a, inputs)?;
                    if T::slice(&g).is_none() {
                        return Err(internal("fused inputs of mixed dtypes"));
                    }
                    guards[j][k] = Some(g);
                }
            }
        }
        let Some(first) = programs[0] else {
            return Err(internal("an empty group of fused nodes"));
        };
        // Slots past the group repeat its first member; they are not run.
        let members: [Member<'_, T>; MAX_GROUP] = std::array::from_fn(|j| {
            let (program, plan, native) = programs[j].unwrap_or(first);
            let mut leaves = [Leaf::NONE; MAX_FUSED_LEAVES];
            if let Some(&m) = group.get(j) {
                for (k, &a) in self.graph.nodes[m].args().iter().enumerate() {
                    leaves[k] = match written(a) {
                        Some(o) => Leaf::Out(o),
                        None => {
                            Leaf::Data(guards[j][k].as_deref().and_then(T::slice).unwrap_or(&[]))
                        }
                    };
                }
            }
            Member {
                program,
                plan,
                leaves,
                native,
            }
        });
        fused::run_group(&members[..group.len()], outs);
        Ok(())
    }

    /// A read lock on the storage holding node `a`'s value.
    fn read<'s>(&'s self, a: usize, inputs: &'s [Tensor]) -> Result<RwLockReadGuard<'s, Storage>> {
        Ok(match self.slots[a] {
            Slot::Input(j) => inputs
                .get(j)
                .ok_or_else(|| internal("inputs missing"))?
                .storage(),
            Slot::Param(j) => self.graph.params[j].storage(),
            Slot::Const(j) => self.consts[j].storage(),
            Slot::Buffer(j) => self.buffers[j]
                .as_ref()
                .ok_or_else(|| internal("an input buffer is missing"))?
                .read(),
        })
    }

    /// The storage holding node `i`'s value.
    fn cell_of(&self, i: usize, inputs: &[Tensor]) -> Result<Arc<StorageCell>> {
        Ok(match self.slots[i] {
            Slot::Input(j) => inputs
                .get(j)
                .ok_or_else(|| internal("inputs missing"))?
                .storage_cell()
                .clone(),
            Slot::Param(j) => self.graph.params[j].storage_cell().clone(),
            Slot::Const(j) => self.consts[j].storage_cell().clone(),
            Slot::Buffer(b) => self
                .buffers
                .get(b)
                .and_then(Option::clone)
                .ok_or_else(|| internal("the graph has not run yet"))?,
        })
    }

    /// The value of output `k` after [`CompiledGraph::execute`]. The tensor shares the
    /// workspace without copying; the next run leaves it unchanged (a buffer still held by a
    /// returned tensor is replaced, not overwritten).
    ///
    /// # Errors
    /// [`Error::Argument`] for an output index out of range or before the first run.
    pub fn output(&self, k: usize, inputs: &[Tensor]) -> Result<Tensor> {
        let &o = self
            .graph
            .outputs
            .get(k)
            .ok_or_else(|| internal("no such output"))?;
        let cell = self.cell_of(o, inputs)?;
        Ok(Tensor::from_parts(
            cell,
            self.layouts[o].clone(),
            false,
            None,
        ))
    }

    /// Runs the graph on inputs of the traced shapes and dtypes and returns its outputs.
    /// Parameters are read as they are now, so updates between runs (an optimizer step) are
    /// seen.
    ///
    /// # Errors
    /// As [`CompiledGraph::execute`].
    pub fn run(&mut self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        let owned = contiguous_inputs(inputs);
        let inputs = owned.as_deref().unwrap_or(inputs);
        self.execute(inputs)?;
        (0..self.graph.outputs.len())
            .map(|k| self.output(k, inputs))
            .collect()
    }

    /// The optimised graph.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// What the passes did.
    pub fn report(&self) -> &PassReport {
        &self.report
    }

    /// Whether `inputs` have the shapes and dtypes the graph was traced with.
    pub fn accepts(&self, inputs: &[Tensor]) -> bool {
        matches_signature(&self.signature, inputs)
    }

    /// The memory plan.
    pub fn memory(&self) -> MemoryPlan {
        self.memory
    }

    /// Seconds spent tracing, optimising and planning.
    pub fn compile_seconds(&self) -> f64 {
        self.compile_seconds
    }
}

/// A function compiled on first use for each input signature (shapes and dtypes), like
/// `jax.jit`: calls with a new signature retrace.
pub struct StaticFn<F> {
    f: F,
    opts: CompileOptions,
    /// One compiled graph per signature (few, so a linear search that allocates nothing).
    cache: Vec<CompiledGraph>,
    traces: usize,
}

/// Whether `inputs` have the shapes and dtypes of `sig`.
fn matches_signature(sig: &Signature, inputs: &[Tensor]) -> bool {
    sig.len() == inputs.len()
        && sig
            .iter()
            .zip(inputs)
            .all(|((shape, dtype), t)| t.shape() == shape.as_slice() && t.dtype() == *dtype)
}

impl<F: Fn(&[Tensor]) -> Result<Vec<Tensor>>> StaticFn<F> {
    /// Wraps `f`; nothing is traced until the first call.
    pub fn new(f: F, opts: CompileOptions) -> Self {
        StaticFn {
            f,
            opts,
            cache: Vec::new(),
            traces: 0,
        }
    }

    /// Runs the compiled graph for these inputs' signature, tracing it first if needed.
    ///
    /// # Errors
    /// As [`compile`] and [`CompiledGraph::run`].
    pub fn call(&mut self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        let k = match self
            .cache
            .iter()
            .position(|c| matches_signature(&c.signature, inputs))
        {
            Some(k) => k,
            None => {
                let compiled = compile(&self.f, inputs, self.opts)?;
                self.traces += 1;
                self.cache.push(compiled);
                self.cache.len() - 1
            }
        };
        self.cache[k].run(inputs)
    }

    /// The compiled graph for a signature of inputs, if traced.
    pub fn compiled(&mut self, inputs: &[Tensor]) -> Option<&mut CompiledGraph> {
        self.cache
            .iter_mut()
            .find(|c| matches_signature(&c.signature, inputs))
    }

    /// How many times the function was traced.
    pub fn traces(&self) -> usize {
        self.traces
    }
}
