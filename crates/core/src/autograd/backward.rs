//! The backward walk: an iterative topological sort of the recorded graph, then one pass in
//! reverse order that applies each op's rule and accumulates gradients of reused tensors.
//! Intermediate gradients are dropped as soon as they are consumed.

use std::collections::{HashMap, HashSet};

use super::{anomaly, enable_grad, no_grad, rules};
use crate::{Error, Result, Tensor, TensorId};

/// Gradients returned by `backward`, keyed by tensor. By default only leaves that require grad
/// (parameters) are kept.
#[derive(Default)]
pub struct GradStore {
    grads: HashMap<TensorId, Tensor>,
}

impl GradStore {
    /// The gradient of `t`, if it has one.
    pub fn get(&self, t: &Tensor) -> Option<&Tensor> {
        self.grads.get(&t.id())
    }

    /// Takes the gradient of `t` out of the store.
    pub fn remove(&mut self, t: &Tensor) -> Option<Tensor> {
        self.grads.remove(&t.id())
    }

    /// Sets (or replaces) the gradient of `t`, e.g. after clipping or averaging.
    pub fn insert(&mut self, t: &Tensor, grad: Tensor) {
        self.grads.insert(t.id(), grad);
    }

    /// Number of gradients held.
    pub fn len(&self) -> usize {
        self.grads.len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.grads.is_empty()
    }

    /// The ids of the tensors that have gradients.
    pub fn ids(&self) -> impl Iterator<Item = TensorId> + '_ {
        self.grads.keys().copied()
    }
}

/// Options of [`Tensor::backward_with`].
#[derive(Debug, Clone, Copy, Default)]
pub struct BackwardOptions {
    /// Record the backward computation itself, so the gradients can be differentiated again
    /// (PyTorch `create_graph=True`).
    pub create_graph: bool,
    /// Keep the gradient of every tensor in the graph, not only of leaves that require grad
    /// (PyTorch `retain_grad()` on all of them). Costs memory; meant for inspection.
    pub keep_all: bool,
}

/// Tensors reachable from `root` through recorded ops that track gradients, inputs before the
/// ops that use them. Iterative: a graph as deep as memory allows does not touch the stack.
fn topological_order(root: &Tensor) -> Vec<Tensor> {
    let mut order = Vec::new();
    let mut visited: HashSet<TensorId> = HashSet::new();
    let mut stack: Vec<(Tensor, usize)> = vec![(root.clone(), 0)];
    visited.insert(root.id());
    while let Some((t, next)) = stack.last_mut() {
        let inputs = t.op_inputs();
        if let Some(child) = inputs.get(*next) {
            *next += 1;
            if child.tracks_grad() && visited.insert(child.id()) {
                let child = child.clone();
                stack.push((child, 0));
            }
        } else if let Some((t, _)) = stack.pop() {
            order.push(t);
        }
    }
    order
}

impl Tensor {
    /// Computes gradients of this one-element tensor with respect to every leaf that requires
    /// grad (PyTorch `loss.backward()`, but the gradients are returned, not stored on tensors).
    ///
    /// ```
    /// use ferrograd_core::Tensor;
    /// let x = Tensor::from_vec(vec![1.0f64, 2.0], &[2])?.with_requires_grad(true);
    /// let y = x.mul(&x)?.sum_all()?;
    /// let grads = y.backward()?;
    /// assert_eq!(grads.get(&x).unwrap().to_vec::<f64>()?, vec![2.0, 4.0]);
    /// # Ok::<(), ferrograd_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Shape`] unless the tensor has exactly one element; errors of the backward rules,
    /// such as [`Error::ModifiedInPlace`].
    pub fn backward(&self) -> Result<GradStore> {
        if self.numel() != 1 {
            return Err(Error::Shape {
                op: "backward",
                expected: "a tensor with one element (use backward_with to pass a gradient)".into(),
                got: self.shape().to_vec(),
            });
        }
        self.backward_with(&self.ones_like(), BackwardOptions::default())
    }

    /// Computes gradients seeded with `grad` (PyTorch `tensor.backward(grad, create_graph=..)`).
    ///
    /// ```
    /// use ferrograd_core::{BackwardOptions, Tensor};
    /// // Second derivative of x^3 at x = 2 is 6x = 12.
    /// let x = Tensor::scalar(2.0f64).with_requires_grad(true);
    /// let y = x.powf(3.0)?;
    /// let opts = BackwardOptions { create_graph: true, ..Default::default() };
    /// let dy = y.backward_with(&y.ones_like(), opts)?.remove(&x).unwrap();
    /// let d2y = dy.backward()?.remove(&x).unwrap();
    /// assert_eq!(d2y.item()?, 12.0);
    /// # Ok::<(), ferrograd_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Shape`] / [`Error::DTypeMismatch`] when `grad` does not match this tensor;
    /// errors of the backward rules.
    pub fn backward_with(&self, grad: &Tensor, opts: BackwardOptions) -> Result<GradStore> {
        if grad.shape() != self.shape() {
            return Err(Error::Shape {
                op: "backward",
                expected: format!("a gradient of shape {:?}", self.shape()),
                got: grad.shape().to_vec(),
            });
        }
        if grad.dtype() != self.dtype() {
            return Err(Error::DTypeMismatch {
                op: "backward",
                lhs: self.dtype(),
                rhs: grad.dtype(),
            });
        }
        let _mode = if opts.create_graph {
            enable_grad()
        } else {
            no_grad()
        };
        let mut store = GradStore::default();
        if !self.tracks_grad() {
            return Ok(store);
        }
        let mut pending: HashMap<TensorId, Tensor> = HashMap::new();
        pending.insert(self.id(), grad.clone());
        for t in topological_order(self).iter().rev() {
            let Some(g) = pending.remove(&t.id()) else {
                continue;
            };
            let Some(node) = t.node() else {
                if t.requires_grad() {
                    store.grads.insert(t.id(), g);
                }
                continue;
            };
            if opts.keep_all {
                store.grads.insert(t.id(), g.clone());
            }
            rules::check_versions(t, node)?;
            let input_grads = if anomaly::is_anomaly_enabled() {
                let _context = anomaly::backward_of(node.op.name(), node.site.as_ref());
                rules::backward(&node.op, &node.inputs, t, &g)?
            } else {
                rules::backward(&node.op, &node.inputs, t, &g)?
            };
            drop(g);
            for (input, ig) in node.inputs.iter().zip(input_grads) {
                let Some(ig) = ig else { continue };
                if !input.tracks_grad() {
                    continue;
                }
                let acc = match pending.remove(&input.id()) {
                    Some(prev) => prev.add(&ig)?,
                    None => ig,
                };
                pending.insert(input.id(), acc);
            }
        }
        Ok(store)
    }
}
