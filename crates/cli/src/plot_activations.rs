//! `ferrograd plot-activations`: draws activation functions and their derivatives (computed by
//! autodiff) into one PNG, with a line of numbers per activation. The curves come from
//! `ferrograd_nn::activation_curve` and the figure from `ferrograd_plot::function_figure`, as
//! in lesson 02.

use ferrograd_nn::activation_curve::{self, DEFAULT};
use ferrograd_plot::{FunctionCurve, function_figure};

use crate::cli::PlotActivationsArgs;
use crate::console::say;
use crate::error::Result;

/// Grid points per curve (odd, so that x = 0 is one of them).
const POINTS: usize = 401;

/// `ferrograd plot-activations`.
pub fn run(args: &PlotActivationsArgs) -> Result<()> {
    let chosen = if args.activations.is_empty() {
        DEFAULT.to_vec()
    } else {
        args.activations.clone()
    };
    let xs = activation_curve::grid(-args.range, args.range, POINTS);
    let curves = chosen
        .iter()
        .map(|&a| activation_curve::curve(a, &xs))
        .collect::<ferrograd_core::Result<Vec<_>>>()?;
    for c in &curves {
        let s = c.summary();
        say!(
            "{:<16} f in [{:.4}, {:.4}]  max f' = {:.4}  f'(0) = {:.4}",
            c.name,
            s.min,
            s.max,
            s.max_derivative,
            s.derivative_at_zero
        );
    }
    let panels: Vec<FunctionCurve<'_>> = curves
        .iter()
        .map(|c| FunctionCurve {
            name: &c.name,
            xs: &c.xs,
            values: &c.values,
            derivatives: &c.derivatives,
        })
        .collect();
    function_figure(&args.out, &panels)?;
    say!("wrote {}", args.out.display());
    Ok(())
}
