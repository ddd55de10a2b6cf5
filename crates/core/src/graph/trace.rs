//! Tracing: while a tracer is active on this thread, `ops::apply` reports every primitive op
//! (after computing it on the example values) and the tracer appends a node. Tensors that enter
//! an op without having been produced inside the trace become `Param` nodes when they are
//! leaves that require grad (read live at every run) and `Const` nodes otherwise. An `assign`
//! to such an outside tensor (an optimizer updating weights and state in place) is recorded,
//! not performed: the tensor becomes a live `Param` if it was a constant, later reads in the
//! trace see the assigned value, and the compiled graph writes it at the end of every run.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use super::ir::{Graph, Node, NodeId, NodeKind};
use crate::op::Op;
use crate::{Error, Result, Tensor, TensorId};

#[derive(Default)]
struct Tracer {
    nodes: Vec<Node>,
    ids: HashMap<TensorId, NodeId>,
    params: Vec<Tensor>,
    inputs: Vec<NodeId>,
    stores: Vec<(usize, NodeId)>,
    /// Tensors assigned in this trace and the parameter each stands for.
    assigned: HashMap<TensorId, usize>,
    violation: Option<&'static str>,
}

thread_local! {
    static TRACER: RefCell<Option<Tracer>> = const { RefCell::new(None) };
}

/// Whether a trace is being recorded on this thread.
pub fn is_tracing() -> bool {
    TRACER.with(|t| t.borrow().is_some())
}

impl Tracer {
    fn node_of(&mut self, t: &Tensor) -> NodeId {
        if let Some(&id) = self.ids.get(&t.id()) {
            return id;
        }
        let kind = if t.requires_grad() {
            self.params.push(t.clone());
            NodeKind::Param(self.params.len() - 1)
        } else {
            // The value as it is now, cut from the autograd graph (not `detach`, which would
            // re-enter the tracer).
            NodeKind::Const(Tensor::from_parts(
                t.storage_cell().clone(),
                t.layout().clone(),
                false,
                None,
            ))
        };
        self.push(t, kind)
    }

    fn push(&mut self, t: &Tensor, kind: NodeKind) -> NodeId {
        self.nodes.push(Node {
            kind,
            shape: t.shape().to_vec(),
            dtype: t.dtype(),
            site: None,
        });
        let id = self.nodes.len() - 1;
        self.ids.insert(t.id(), id);
        id
    }
}

/// Called by `ops::apply` for every op it runs; `site` is where the op sits in the model
/// (recorded in anomaly mode, so that replays can name it).
pub(crate) fn record(op: &Op, inputs: &[&Tensor], out: &Tensor, site: Option<Arc<str>>) {
    TRACER.with(|t| {
        if let Some(tr) = t.borrow_mut().as_mut() {
            let args = inputs.iter().map(|x| tr.node_of(x)).collect();
            let id = tr.push(
                out,
                NodeKind::Op {
                    op: op.clone(),
                    args,
                },
            );
            tr.nodes[id].site = site;
        }
    });
}

/// Makes `new` (a detached or re-leafed handle of `src`'s data) stand for `src`'s node.
pub(crate) fn alias(src: &Tensor, new: &Tensor) {
    TRACER.with(|cell| {
        if let Some(tr) = cell.borrow_mut().as_mut()
            && let Some(&id) = tr.ids.get(&src.id())
        {
            tr.ids.insert(new.id(), id);
        }
    });
}

/// Fails (and fails the trace) when `t`'s value is read while it is being traced.
pub(crate) fn check_read(t: &Tensor, op: &'static str) -> Result<()> {
    TRACER.with(|cell| {
        let mut b = cell.borrow_mut();
        match b.as_mut() {
            Some(tr) if tr.ids.contains_key(&t.id()) => {
                tr.violation.get_or_insert(op);
                Err(Error::DataDependent { op })
            }
            _ => Ok(()),
        }
    })
}

/// Records `dst.assign(src)` while tracing and returns `Some` (the write is left to the
/// compiled graph); returns `None` when no trace is active, so the caller writes.
///
/// Only a tensor from outside the trace that owns its whole contiguous storage (a weight, an
/// optimizer's buffer) can be written; a write into a value computed inside the trace fails
/// the trace.
pub(crate) fn record_assign(dst: &Tensor, src: &Tensor) -> Option<Result<()>> {
    TRACER.with(|cell| {
        let mut b = cell.borrow_mut();
        let tr = b.as_mut()?;
        let owns_storage =
            dst.layout().offset() == 0 && dst.is_contiguous() && dst.storage().len() == dst.numel();
        // The parameter `dst` stands for: one it was assigned to earlier in this trace, a live
        // parameter, or a captured constant that becomes live now; never a traced value.
        let k = match tr.assigned.get(&dst.id()) {
            Some(&k) => Some(k),
            None if owns_storage => {
                let target = tr.node_of(dst);
                match tr.nodes[target].kind.clone() {
                    NodeKind::Param(k) => Some(k),
                    NodeKind::Const(t) => {
                        tr.params.push(t);
                        let k = tr.params.len() - 1;
                        tr.nodes[target].kind = NodeKind::Param(k);
                        Some(k)
                    }
                    _ => None,
                }
            }
            None => None,
        };
        let Some(k) = k else {
            tr.violation.get_or_insert("assign");
            return Some(Err(Error::DataDependent { op: "assign" }));
        };
        let value = tr.node_of(src);
        tr.stores.retain(|&(j, _)| j != k);
        tr.stores.push((k, value));
        tr.ids.insert(dst.id(), value);
        tr.assigned.insert(dst.id(), k);
        Some(Ok(()))
    })
}

/// Removes the tracer when dropped, also when the traced code fails or panics.
struct Active;

impl Drop for Active {
    fn drop(&mut self) {
        TRACER.with(|t| t.borrow_mut().take());
    }
}

/// Traces `f` on example inputs into a [`Graph`]: `f` runs once, eagerly, on copies of the
/// examples, and every primitive op is recorded. The graph's inputs are the examples'
/// placeholders (in order), its outputs `f`'s results.
///
/// ```
/// use ferrograd_core::{DType, Tensor, graph::trace};
/// let w = Tensor::ones(&[3, 2], DType::F32)?.with_requires_grad(true);
/// let x = Tensor::zeros(&[4, 3], DType::F32)?;
/// let g = trace(|i| Ok(vec![i[0].matmul(&w)?.relu()?]), &[x])?;
/// assert_eq!(g.params.len(), 1);
/// assert!(g.to_string().contains("matmul"));
/// # Ok::<(), ferrograd_core::Error>(())
/// ```
///
/// # Errors
/// [`Error::DataDependent`] when `f` reads a traced value or writes in place;
/// [`Error::Argument`] for a nested trace; any error of `f`.
pub fn trace(
    f: impl FnOnce(&[Tensor]) -> Result<Vec<Tensor>>,
    examples: &[Tensor],
) -> Result<Graph> {
    if is_tracing() {
        return Err(Error::Argument {
            op: "trace",
            msg: "a trace is already being recorded on this thread".into(),
        });
    }
    let placeholders: Vec<Tensor> = examples.iter().map(Tensor::detach).collect();
    TRACER.with(|t| {
        let mut tr = Tracer::default();
        for (k, p) in placeholders.iter().enumerate() {
            let id = tr.push(p, NodeKind::Input(k));
            tr.inputs.push(id);
        }
        *t.borrow_mut() = Some(tr);
    });
    let active = Active;
    let result = f(&placeholders);
    let mut tr = TRACER.with(|t| t.borrow_mut().take()).unwrap_or_default();
    drop(active);
    if let Some(op) = tr.violation {
        return Err(Error::DataDependent { op });
    }
    let outs = result?;
    let outputs = outs.iter().map(|t| tr.node_of(t)).collect();
    Ok(Graph {
        nodes: tr.nodes,
        inputs: tr.inputs,
        params: tr.params,
        outputs,
        stores: tr.stores,
    })
}
