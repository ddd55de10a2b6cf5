//! Prints the traced and the optimised graph of an MLP training step (forward, softmax
//! cross-entropy, backward), to see what static mode compiles.
//!
//! `cargo run --release -p ferrograd-core --example print_mlp_graph`

use ferrograd_core::graph::{CompileOptions, compile};
use ferrograd_core::{DType, Result, Rng, Tensor};

fn main() -> Result<()> {
    let mut rng = Rng::new(0);
    let mut param = |s: &[usize]| -> Result<Tensor> {
        Ok(Tensor::randn(s, 0.0, 0.05, DType::F32, &mut rng)?.with_requires_grad(true))
    };
    let (w1, b1, w2, b2) = (
        param(&[16, 8])?,
        param(&[16])?,
        param(&[4, 16])?,
        param(&[4])?,
    );
    let step = |i: &[Tensor]| -> Result<Vec<Tensor>> {
        let h = i[0].matmul(&w1.t()?)?.add(&b1)?.relu()?;
        let logits = h.matmul(&w2.t()?)?.add(&b2)?;
        let loss = logits.softmax_cross_entropy(&i[1])?.mean(&[], false)?;
        let g = loss.backward()?;
        let mut out = vec![loss];
        for p in [&w1, &b1, &w2, &b2] {
            out.extend(g.get(p).cloned());
        }
        Ok(out)
    };
    let x = Tensor::zeros(&[32, 8], DType::F32)?;
    let y = Tensor::zeros(&[32], DType::I64)?;
    let raw = compile(step, &[x.clone(), y.clone()], CompileOptions::NONE)?;
    println!(
        "== traced ({} nodes)\n{}",
        raw.graph().nodes.len(),
        raw.graph()
    );
    let opt = compile(step, &[x, y], CompileOptions::default())?;
    println!("== optimised: {:?}\n{}", opt.report(), opt.graph());
    Ok(())
}
