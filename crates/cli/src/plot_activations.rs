//! `ferrograd plot-activations`: draws activation functions and their derivatives (computed by
//! autodiff) into one PNG, with a line of numbers per activation. The curves and the figure
//! come from `ferrograd::lesson::activations`, which lesson 02 uses too.

use std::path::PathBuf;

use clap::Args;
use ferrograd::lesson::activations::{self, DEFAULT};
use ferrograd::nn::Activation;

use crate::error::Result;

/// Parses an activation name and refuses those without a curve `f(x)`.
fn parse_elementwise(s: &str) -> std::result::Result<Activation, String> {
    let a = s.parse::<Activation>().map_err(|e| e.to_string())?;
    if activations::is_elementwise(a) {
        Ok(a)
    } else {
        Err(format!(
            "{a} mixes the elements of its input, so it has no curve f(x)"
        ))
    }
}

fn positive(s: &str) -> std::result::Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("{s:?} is not a positive number")),
    }
}

#[derive(Args, Debug, Clone)]
pub struct PlotActivationsArgs {
    /// The PNG file to write.
    #[arg(long, default_value = "runs/activations.png", value_name = "FILE.png")]
    pub out: PathBuf,
    /// Activations, comma separated (default: sigmoid, tanh, hard-sigmoid, hard-tanh, relu,
    /// leaky-relu:0.1, prelu, elu, softplus, silu, gelu); parameters after a colon, as in
    /// `train --activation`.
    #[arg(long, value_delimiter = ',', value_parser = parse_elementwise)]
    pub activations: Vec<Activation>,
    /// The x axis runs from -X to X.
    #[arg(long, default_value_t = 5.0, value_name = "X", value_parser = positive)]
    pub range: f64,
}

/// Grid points per curve (odd, so that x = 0 is one of them).
const POINTS: usize = 401;

/// `ferrograd plot-activations`.
pub fn run(args: &PlotActivationsArgs) -> Result<()> {
    let chosen = if args.activations.is_empty() {
        DEFAULT.to_vec()
    } else {
        args.activations.clone()
    };
    let xs = activations::grid(-args.range, args.range, POINTS);
    let curves = chosen
        .iter()
        .map(|&a| activations::curve(a, &xs))
        .collect::<ferrograd::Result<Vec<_>>>()?;
    for c in &curves {
        let s = c.summary();
        println!(
            "{:<16} f in [{:.4}, {:.4}]  max f' = {:.4}  f'(0) = {:.4}",
            activations::label(c.activation),
            s.min,
            s.max,
            s.max_derivative,
            s.derivative_at_zero
        );
    }
    activations::figure(&args.out, &curves)?;
    println!("wrote {}", args.out.display());
    Ok(())
}
