//! Running a compiled graph: [`CompiledGraph`] executes the plan made by `planner` on new
//! inputs. The workspace is allocated at the first run and reused by every later run, and the
//! kernels write straight into it; values stored into parameters are computed in place or
//! copied into them at the end of the run. With contiguous inputs, after the first run and on
//! one thread, the graph's own kernels allocate nothing: the `gemm` crate allocates up to two
//! packing buffers inside each matrix product, and ops without an in-place kernel (gather,
//! scatter, cat, argmax) are computed by `ops::apply` into a new buffer and copied.

use std::sync::{Arc, Mutex, RwLockReadGuard, RwLockWriteGuard};

use super::ir::{Graph, NodeKind};
use super::passes::PassReport;
use super::planner::{Kernel, MemoryPlan, Placement, Slot};
use crate::autograd::anomaly::{self, is_anomaly_enabled};
use crate::kernels::fused::{
    FusedFloat, FusedOp, FusedProgram, Leaf, MAX_FUSED_LEAVES, MAX_GROUP, Member, UpdateLoop,
};
use crate::kernels::{Plan, conv, elementwise as ew, fused, index, matmul, reduce};
use crate::ops::apply;
use crate::{DType, Error, Layout, Result, Storage, StorageCell, Tensor, no_grad};

/// The shapes and dtypes of a call's inputs.
pub(super) type Signature = Vec<(Vec<usize>, DType)>;

pub(super) fn signature(inputs: &[Tensor]) -> Signature {
    inputs
        .iter()
        .map(|t| (t.shape().to_vec(), t.dtype()))
        .collect()
}

/// A traced and optimised graph with its memory plan, ready to run on inputs of the traced
/// shapes.
pub struct CompiledGraph {
    graph: Graph,
    /// Where every node lives and what computes it, decided at compile time.
    plan: Placement,
    /// The workspace: shared with the tensors `output` hands out; a buffer still shared when
    /// the graph runs again is replaced by a fresh one (copy on write).
    buffers: Vec<Option<Arc<StorageCell>>>,
    /// The f32 and f64 scratch buffers of the plan, allocated at the first run.
    scratch: Mutex<[Storage; 2]>,
    signature: Signature,
    report: PassReport,
    compile_seconds: f64,
}

/// Contiguous copies of the inputs, when any of them is strided or offset (kernel plans assume
/// contiguous inputs); `None` when they can be read as they are.
fn contiguous_inputs(inputs: &[Tensor]) -> Option<Vec<Tensor>> {
    inputs
        .iter()
        .any(|t| !t.is_contiguous() || t.layout().offset() != 0)
        .then(|| inputs.iter().map(Tensor::contiguous_copy).collect())
}

fn fresh_buffer(dtype: DType, n: usize) -> Arc<StorageCell> {
    Arc::new(StorageCell::new(Storage::zeros(dtype, n)))
}

/// A broken invariant of the executor.
fn internal(msg: &str) -> Error {
    Error::Internal(format!("CompiledGraph::run: {msg}"))
}

/// A call of [`CompiledGraph::output`] that cannot be answered.
fn no_output(msg: &str) -> Error {
    Error::Argument {
        op: "CompiledGraph::output",
        msg: msg.into(),
    }
}

impl CompiledGraph {
    /// A graph ready to run with its placement; the workspace is allocated at the first run.
    pub(super) fn new(
        graph: Graph,
        placement: Placement,
        signature: Signature,
        report: PassReport,
        compile_seconds: f64,
    ) -> CompiledGraph {
        CompiledGraph {
            graph,
            plan: placement,
            buffers: Vec::new(),
            scratch: Mutex::new([Storage::F32(Vec::new()), Storage::F64(Vec::new())]),
            signature,
            report,
            compile_seconds,
        }
    }

    fn check_inputs(&self, inputs: &[Tensor]) -> Result<()> {
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
        for &(k, i) in &self.plan.param_nodes {
            if self.graph.params[k].layout() != &self.plan.layouts[i] {
                return Err(internal("a parameter changed its layout since tracing"));
            }
        }
        Ok(())
    }

    /// Runs every node into the workspace. Inputs that are not contiguous are copied first.
    /// Allocates nothing after the first run, with contiguous inputs, on one thread (the
    /// `gemm` crate's packing buffers aside).
    ///
    /// # Errors
    /// [`Error::Shape`] / [`Error::DTypeMismatch`] for inputs unlike the traced ones; kernel
    /// errors (an index out of range).
    pub fn execute(&mut self, inputs: &[Tensor]) -> Result<()> {
        self.check_inputs(inputs)?;
        if let Some(owned) = contiguous_inputs(inputs) {
            return self.execute(&owned);
        }
        if let Ok(mut s) = self.scratch.lock() {
            for (k, dtype) in [DType::F32, DType::F64].into_iter().enumerate() {
                if s[k].len() != self.plan.scratch[k] {
                    s[k] = Storage::zeros(dtype, self.plan.scratch[k]);
                }
            }
        }
        if self.buffers.len() != self.plan.specs.len() {
            self.buffers = self
                .plan
                .specs
                .iter()
                .map(|&(d, n)| Some(fresh_buffer(d, n)))
                .collect();
        }
        let _guard = no_grad();
        for i in 0..self.graph.nodes.len() {
            match &self.plan.kernels[i] {
                Kernel::Nothing => continue,
                // Run by the last member of its group.
                Kernel::Fused { group, .. } if group.is_empty() => continue,
                Kernel::Fused { group, .. } if group.len() > 1 => {
                    match self.graph.nodes[i].dtype {
                        DType::F32 => self.run_group::<f32>(group, inputs)?,
                        DType::F64 => self.run_group::<f64>(group, inputs)?,
                        DType::I64 => return Err(internal("fused integer node")),
                    }
                    if is_anomaly_enabled() {
                        for &m in group {
                            self.check_anomaly(m, inputs)?;
                        }
                    }
                    continue;
                }
                _ => {}
            }
            let b = match self.plan.slots[i] {
                Slot::Buffer(b) => b,
                Slot::Param(k) => {
                    // An update computed in place into the parameter's own storage.
                    let cell = self.graph.params[k].storage_cell().clone();
                    self.compute(i, inputs, &mut cell.write())?;
                    if is_anomaly_enabled() {
                        self.check_anomaly(i, inputs)?;
                    }
                    continue;
                }
                _ => return Err(internal("a computed node has no buffer")),
            };
            let mut cell = self.buffers[b]
                .take()
                .ok_or_else(|| internal("a buffer is in use"))?;
            if Arc::get_mut(&mut cell).is_none() {
                // A tensor returned by an earlier run still holds this buffer: leave it that
                // value and compute into a new one.
                let (d, n) = self.plan.specs[b];
                cell = fresh_buffer(d, n);
            }
            let result = match Arc::get_mut(&mut cell) {
                Some(c) => self.compute(i, inputs, c.get_mut()),
                None => Err(internal("a fresh buffer is shared")),
            };
            self.buffers[b] = Some(cell);
            result?;
            if is_anomaly_enabled() {
                self.check_anomaly(i, inputs)?;
            }
        }
        self.write_stores(inputs)
    }

    /// In anomaly mode: fails if node `i`'s value holds a NaN or an infinity, naming its op
    /// (for a fused node, the op computing its value, with the ops fused into it), its input
    /// shapes and the site recorded when it was traced.
    #[cold]
    fn check_anomaly(&self, i: usize, inputs: &[Tensor]) -> Result<()> {
        let node = &self.graph.nodes[i];
        let (op, fused) = match &node.kind {
            NodeKind::Op { op, .. } => (op.name(), None),
            NodeKind::Fused { program, .. } => (
                program.steps.last().map_or("fused", FusedOp::name),
                Some(node.label()),
            ),
            _ => return Ok(()),
        };
        let site = match (&node.site, fused) {
            (Some(s), Some(f)) => Some(Arc::from(format!("{s}, computed by {f}").as_str())),
            (None, Some(f)) => Some(Arc::from(format!("computed by {f}").as_str())),
            (s, None) => s.clone(),
        };
        let args = node.args();
        let shapes = || {
            args.iter()
                .map(|&a| self.graph.nodes[a].shape.clone())
                .collect()
        };
        let arg_finite = |a: usize| {
            self.read(a, inputs)
                .is_ok_and(|s| anomaly::first_non_finite(&s, &self.plan.layouts[a]).is_none())
        };
        let cell = self.cell_of(i, inputs)?;
        let value = cell.read();
        anomaly::check(
            op,
            shapes,
            &value,
            &self.plan.layouts[i],
            site.as_ref(),
            || args.iter().all(|&a| arg_finite(a)),
        )
    }

    /// Performs the recorded in-place writes: each stored value is copied into its parameter's
    /// storage (whose version is bumped), after every node has read the old values.
    fn write_stores(&self, inputs: &[Tensor]) -> Result<()> {
        for (k, v, plan) in &self.plan.stores {
            let target = self.graph.params[*k].storage_cell();
            let source = self.cell_of(*v, inputs)?;
            if Arc::ptr_eq(target, &source) {
                // A parameter assigned a view of itself (`p.assign(&p.t())`): copy through a
                // temporary, since source and target cannot be locked together.
                let value = Tensor::from_parts(source, self.plan.layouts[*v].clone(), false, None);
                let copy = ew::contiguous(&value.storage(), value.layout());
                let mut dst = target.write();
                ew::cast_into(
                    &Plan::new(value.shape(), [&Layout::contiguous(value.shape())]),
                    &copy,
                    &mut dst,
                );
                continue;
            }
            let src = source.read();
            let mut dst = target.write();
            ew::cast_into(plan, &src, &mut dst);
        }
        Ok(())
    }

    /// Computes node `i` into `out`.
    fn compute(&self, i: usize, inputs: &[Tensor], out: &mut Storage) -> Result<()> {
        let node = &self.graph.nodes[i];
        let args = node.args();
        if let Kernel::Other(op) = &self.plan.kernels[i] {
            // No in-place kernel: run the op on tensors sharing the inputs' storage, then copy.
            let tensors = args
                .iter()
                .map(|&a| {
                    Ok(Tensor::from_parts(
                        self.cell_of(a, inputs)?,
                        self.plan.layouts[a].clone(),
                        false,
                        None,
                    ))
                })
                .collect::<Result<Vec<_>>>()?;
            let refs: Vec<&Tensor> = tensors.iter().collect();
            let value = apply(op.clone(), &refs)?;
            *out = ew::contiguous(&value.storage(), value.layout());
            return Ok(());
        }
        if let Kernel::MatMulUpdate(a, b, scale) = self.plan.kernels[i] {
            let (sa, sb, ss) = (
                self.cell_of(a, inputs)?,
                self.cell_of(b, inputs)?,
                self.cell_of(scale, inputs)?,
            );
            let (ga, gb, gs) = (sa.read(), sb.read(), ss.read());
            let at = self.plan.layouts[scale].offset();
            let s = match &*gs {
                Storage::F32(v) => v.get(at).map(|&x| f64::from(x)),
                Storage::F64(v) => v.get(at).copied(),
                Storage::I64(_) => None,
            }
            .ok_or_else(|| internal("the scale of a fused update is not a float"))?;
            return matmul::matmul_acc_into(
                &ga,
                &self.plan.layouts[a],
                &gb,
                &self.plan.layouts[b],
                -s,
                out,
            );
        }
        if let Kernel::Fused { group, .. } = &self.plan.kernels[i] {
            return match out {
                Storage::F32(o) => self.run_fused::<f32>(group, inputs, &mut [o.as_mut_slice()]),
                Storage::F64(o) => self.run_fused::<f64>(group, inputs, &mut [o.as_mut_slice()]),
                Storage::I64(_) => Err(internal("fused integer node")),
            };
        }
        if args.len() > MAX_FUSED_LEAVES {
            return Err(internal("a node has more inputs than the executor reads"));
        }
        // Only fused kernels update in place, so no input here lives in `out`.
        let mut guards: [Option<RwLockReadGuard<'_, Storage>>; MAX_FUSED_LEAVES] =
            Default::default();
        for (guard, &a) in guards.iter_mut().zip(args) {
            *guard = Some(self.read(a, inputs)?);
        }
        let src = |k: usize| -> Result<&Storage> {
            guards[k]
                .as_deref()
                .ok_or_else(|| internal("an input value is missing"))
        };
        let lay = |k: usize| &self.plan.layouts[args[k]];
        match &self.plan.kernels[i] {
            Kernel::Nothing => Ok(()),
            Kernel::Unary(op, plan) => ew::unary_into(*op, plan, src(0)?, out),
            Kernel::Powf(e, plan) => ew::powf_into(plan, src(0)?, *e, out),
            Kernel::Binary(op, plan) => ew::binary_into(*op, plan, src(0)?, src(1)?, out),
            Kernel::Cmp(op, plan) => ew::cmp_into(*op, plan, src(0)?, src(1)?, out),
            Kernel::Where(plan) => ew::where_into(plan, src(0)?, src(1)?, src(2)?, out),
            Kernel::Convert(plan) => {
                ew::cast_into(plan, src(0)?, out);
                Ok(())
            }
            Kernel::MatMul => matmul::matmul_into(src(0)?, lay(0), src(1)?, lay(1), out),
            Kernel::SoftmaxCrossEntropy => {
                reduce::softmax_cross_entropy_into(src(0)?, lay(0), src(1)?, lay(1), out)
            }
            Kernel::Conv(dir, g) => {
                let mut scratch = self
                    .scratch
                    .lock()
                    .map_err(|_| internal("the scratch buffer is poisoned"))?;
                let k = usize::from(node.dtype == DType::F64);
                let (a, b) = (conv::dense(src(0)?, lay(0)), conv::dense(src(1)?, lay(1)));
                conv::run(*dir, g, &a, &b, out, &mut scratch[k])
            }
            Kernel::MaxPoolIndex(planes, hw, out_hw, p) => {
                conv::max_pool_index(&conv::dense(src(0)?, lay(0)), *planes, *hw, *out_hw, p, out)
            }
            Kernel::Gather(dim) => index::gather_into(src(0)?, lay(0), src(1)?, lay(1), *dim, out),
            Kernel::ScatterAdd(dim) => index::scatter_add_into(
                src(0)?,
                lay(0),
                src(1)?,
                lay(1),
                src(2)?,
                lay(2),
                *dim,
                out,
            ),
            Kernel::Reduce(op, dims) => {
                if !reduce::reduce_into(*op, src(0)?, lay(0), dims, out) {
                    *out = reduce::reduce(*op, src(0)?, lay(0), dims)?;
                }
                Ok(())
            }
            // Handled before the inputs are locked, above.
            Kernel::Other(_) | Kernel::MatMulUpdate(..) | Kernel::Fused { .. } => Err(internal(
                "an op without in-place kernel reached the dispatch",
            )),
        }
    }

    /// Runs a group of in-place updates, each into its parameter's storage.
    fn run_group<T: FusedFloat>(&self, group: &[usize], inputs: &[Tensor]) -> Result<()> {
        if group.len() > MAX_GROUP {
            return Err(internal("a group has more members than the executor runs"));
        }
        let mut writes: [Option<RwLockWriteGuard<'_, Storage>>; MAX_GROUP] = Default::default();
        for (w, &m) in writes.iter_mut().zip(group) {
            let Slot::Param(k) = self.plan.slots[m] else {
                return Err(internal("a grouped update is not in place"));
            };
            *w = Some(self.graph.params[k].storage_cell().write());
        }
        let mut outs: [&mut [T]; MAX_GROUP] = Default::default();
        for (o, w) in outs.iter_mut().zip(writes.iter_mut().flatten()) {
            *o = T::slice_mut(w).ok_or_else(|| internal("fused inputs of mixed dtypes"))?;
        }
        self.run_fused(group, inputs, &mut outs[..group.len()])
    }

    /// Runs fused nodes `group` (one node, or a group of in-place updates) into `outs`. An
    /// operand living where a member writes is read from that member's output.
    fn run_fused<'s, T: FusedFloat>(
        &'s self,
        group: &[usize],
        inputs: &'s [Tensor],
        outs: &mut [&mut [T]],
    ) -> Result<()> {
        type Guards<'g> = [Option<RwLockReadGuard<'g, Storage>>; MAX_FUSED_LEAVES];
        let mut guards: [Guards<'s>; MAX_GROUP] = Default::default();
        type Program<'p> = (&'p FusedProgram, &'p Plan, Option<UpdateLoop>);
        let mut programs: [Option<Program<'_>>; MAX_GROUP] = [None; MAX_GROUP];
        let written = |a: usize| {
            group
                .iter()
                .position(|&o| self.plan.slots[o] == self.plan.slots[a])
        };
        for (j, &m) in group.iter().enumerate().take(MAX_GROUP) {
            let Kernel::Fused {
                program,
                plan,
                update_loop,
                ..
            } = &self.plan.kernels[m]
            else {
                return Err(internal("a group member is not fused"));
            };
            programs[j] = Some((program, plan, *update_loop));
            let args = self.graph.nodes[m].args();
            if args.len() > MAX_FUSED_LEAVES {
                return Err(internal("a node has more inputs than the executor reads"));
            }
            for (k, &a) in args.iter().enumerate() {
                if written(a).is_none() {
                    let g = self.read(a, inputs)?;
                    if T::slice(&g).is_none() {
                        return Err(internal("fused inputs of mixed dtypes"));
                    }
                    guards[j][k] = Some(g);
                }
            }
        }
        let Some(first) = programs[0] else {
            return Err(internal("an empty group of fused nodes"));
        };
        // Slots past the group repeat its first member; they are not run.
        let members: [Member<'_, T>; MAX_GROUP] = std::array::from_fn(|j| {
            let (program, plan, update_loop) = programs[j].unwrap_or(first);
            let mut leaves = [Leaf::NONE; MAX_FUSED_LEAVES];
            if let Some(&m) = group.get(j) {
                for (k, &a) in self.graph.nodes[m].args().iter().enumerate() {
                    leaves[k] = match written(a) {
                        Some(o) => Leaf::Out(o),
                        None => {
                            Leaf::Data(guards[j][k].as_deref().and_then(T::slice).unwrap_or(&[]))
                        }
                    };
                }
            }
            Member {
                program,
                plan,
                leaves,
                update_loop,
            }
        });
        fused::run_group(&members[..group.len()], outs)
    }

    /// A read lock on the storage holding node `a`'s value.
    fn read<'s>(&'s self, a: usize, inputs: &'s [Tensor]) -> Result<RwLockReadGuard<'s, Storage>> {
        Ok(match self.plan.slots[a] {
            Slot::Input(j) => inputs
                .get(j)
                .ok_or_else(|| internal("inputs missing"))?
                .storage(),
            Slot::Param(j) => self.graph.params[j].storage(),
            Slot::Const(j) => self.plan.consts[j].storage(),
            Slot::Buffer(j) => self.buffers[j]
                .as_ref()
                .ok_or_else(|| internal("an input buffer is missing"))?
                .read(),
        })
    }

    /// The storage holding node `i`'s value.
    fn cell_of(&self, i: usize, inputs: &[Tensor]) -> Result<Arc<StorageCell>> {
        Ok(match self.plan.slots[i] {
            Slot::Input(j) => inputs
                .get(j)
                .ok_or_else(|| internal("inputs missing"))?
                .storage_cell()
                .clone(),
            Slot::Param(j) => self.graph.params[j].storage_cell().clone(),
            Slot::Const(j) => self.plan.consts[j].storage_cell().clone(),
            Slot::Buffer(b) => self
                .buffers
                .get(b)
                .and_then(Option::clone)
                .ok_or_else(|| no_output("the graph has not run yet"))?,
        })
    }

    /// The value of output `k` after [`CompiledGraph::execute`]. The tensor shares the
    /// workspace without copying; the next run leaves it unchanged (a buffer still held by a
    /// returned tensor is replaced, not overwritten).
    ///
    /// # Errors
    /// [`Error::Argument`] for an output index out of range or before the first run.
    pub fn output(&self, k: usize, inputs: &[Tensor]) -> Result<Tensor> {
        let &o = self
            .graph
            .outputs
            .get(k)
            .ok_or_else(|| no_output("no such output"))?;
        let cell = self.cell_of(o, inputs)?;
        Ok(Tensor::from_parts(
            cell,
            self.plan.layouts[o].clone(),
            false,
            None,
        ))
    }

    /// Runs the graph on inputs of the traced shapes and dtypes and returns its outputs.
    /// Parameters are read as they are now, so updates between runs (an optimizer step) are
    /// seen.
    ///
    /// # Errors
    /// As [`CompiledGraph::execute`].
    pub fn run(&mut self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        let owned = contiguous_inputs(inputs);
        let inputs = owned.as_deref().unwrap_or(inputs);
        self.execute(inputs)?;
        (0..self.graph.outputs.len())
            .map(|k| self.output(k, inputs))
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

    /// Whether `inputs` have the shapes and dtypes the graph was traced with.
    pub fn accepts(&self, inputs: &[Tensor]) -> bool {
        self.signature.len() == inputs.len()
            && self
                .signature
                .iter()
                .zip(inputs)
                .all(|((shape, dtype), t)| t.shape() == shape.as_slice() && t.dtype() == *dtype)
    }

    /// The memory plan.
    pub fn memory(&self) -> MemoryPlan {
        self.plan.memory
    }

    /// Seconds spent tracing, optimising and planning.
    pub fn compile_seconds(&self) -> f64 {
        self.compile_seconds
    }
}
