//! Compiling and replaying: [`compile`] traces a function and optimises its graph;
//! [`CompiledGraph::run`] replays it on new inputs, computing each node once and freeing every
//! value after its last use; [`StaticFn`] keeps one compiled graph per input signature and
//! retraces when shapes or dtypes change.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use super::ir::{Graph, NodeKind};
use super::passes::{PassReport, optimize};
use super::trace::trace;
use crate::kernels;
use crate::ops::apply;
use crate::{DType, Error, Layout, Result, StorageCell, Tensor, no_grad};

/// Which passes [`compile`] runs (all by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompileOptions {
    /// Compute ops on constants at compile time.
    pub fold_constants: bool,
    /// Merge duplicate computations.
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

/// A traced and optimised graph, ready to run on inputs of the traced shapes.
pub struct CompiledGraph {
    graph: Graph,
    /// For each node, the last node that reads it (its value is freed after that node).
    last_use: Vec<usize>,
    signature: Signature,
    report: PassReport,
    compile_seconds: f64,
}

/// Traces `f` on `examples` and optimises the graph (see the module docs).
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
/// let compiled = compile(step, &[x.clone()], CompileOptions::default())?;
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
    let mut last_use = vec![usize::MAX; graph.nodes.len()];
    for (i, n) in graph.nodes.iter().enumerate() {
        for &a in n.args() {
            last_use[a] = i;
        }
    }
    for &o in &graph.outputs {
        last_use[o] = usize::MAX;
    }
    Ok(CompiledGraph {
        graph,
        last_use,
        signature: signature(examples),
        report,
        compile_seconds: start.elapsed().as_secs_f64(),
    })
}

impl CompiledGraph {
    /// Runs the graph on inputs of the traced shapes and dtypes. Parameters are read as they
    /// are now, so updates between runs (an optimizer step) are seen.
    ///
    /// # Errors
    /// [`Error::Shape`] / [`Error::DTypeMismatch`] for inputs unlike the traced ones; kernel
    /// errors (an index out of range).
    pub fn run(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
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
        let _guard = no_grad();
        let mut values: Vec<Option<Tensor>> = vec![None; self.graph.nodes.len()];
        for (i, node) in self.graph.nodes.iter().enumerate() {
            let value = match &node.kind {
                NodeKind::Input(k) => inputs[*k].detach(),
                NodeKind::Param(k) => self.graph.params[*k].detach(),
                NodeKind::Const(t) => t.clone(),
                NodeKind::Op { op, args } => {
                    let refs = arg_refs(&values, args)?;
                    apply(op.clone(), &refs)?
                }
                NodeKind::Fused { program, args } => {
                    let refs = arg_refs(&values, args)?;
                    let storage = kernels::fused::run(program, &refs, &node.shape, node.dtype)?;
                    Tensor::from_parts(
                        Arc::new(StorageCell::new(storage)),
                        Layout::contiguous(&node.shape),
                        false,
                        None,
                    )
                }
            };
            values[i] = Some(value);
            for &a in node.args() {
                if self.last_use[a] == i {
                    values[a] = None;
                }
            }
        }
        self.graph
            .outputs
            .iter()
            .map(|&o| {
                values[o]
                    .clone()
                    .ok_or_else(|| internal("an output was freed"))
            })
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

    /// Seconds spent tracing and optimising.
    pub fn compile_seconds(&self) -> f64 {
        self.compile_seconds
    }
}

fn internal(msg: &str) -> Error {
    Error::Argument {
        op: "CompiledGraph::run",
        msg: msg.into(),
    }
}

fn arg_refs<'a>(values: &'a [Option<Tensor>], args: &[usize]) -> Result<Vec<&'a Tensor>> {
    args.iter()
        .map(|&a| {
            values[a]
                .as_ref()
                .ok_or_else(|| internal("a value was used after it was freed"))
        })
        .collect()
}

/// A function compiled on first use for each input signature (shapes and dtypes), like
/// `jax.jit`: calls with a new signature retrace.
pub struct StaticFn<F> {
    f: F,
    opts: CompileOptions,
    cache: HashMap<Signature, CompiledGraph>,
    traces: usize,
}

impl<F: Fn(&[Tensor]) -> Result<Vec<Tensor>>> StaticFn<F> {
    /// Wraps `f`; nothing is traced until the first call.
    pub fn new(f: F, opts: CompileOptions) -> Self {
        StaticFn {
            f,
            opts,
            cache: HashMap::new(),
            traces: 0,
        }
    }

    /// Runs the compiled graph for these inputs' signature, tracing it first if needed.
    ///
    /// # Errors
    /// As [`compile`] and [`CompiledGraph::run`].
    pub fn call(&mut self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        let sig = signature(inputs);
        if !self.cache.contains_key(&sig) {
            let compiled = compile(&self.f, inputs, self.opts)?;
            self.traces += 1;
            self.cache.insert(sig.clone(), compiled);
        }
        match self.cache.get(&sig) {
            Some(c) => c.run(inputs),
            None => Err(internal("compiled graph missing from the cache")),
        }
    }

    /// The compiled graph for a signature of inputs, if traced.
    pub fn compiled(&self, inputs: &[Tensor]) -> Option<&CompiledGraph> {
        self.cache.get(&signature(inputs))
    }

    /// How many times the function was traced.
    pub fn traces(&self) -> usize {
        self.traces
    }
}
