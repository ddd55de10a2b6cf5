//! Static graphs: the same model code, traced once into a graph, optimised as a whole, replayed.
//!
//! - `trace`: runs ordinary tensor code once on example inputs while every primitive op that
//!   passes through `ops::apply` is also recorded as a graph node. Backward passes traced this
//!   way are built by the very same backward rules as in eager mode, so the modes cannot
//!   disagree. Reading a traced value (data-dependent control flow) fails the trace.
//! - `ir`: the graph ([`Graph`]), printable as text and as Graphviz DOT.
//! - `passes`: dead-code elimination, constant folding, common-subexpression elimination and
//!   fusion of elementwise chains into single loops.
//! - `planner`: once per compiled graph, where each node's value lives (a view, a workspace
//!   buffer reused by liveness, or the parameter an update writes in place) and which kernel
//!   computes it.
//! - `runtime`: the compiled graph ([`CompiledGraph`]) that executes the plan on new inputs.
//! - `compile`: [`compile`] (trace, optimise, plan) and [`StaticFn`], which retraces when input
//!   shapes or dtypes change.
//!
//! The modules depend one way: `ir` <- `trace` <- `passes` <- `planner` <- `runtime` <-
//! `compile`; the options below are read by `passes` and `compile`.

mod compile;
mod ir;
pub(crate) mod passes;
mod planner;
mod runtime;
pub(crate) mod trace;

pub use compile::{StaticFn, compile};
pub use ir::{Graph, Node, NodeId, NodeKind};
pub use passes::{PassReport, optimize};
pub use planner::MemoryPlan;
pub use runtime::CompiledGraph;
pub use trace::{is_tracing, trace};

pub use crate::kernels::fused::{FusedOp, FusedProgram};

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
