//! The `ferrograd` command's library: argument parsing in `cli`, each command in its own
//! module (`train`, `eval`, `predict`, `summary`, `graph`, `plot-activations`, `bench`), the
//! files a run writes (`output`, `run_config`, `metrics`, `tensorboard`), the run folder with
//! its checkpoint sets, the last and the best (`run_folder`), continuing a run (`resume`), its
//! charts (`plot`), what training shows while it runs (`progress`: plain lines or the live
//! view in `tui`; `early_stopping`: which epoch is best), and output that survives a closed
//! pipe (`console`); `training_data` reads and splits a run's data, known data sets or the
//! user's image folder or CSV table. Two binaries use it: the
//! user's command `ferrograd` (src/main.rs), which installs no global allocator, and the
//! benchmark `ferrograd-bench` (src/bin/ferrograd-bench.rs), which alone counts allocations.

#![forbid(unsafe_code)]

mod bench;
pub mod cli;
mod console;
mod early_stopping;
pub mod error;
mod evaluate;
#[doc(hidden)]
pub mod fuzzing;
mod graph;
mod image;
mod metrics;
mod output;
mod plot;
mod plot_activations;
mod predict;
mod predict_data;
mod progress;
mod resume;
mod run_config;
mod run_folder;
mod summary;
mod tensorboard;
mod train;
mod training_data;
mod tui;

use std::process::ExitCode;

use crate::cli::Command;
use crate::error::Result;

/// Runs one `ferrograd` command.
pub fn run(command: Command) -> Result<()> {
    match command {
        Command::Train(args) => train::run(&args),
        Command::Eval(args) => evaluate::run(&args),
        Command::Predict(args) => predict::run(&args),
        Command::Graph(args) => graph::run(&args),
        Command::PlotActivations(args) => plot_activations::run(&args),
        Command::Summary(args) => summary::run(&args),
        Command::Bench(args) => bench::run(&args),
    }
}

/// The process's exit code for a command's result; a failure is printed as one `error: ...`
/// line on stderr.
pub fn exit_code(result: Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            console::note!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
