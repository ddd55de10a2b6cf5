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
/// The walk does not go past a tensor in `stop`.
fn topological_order(root: &Tensor, stop: &HashSet<TensorId>) -> Vec<Tensor> {
    let mut order = Vec::new();
    let mut visited: HashSet<TensorId> = HashSet::new();
    let mut stack: Vec<(Tensor, usize)> = vec![(root.clone(), 0)];
    visited.insert(root.id());
    while let Some((t, next)) = stack.last_mut() {
        let inputs = if stop.contains(&t.id()) {
            &[]
        } else {
            t.op_inputs()
        };
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
        self.check_seed(grad)?;
        self.backward_walk(grad, None, opts)
    }

    fn check_seed(&self, grad: &Tensor) -> Result<()> {
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
        Ok(())
    }

    /// Gradients of this tensor, seeded with `grad`, with respect to `targets` only (PyTorch
    /// `torch.autograd.grad(self, targets, grad, create_graph=..)`). Only the part of the graph
    /// that lies between the targets and this tensor is walked, and the targets need not be
    /// leaves: a target's gradient is kept and the walk stops there. Targets the tensor does
    /// not depend on get no entry.
    ///
    /// ```
    /// use ferrograd_core::Tensor;
    /// let x = Tensor::from_vec(vec![1.0f64, 2.0], &[2])?.with_requires_grad(true);
    /// let w = Tensor::from_vec(vec![3.0f64, 4.0], &[2])?.with_requires_grad(true);
    /// let h = x.mul(&w)?;
    /// let y = h.exp()?.sum_all()?;
    /// let g = y.backward_to(&y.ones_like(), &[h.clone()], false)?;
    /// assert_eq!(g.get(&h).unwrap().to_vec::<f64>()?, h.exp()?.to_vec::<f64>()?);
    /// assert!(g.get(&x).is_none() && g.get(&w).is_none());
    /// # Ok::<(), ferrograd_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Tensor::backward_with`].
    pub fn backward_to(
        &self,
        grad: &Tensor,
        targets: &[Tensor],
        create_graph: bool,
    ) -> Result<GradStore> {
        self.check_seed(grad)?;
        let opts = BackwardOptions {
            create_graph,
            keep_all: false,
        };
        self.backward_walk(grad, Some(targets), opts)
    }

    fn backward_walk(
        &self,
        grad: &Tensor,
        targets: Option<&[Tensor]>,
        opts: BackwardOptions,
    ) -> Result<GradStore> {
        let _mode = if opts.create_graph {
            enable_grad()
        } else {
            no_grad()
        };
        let mut store = GradStore::default();
        if !self.tracks_grad() {
            return Ok(store);
        }
        let stop: HashSet<TensorId> = targets.unwrap_or(&[]).iter().map(Tensor::id).collect();
        let order = topological_order(self, &stop);
        // With targets, only tensors from which a target can be reached take part.
        let leads: Option<HashSet<TensorId>> = targets.map(|_| {
            let mut leads = HashSet::new();
            for t in &order {
                if stop.contains(&t.id()) || t.op_inputs().iter().any(|i| leads.contains(&i.id())) {
                    leads.insert(t.id());
                }
            }
            leads
        });
        let wanted = |t: &Tensor| leads.as_ref().is_none_or(|l| l.contains(&t.id()));
        let mut pending: HashMap<TensorId, Tensor> = HashMap::new();
        pending.insert(self.id(), grad.clone());
        for t in order.iter().rev() {
            let Some(g) = pending.remove(&t.id()) else {
                continue;
            };
            if stop.contains(&t.id()) {
                store.grads.insert(t.id(), g);
                continue;
            }
            let Some(node) = t.node() else {
                if targets.is_none() && t.requires_grad() {
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
                rules::backward(&node.op, &node.inputs, t, &g, &wanted)?
            } else {
                rules::backward(&node.op, &node.inputs, t, &g, &wanted)?
            };
            drop(g);
            for (input, ig) in node.inputs.iter().zip(input_grads) {
                let Some(ig) = ig else { continue };
                if !input.tracks_grad() || !wanted(input) {
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
