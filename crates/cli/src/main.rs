//! The `ferrograd` command: `train` an image classifier on a data set, `eval` a saved model,
//! `predict` the classes of image files, `graph` a training step's computation graph,
//! `plot-activations` to draw activation curves. Argument parsing lives in `cli`, each command
//! in its own module, and every failure ends as one `error: ...` line and a non-zero exit code.

mod bench;
mod cli;
mod error;
mod evaluate;
mod graph;
mod image;
mod metrics;
mod output;
mod plot;
mod plot_activations;
mod predict;
mod run_config;
mod train;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};

/// Counts heap allocations, so `ferrograd bench` can report allocations per step.
#[global_allocator]
static ALLOCATOR: bench::CountingAllocator = bench::CountingAllocator;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Train(args) => train::run(&args),
        Command::Eval(args) => evaluate::run(&args),
        Command::Predict(args) => predict::run(&args),
        Command::Graph(args) => graph::run(&args),
        Command::Bench(args) => bench::run(&args),
        Command::PlotActivations(args) => plot_activations::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
