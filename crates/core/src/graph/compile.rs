//! The entry points of static graphs: [`compile`] traces a function, optimises its graph and
//! plans it; [`StaticFn`] keeps one compiled graph per input signature and retraces when shapes
//! or dtypes change.

use std::time::Instant;

use super::CompileOptions;
use super::passes::optimize;
use super::planner::place;
use super::runtime::{CompiledGraph, signature};
use super::trace::trace;
use crate::{Result, Tensor};

/// Traces `f` on `examples`, optimises the graph and plans its memory (see the module docs).
///
/// ```
/// use ferrograd_core::{DType, Tensor, graph::{compile, CompileOptions}};
/// let w = Tensor::full(0.5, &[3, 2], DType::F64)?.with_requires_grad(true);
/// let step = |i: &[Tensor]| -> ferrograd_core::Result<Vec<Tensor>> {
///     let loss = i[0].matmul(&w)?.tanh()?.sum_all()?;
///     let grads = loss.backward()?;
///     Ok(vec![loss, grads.get(&w).unwrap().clone()])
/// };
/// let x = Tensor::ones(&[4, 3], DType::F64)?;
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
    let placement = place(&graph)?;
    Ok(CompiledGraph::new(
        graph,
        placement,
        signature(examples),
        report,
        start.elapsed().as_secs_f64(),
    ))
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
        let k = match self.cache.iter().position(|c| c.accepts(inputs)) {
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
        self.cache.iter_mut().find(|c| c.accepts(inputs))
    }

    /// How many times the function was traced.
    pub fn traces(&self) -> usize {
        self.traces
    }
}
