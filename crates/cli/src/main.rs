//! The `ferrograd` command: `train` an image classifier on a data set, `eval` a saved model,
//! `predict` the classes of image files, `graph` a training step's computation graph,
//! `plot-activations` to draw activation curves. Argument parsing lives in `cli`, each command
//! in its own module of the library, and every failure ends as one `error: ...` line and a
//! non-zero exit code. The benchmark is the separate binary `ferrograd-bench`.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use ferrograd_cli::cli::Cli;

fn main() -> ExitCode {
    ferrograd_cli::exit_code(ferrograd_cli::run(Cli::parse_args().command))
}
