//! The graph IR: nodes in topological order (inputs before their users), each with its static
//! shape and dtype. Printable as text (one line per node) and as Graphviz DOT.

use std::fmt;
use std::sync::Arc;

use crate::kernels::fused::{FusedOp, FusedProgram};
use crate::op::Op;
use crate::{DType, Tensor};

/// Index of a node in [`Graph::nodes`].
pub type NodeId = usize;

/// What a node computes.
#[derive(Clone)]
pub enum NodeKind {
    /// The k-th input of the compiled function.
    Input(usize),
    /// The k-th parameter: a tensor from outside the trace read live at every run (a tensor
    /// that requires grad, or state such as an optimizer's buffer that the graph writes).
    Param(usize),
    /// A constant captured during tracing.
    Const(Tensor),
    /// A primitive op.
    Op {
        /// The op.
        op: Op,
        /// Its inputs.
        args: Vec<NodeId>,
    },
    /// Several elementwise ops fused into one loop.
    Fused {
        /// The program.
        program: Arc<FusedProgram>,
        /// Its inputs (the program's leaves).
        args: Vec<NodeId>,
    },
}

/// A node: what it computes, and its output's shape and dtype.
#[derive(Clone)]
pub struct Node {
    /// What the node computes.
    pub kind: NodeKind,
    /// Output shape.
    pub shape: Vec<usize>,
    /// Output dtype.
    pub dtype: DType,
    /// Where the traced op sat in the model (its module scope, or the op whose gradient it
    /// computes), recorded when tracing in anomaly mode.
    pub site: Option<Arc<str>>,
}

impl Node {
    /// The nodes this node reads.
    pub fn args(&self) -> &[NodeId] {
        match &self.kind {
            NodeKind::Op { args, .. } | NodeKind::Fused { args, .. } => args,
            _ => &[],
        }
    }

    /// A short label: the op name, `input 0`, `param 1`, `const`, or `fused(...)`.
    pub fn label(&self) -> String {
        match &self.kind {
            NodeKind::Input(k) => format!("input {k}"),
            NodeKind::Param(k) => format!("param {k}"),
            NodeKind::Const(t) if t.numel() == 1 => format!("const {}", t.to_vec_f64()[0]),
            NodeKind::Const(_) => "const".into(),
            NodeKind::Op { op, .. } => op_label(op),
            NodeKind::Fused { program, .. } => {
                let names: Vec<String> = program.steps.iter().map(step_name).collect();
                format!("fused({})", names.join(", "))
            }
        }
    }
}

fn op_label(op: &Op) -> String {
    match op {
        Op::Powf(e) => format!("powf {e}"),
        Op::Reduce { op, dims } => format!("{} {dims:?}", op.name()),
        Op::Permute(p) => format!("permute {p:?}"),
        Op::Narrow { dim, start, len } => format!("narrow {dim} {start}+{len}"),
        Op::Cast(d) => format!("to_dtype {d}"),
        other => other.name().to_string(),
    }
}

fn step_name(s: &FusedOp) -> String {
    match s {
        FusedOp::Unary(u, _) => u.name().into(),
        FusedOp::Powf(e, _) => format!("powf {e}"),
        FusedOp::Binary(b, ..) => b.name().into(),
        FusedOp::Cmp(c, ..) => c.name().into(),
        FusedOp::Where(..) => "where".into(),
    }
}

/// A traced computation.
#[derive(Clone)]
pub struct Graph {
    /// Nodes in topological order.
    pub nodes: Vec<Node>,
    /// The input nodes, in argument order.
    pub inputs: Vec<NodeId>,
    /// The parameters (`Param(k)` reads `params[k]`).
    pub params: Vec<Tensor>,
    /// The output nodes, in result order.
    pub outputs: Vec<NodeId>,
    /// In-place writes recorded by `assign`: `(k, node)` writes the node's value into
    /// `params[k]` at the end of every run (an optimizer's update of weights and state).
    pub stores: Vec<(usize, NodeId)>,
}

impl Graph {
    /// The nodes whose values leave the graph: the outputs and the values of the stores.
    pub fn roots(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.outputs
            .iter()
            .copied()
            .chain(self.stores.iter().map(|&(_, v)| v))
    }

    /// For each node, the nodes that read it.
    pub fn users(&self) -> Vec<Vec<NodeId>> {
        let mut users = vec![Vec::new(); self.nodes.len()];
        for (i, n) in self.nodes.iter().enumerate() {
            for &a in n.args() {
                users[a].push(i);
            }
        }
        users
    }

    /// Number of nodes of each kind: (ops, fused, constants).
    pub fn counts(&self) -> (usize, usize, usize) {
        let mut c = (0, 0, 0);
        for n in &self.nodes {
            match n.kind {
                NodeKind::Op { .. } => c.0 += 1,
                NodeKind::Fused { .. } => c.1 += 1,
                NodeKind::Const(_) => c.2 += 1,
                _ => {}
            }
        }
        c
    }

    /// An estimate of the arithmetic the graph's ops do: multiply-adds of matrix products and
    /// convolutions, one per element written by every other op; views (reshape, permute,
    /// broadcast, narrow), inputs and constants cost nothing. A count of work that does not
    /// depend on the machine, for comparing algorithms (e.g. forward against reverse mode).
    pub fn work(&self) -> u64 {
        let numel = |id: NodeId| -> u64 { self.nodes[id].shape.iter().product::<usize>() as u64 };
        self.nodes
            .iter()
            .map(|n| {
                let out: u64 = n.shape.iter().product::<usize>() as u64;
                match &n.kind {
                    NodeKind::Op { op, args } => match op {
                        Op::Reshape(_) | Op::Permute(_) | Op::Expand(_) | Op::Narrow { .. } => 0,
                        Op::MatMul => {
                            let a = &self.nodes[args[0]].shape;
                            out * a.last().copied().unwrap_or(1) as u64
                        }
                        // Each output element of the convolution sums over one filter.
                        Op::Conv2d(_) | Op::Conv2dInputGrad { .. } => {
                            let (dy, w) = if matches!(op, Op::Conv2d(_)) {
                                (out, args[1])
                            } else {
                                (numel(args[0]), args[1])
                            };
                            let o = self.nodes[w].shape.first().copied().unwrap_or(1).max(1);
                            dy * numel(w) / o as u64
                        }
                        Op::Conv2dWeightGrad { .. } => {
                            let o = n.shape.first().copied().unwrap_or(1).max(1);
                            numel(args[1]) * out / o as u64
                        }
                        _ => out,
                    },
                    NodeKind::Fused { program, .. } => out * program.steps.len() as u64,
                    _ => 0,
                }
            })
            .sum()
    }

    /// The graph in Graphviz DOT: one box per node with its op and shape; inputs, parameters
    /// and outputs highlighted, fused nodes shaded.
    pub fn to_dot(&self, name: &str) -> String {
        let mut s = format!(
            "digraph \"{}\" {{\n  rankdir=TB;\n  node [shape=box, fontname=\"Helvetica\", fontsize=10];\n",
            name.replace('"', "'")
        );
        for (i, n) in self.nodes.iter().enumerate() {
            let style = match n.kind {
                NodeKind::Input(_) => ", style=filled, fillcolor=\"#cfe2ff\"",
                NodeKind::Param(_) => ", style=filled, fillcolor=\"#d1e7dd\"",
                NodeKind::Const(_) => ", style=filled, fillcolor=\"#eeeeee\"",
                NodeKind::Fused { .. } => ", style=filled, fillcolor=\"#fff3cd\"",
                NodeKind::Op { .. } => "",
            };
            let mut out = match self.outputs.iter().position(|&o| o == i) {
                Some(k) => format!("\\noutput {k}"),
                None => String::new(),
            };
            for (k, _) in self.stores.iter().filter(|&&(_, v)| v == i) {
                out.push_str(&format!("\\nstored into param {k}"));
            }
            let label = n.label().replace('"', "'");
            s.push_str(&format!(
                "  n{i} [label=\"%{i} {label}\\n{:?} {}{out}\"{style}{}];\n",
                n.shape,
                n.dtype,
                if out.is_empty() { "" } else { ", penwidth=2" }
            ));
        }
        for (i, n) in self.nodes.iter().enumerate() {
            for &a in n.args() {
                s.push_str(&format!("  n{a} -> n{i};\n"));
            }
        }
        s.push_str("}\n");
        s
    }
}

impl fmt::Display for Graph {
    /// One line per node: `%5 = matmul(%2, %4) : [32, 10] f32`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, n) in self.nodes.iter().enumerate() {
            let args: Vec<String> = n.args().iter().map(|a| format!("%{a}")).collect();
            let args = if args.is_empty() {
                String::new()
            } else {
                format!("({})", args.join(", "))
            };
            writeln!(f, "%{i} = {}{args} : {:?} {}", n.label(), n.shape, n.dtype)?;
        }
        for (k, v) in &self.stores {
            writeln!(f, "param {k} <- %{v}")?;
        }
        let outs: Vec<String> = self.outputs.iter().map(|o| format!("%{o}")).collect();
        writeln!(f, "return {}", outs.join(", "))
    }
}
