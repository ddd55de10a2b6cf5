//! Static graphs: the same model code, traced once into a graph, optimised as a whole, replayed.
//!
//! - `trace`: runs ordinary tensor code once on example inputs while every primitive op that
//!   passes through `ops::apply` is also recorded as a graph node. Backward passes traced this
//!   way are built by the very same backward rules as in eager mode, so the modes cannot
//!   disagree. Reading a traced value (data-dependent control flow) fails the trace.
//! - `ir`: the graph ([`Graph`]), printable as text and as Graphviz DOT.
//! - `passes`: dead-code elimination, constant folding, common-subexpression elimination and
//!   fusion of elementwise chains into single loops.
//! - `exec`: the compiled graph ([`CompiledGraph`]) that replays the optimised graph on new
//!   inputs, and [`StaticFn`], which retraces when input shapes or dtypes change.

mod exec;
mod ir;
pub(crate) mod passes;
pub(crate) mod trace;

pub use exec::{CompileOptions, CompiledGraph, MemoryPlan, StaticFn, compile};
pub use ir::{FusedOp, FusedProgram, Graph, Node, NodeId, NodeKind};
pub use passes::{PassReport, optimize};
pub use trace::{is_tracing, trace};
