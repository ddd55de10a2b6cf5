//! Planning a compiled graph, once, at compile time: every node is placed either as a view
//! (reshape, permute, broadcast, narrow: a layout over its input's buffer, no computation) or
//! in a buffer of the workspace, and gets its kernel. Then, in order:
//! - in-place updates: a value stored into a parameter is computed straight into it where that
//!   is safe;
//! - product folding: an update `w - g * lr` whose `g` is a matrix product becomes one product
//!   accumulating into `w`;
//! - update grouping: in-place updates over one index space run block by block together;
//! - liveness and buffer assignment: a buffer serves the next node of the same dtype and size
//!   once the last reader of its value has run.
//!
//! The result, a [`Placement`], is what `runtime` executes.

use std::sync::Arc;

use super::ir::{Graph, NodeKind};
use crate::kernels::Plan;
use crate::kernels::conv::{self, Direction, Geometry};
use crate::kernels::fused::{FusedOp, FusedProgram, MAX_GROUP, UpdateLoop};
use crate::op::{BinaryOp, CmpOp, Op, Pool2dParams, ReduceOp, UnaryOp};
use crate::{DType, Layout, Result, Tensor};

/// Where a node's value lives during a run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Slot {
    Input(usize),
    Param(usize),
    Const(usize),
    Buffer(usize),
}

/// What computes a node (views and leaves compute nothing).
pub(super) enum Kernel {
    Nothing,
    Unary(UnaryOp, Plan),
    Powf(f64, Plan),
    Binary(BinaryOp, Plan),
    Cmp(CmpOp, Plan),
    Where(Plan),
    /// A copy or dtype conversion into a contiguous buffer.
    Convert(Plan),
    MatMul,
    Reduce(ReduceOp, Vec<usize>),
    SoftmaxCrossEntropy,
    /// A fused elementwise program.
    Fused {
        program: Arc<FusedProgram>,
        plan: Plan,
        /// Its hand-written update loop, if it has one.
        update_loop: Option<UpdateLoop>,
        /// The nodes run together with it: itself alone, or, for the last of a group of
        /// in-place updates over one index space, the whole group in order. Empty for the other
        /// members of a group, which the last one runs.
        group: Vec<usize>,
    },
    /// `out -= scale * (a b)`: an in-place update `w - g * lr` whose `g` is a matrix product,
    /// computed by one product that reads and writes `w` (nodes: a, b, scale).
    MatMulUpdate(usize, usize, usize),
    /// One of a convolution's three products, with its scratch buffer from the plan.
    Conv(Direction, Geometry),
    /// The window maxima of a max pooling: planes, input and output sizes, window.
    MaxPoolIndex(usize, [usize; 2], [usize; 2], Pool2dParams),
    Gather(usize),
    ScatterAdd(usize),
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
    /// Fused nodes computed by a hand-written update loop (Adam's updates) instead of step by
    /// step.
    pub update_loops: usize,
}

/// Where every node lives and what computes it: the plan the runtime executes.
pub(super) struct Placement {
    pub slots: Vec<Slot>,
    pub layouts: Vec<Layout>,
    pub kernels: Vec<Kernel>,
    pub consts: Vec<Tensor>,
    /// The dtype and element count of each workspace buffer.
    pub specs: Vec<(DType, usize)>,
    /// `(parameter, node)` pairs, to check at each run that parameters kept their layout.
    pub param_nodes: Vec<(usize, usize)>,
    /// Elements of the f32 and f64 scratch buffers the kernels share (a convolution's im2col
    /// columns and partial sums), one node at a time.
    pub scratch: [usize; 2],
    /// The graph's stores that need a copy, with the plan that copies each value into its
    /// parameter (updates computed in place need none).
    pub stores: Vec<(usize, usize, Plan)>,
    pub memory: MemoryPlan,
}

/// Places every node (views over their input, others in buffers reused by liveness) and picks
/// its kernel.
///
/// # Errors
/// [`Error::Internal`] for a fused node with more inputs than a kernel plan reads.
pub(super) fn place(graph: &Graph) -> Result<Placement> {
    let n = graph.nodes.len();
    let mut slots = Vec::with_capacity(n);
    let mut layouts: Vec<Layout> = Vec::with_capacity(n);
    let mut kernels = Vec::with_capacity(n);
    let mut consts = Vec::new();
    // `base[i]`: the node whose buffer holds node i's elements (i itself unless a view).
    let mut base: Vec<usize> = (0..n).collect();
    let mut memory = MemoryPlan::default();
    let mut scratch = [0usize; 2];
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
                let plan = Plan::of(&node.shape, &arg_layouts)?;
                (
                    Slot::Buffer(usize::MAX),
                    contiguous,
                    Kernel::Fused {
                        program: program.clone(),
                        update_loop: UpdateLoop::of(program, &plan),
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
                        Op::Gather { dim } => Kernel::Gather(*dim),
                        Op::ScatterAdd { dim } => Kernel::ScatterAdd(*dim),
                        Op::Conv2d(_)
                        | Op::Conv2dInputGrad { .. }
                        | Op::Conv2dWeightGrad { .. } => {
                            let shape = |k: usize| graph.nodes[args[k]].shape.as_slice();
                            match conv::plan(op, shape(0), shape(1)) {
                                Some((dir, g, _)) => {
                                    let need = g.scratch_len(dir);
                                    let k = usize::from(node.dtype == DType::F64);
                                    scratch[k] = scratch[k].max(need);
                                    Kernel::Conv(dir, g)
                                }
                                None => Kernel::Other(op.clone()),
                            }
                        }
                        Op::MaxPool2dIndex(p) => {
                            match conv::pool_shapes(&graph.nodes[args[0]].shape, p) {
                                Some((s, hw, out_hw)) => {
                                    Kernel::MaxPoolIndex(s[0] * s[1], hw, out_hw, *p)
                                }
                                None => Kernel::Other(op.clone()),
                            }
                        }
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
    memory.update_loops = kernels
        .iter()
        .filter(|k| {
            matches!(
                k,
                Kernel::Fused {
                    update_loop: Some(_),
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
    memory.bytes = specs
        .iter()
        .map(|(d, n)| n * d.size_in_bytes())
        .sum::<usize>()
        + scratch[0] * DType::F32.size_in_bytes()
        + scratch[1] * DType::F64.size_in_bytes();
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
    Ok(Placement {
        slots,
        layouts,
        kernels,
        consts,
        specs,
        param_nodes,
        scratch,
        stores,
        memory,
    })
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
