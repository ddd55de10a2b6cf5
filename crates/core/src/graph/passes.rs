//! Whole-graph passes: dead-code elimination, constant folding, common-subexpression
//! elimination, and fusion of elementwise chains. Each pass maps the graph to a smaller one with
//! the same outputs; `compact` renumbers nodes after a pass merged or dropped some.

use std::collections::HashMap;
use std::sync::Arc;

use super::CompileOptions;
use super::ir::{Graph, Node, NodeId, NodeKind};
use crate::kernels::fused::{FusedOp, FusedProgram, MAX_FUSED_LEAVES, MAX_FUSED_STEPS};
use crate::op::Op;
use crate::ops::apply;
use crate::{Result, Tensor, no_grad};

/// What the passes did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PassReport {
    /// Nodes traced.
    pub nodes_traced: usize,
    /// Nodes computed at compile time.
    pub folded: usize,
    /// Chains of views collapsed.
    pub simplified: usize,
    /// Duplicate nodes merged.
    pub merged: usize,
    /// Fused nodes created.
    pub fused_groups: usize,
    /// Elementwise ops now inside fused nodes.
    pub fused_ops: usize,
    /// Nodes left.
    pub nodes_final: usize,
}

/// Largest result constant folding materialises.
const FOLD_LIMIT: usize = 1 << 16;

/// Keeps the nodes the outputs and stores need (after following `alias`), renumbered in order.
fn compact(g: &Graph, alias: &[NodeId]) -> Graph {
    let resolve = |mut i: NodeId| {
        while alias[i] != i {
            i = alias[i];
        }
        i
    };
    let mut live = vec![false; g.nodes.len()];
    for o in g.roots() {
        live[resolve(o)] = true;
    }
    for &i in &g.inputs {
        live[i] = true;
    }
    for i in (0..g.nodes.len()).rev() {
        if live[i] && alias[i] == i {
            for &a in g.nodes[i].args() {
                live[resolve(a)] = true;
            }
        }
    }
    let mut index = vec![usize::MAX; g.nodes.len()];
    let mut nodes = Vec::new();
    for (i, n) in g.nodes.iter().enumerate() {
        if !live[i] || alias[i] != i {
            continue;
        }
        let remap = |args: &[NodeId]| args.iter().map(|&a| index[resolve(a)]).collect::<Vec<_>>();
        let kind = match &n.kind {
            NodeKind::Op { op, args } => NodeKind::Op {
                op: op.clone(),
                args: remap(args),
            },
            NodeKind::Fused { program, args } => NodeKind::Fused {
                program: program.clone(),
                args: remap(args),
            },
            other => other.clone(),
        };
        index[i] = nodes.len();
        nodes.push(Node {
            kind,
            shape: n.shape.clone(),
            dtype: n.dtype,
            site: n.site.clone(),
        });
    }
    Graph {
        nodes,
        inputs: g.inputs.iter().map(|&i| index[i]).collect(),
        params: g.params.clone(),
        outputs: g.outputs.iter().map(|&o| index[resolve(o)]).collect(),
        stores: g
            .stores
            .iter()
            .map(|&(k, v)| (k, index[resolve(v)]))
            .collect(),
    }
}

fn identity(n: usize) -> Vec<NodeId> {
    (0..n).collect()
}

/// Computes ops whose inputs are all constants.
fn fold_constants(g: &Graph) -> Result<(Graph, usize)> {
    let _guard = no_grad();
    let mut g = g.clone();
    let mut folded = 0;
    for i in 0..g.nodes.len() {
        let NodeKind::Op { op, args } = &g.nodes[i].kind else {
            continue;
        };
        // Views (broadcasts of a scalar) fold for free; other results up to a size limit.
        let is_view = matches!(op, Op::Expand(_) | Op::Reshape(_) | Op::Permute(_));
        if !is_view && crate::shape::numel(&g.nodes[i].shape) > FOLD_LIMIT {
            continue;
        }
        let consts: Option<Vec<Tensor>> = args
            .iter()
            .map(|&a| match &g.nodes[a].kind {
                NodeKind::Const(t) => Some(t.clone()),
                _ => None,
            })
            .collect();
        if let Some(consts) = consts {
            let refs: Vec<&Tensor> = consts.iter().collect();
            let value = apply(op.clone(), &refs)?;
            g.nodes[i].kind = NodeKind::Const(value);
            folded += 1;
        }
    }
    let alias = identity(g.nodes.len());
    Ok((compact(&g, &alias), folded))
}

/// Collapses chains of views: a permute of a permute becomes one permute (or nothing when the
/// two cancel, as the transposes of a weight in forward and backward do), a reshape of a
/// reshape one reshape.
fn simplify_views(g: &Graph) -> (Graph, usize) {
    let mut g = g.clone();
    let mut alias = identity(g.nodes.len());
    let mut simplified = 0;
    for i in 0..g.nodes.len() {
        let NodeKind::Op { op, args } = &g.nodes[i].kind else {
            continue;
        };
        let src = alias[args[0]];
        let new = match (op, &g.nodes[src].kind) {
            (
                Op::Permute(outer),
                NodeKind::Op {
                    op: Op::Permute(inner),
                    args: inner_args,
                },
            ) => {
                let composed: Vec<usize> = outer.iter().map(|&o| inner[o]).collect();
                Some((composed, inner_args[0]))
            }
            _ => None,
        };
        if let Some((perm, base)) = new {
            simplified += 1;
            if perm.iter().enumerate().all(|(k, &p)| k == p) {
                alias[i] = base;
            } else {
                g.nodes[i].kind = NodeKind::Op {
                    op: Op::Permute(perm),
                    args: vec![base],
                };
            }
            continue;
        }
        if let (
            Op::Reshape(_),
            NodeKind::Op {
                op: Op::Reshape(_),
                args: inner_args,
            },
        ) = (op, &g.nodes[src].kind)
        {
            let base = inner_args[0];
            simplified += 1;
            if g.nodes[base].shape == g.nodes[i].shape {
                alias[i] = base;
            } else {
                let shape = g.nodes[i].shape.clone();
                g.nodes[i].kind = NodeKind::Op {
                    op: Op::Reshape(shape),
                    args: vec![base],
                };
            }
        }
    }
    (compact(&g, &alias), simplified)
}

/// Merges nodes that compute the same op on the same inputs, and equal small constants.
fn eliminate_common(g: &Graph) -> (Graph, usize) {
    let mut alias = identity(g.nodes.len());
    let mut seen: HashMap<String, NodeId> = HashMap::new();
    let mut merged = 0;
    for (i, n) in g.nodes.iter().enumerate() {
        let key = match &n.kind {
            NodeKind::Op { op, args } => {
                let args: Vec<NodeId> = args.iter().map(|&a| alias[a]).collect();
                format!("{op:?} {args:?}")
            }
            NodeKind::Const(t) if t.numel() <= 16 => {
                // The exact elements (i64 beyond 2^53 included), with their dtype.
                let values = t.contiguous_copy();
                format!("const {:?} {:?}", t.shape(), *values.storage())
            }
            _ => continue,
        };
        match seen.get(&key) {
            Some(&first) => {
                alias[i] = first;
                merged += 1;
            }
            None => {
                seen.insert(key, i);
            }
        }
    }
    (compact(g, &alias), merged)
}

fn is_elementwise(n: &Node) -> bool {
    n.dtype.is_float()
        && matches!(
            &n.kind,
            NodeKind::Op {
                op: Op::Unary(_) | Op::Powf(_) | Op::Binary(_) | Op::Cmp(_) | Op::Where,
                ..
            }
        )
}

/// Fuses trees of elementwise ops (each absorbed op has a single user of the same shape) into
/// one node that evaluates them in a single pass.
fn fuse_elementwise(g: &Graph) -> (Graph, usize, usize) {
    let users = g.users();
    let mut is_output = vec![false; g.nodes.len()];
    for o in g.roots() {
        is_output[o] = true;
    }
    // A node is absorbed into its only user when both are elementwise of one shape and dtype.
    let absorbed = |i: NodeId| {
        is_elementwise(&g.nodes[i])
            && !is_output[i]
            && users[i].len() == 1
            && is_elementwise(&g.nodes[users[i][0]])
            && g.nodes[users[i][0]].shape == g.nodes[i].shape
            && g.nodes[users[i][0]].dtype == g.nodes[i].dtype
    };
    let mut out = g.clone();
    let (mut groups, mut fused_ops) = (0, 0);
    for root in 0..g.nodes.len() {
        if !is_elementwise(&g.nodes[root]) || absorbed(root) {
            continue;
        }
        // Collect the tree below the root, inputs before users, iteratively.
        let mut order: Vec<NodeId> = Vec::new();
        let mut stack = vec![(root, false)];
        while let Some((i, expanded)) = stack.pop() {
            if expanded {
                order.push(i);
                continue;
            }
            stack.push((i, true));
            for &a in g.nodes[i].args().iter().rev() {
                if absorbed(a) && order.len() + stack.len() < MAX_FUSED_STEPS {
                    stack.push((a, false));
                }
            }
        }
        // A single op stays as it is, unless it is a stored value: as a fused node it can be
        // computed in place into the tensor it updates.
        let stored = g.stores.iter().any(|&(_, v)| v == root);
        if order.len() < 2 && !stored {
            continue;
        }
        let in_tree: std::collections::HashSet<NodeId> = order.iter().copied().collect();
        let mut leaves: Vec<NodeId> = Vec::new();
        let mut reg: HashMap<NodeId, usize> = HashMap::new();
        for &i in &order {
            for &a in g.nodes[i].args() {
                if !in_tree.contains(&a) && !reg.contains_key(&a) {
                    reg.insert(a, leaves.len());
                    leaves.push(a);
                }
            }
        }
        if leaves.len() > MAX_FUSED_LEAVES {
            continue;
        }
        let mut steps = Vec::with_capacity(order.len());
        for &i in &order {
            let NodeKind::Op { op, args } = &g.nodes[i].kind else {
                continue;
            };
            let r = |k: usize| reg[&args[k]];
            steps.push(match op {
                Op::Unary(u) => FusedOp::Unary(*u, r(0)),
                Op::Powf(e) => FusedOp::Powf(*e, r(0)),
                Op::Binary(b) => FusedOp::Binary(*b, r(0), r(1)),
                Op::Cmp(c) => FusedOp::Cmp(*c, r(0), r(1)),
                _ => FusedOp::Where(r(0), r(1), r(2)),
            });
            reg.insert(i, leaves.len() + steps.len() - 1);
        }
        fused_ops += steps.len();
        groups += 1;
        out.nodes[root].kind = NodeKind::Fused {
            program: Arc::new(FusedProgram {
                leaves: leaves.len(),
                steps,
            }),
            args: leaves,
        };
    }
    let alias = identity(out.nodes.len());
    (compact(&out, &alias), groups, fused_ops)
}

/// Runs the passes `opts` enables, in order: constant folding, CSE, fusion, and dead-code
/// elimination after each.
///
/// # Errors
/// Errors of ops evaluated while folding constants.
pub fn optimize(g: Graph, opts: &CompileOptions) -> Result<(Graph, PassReport)> {
    let mut report = PassReport {
        nodes_traced: g.nodes.len(),
        ..Default::default()
    };
    let mut g = compact(&g, &identity(g.nodes.len()));
    if opts.fold_constants {
        let (next, n) = fold_constants(&g)?;
        g = next;
        report.folded = n;
    }
    if opts.eliminate_common {
        let (next, n) = simplify_views(&g);
        g = next;
        report.simplified = n;
        let (next, n) = eliminate_common(&g);
        g = next;
        report.merged = n;
    }
    if opts.fuse {
        let (next, groups, ops) = fuse_elementwise(&g);
        g = next;
        report.fused_groups = groups;
        report.fused_ops = ops;
    }
    report.nodes_final = g.nodes.len();
    Ok((g, report))
}
