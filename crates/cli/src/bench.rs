//! `ferrograd bench`: runs the benchmark binary `ferrograd-bench`, installed beside
//! `ferrograd`, with the same arguments. The benchmark is a binary of its own so that only it
//! pays for counting allocations; this forwarder lets `ferrograd bench ...` reach it.

use std::path::PathBuf;
use std::process::Command;

use crate::cli::BenchArgs;
use crate::error::{CliError, Result};

/// The `ferrograd-bench` binary in this executable's folder.
fn bench_binary() -> Result<PathBuf> {
    let exe = std::env::current_exe().map_err(|e| CliError::io("ferrograd", e))?;
    let name = format!("ferrograd-bench{}", std::env::consts::EXE_SUFFIX);
    Ok(exe.with_file_name(name))
}

/// Runs `ferrograd-bench` with `args`, its output going straight to this process's.
///
/// # Errors
/// [`CliError::File`] when the binary is missing (build it with `cargo build --release`) or
/// exits with a failure (it has printed why).
pub fn run(args: &BenchArgs) -> Result<()> {
    let bin = bench_binary()?;
    if !bin.is_file() {
        return Err(CliError::file(
            &bin,
            "the benchmark binary is missing; build it with `cargo build --release` (it is \
             built with `ferrograd`)",
        ));
    }
    let status = Command::new(&bin)
        .args(&args.args)
        .status()
        .map_err(|e| CliError::io(&bin, e))?;
    if status.success() {
        Ok(())
    } else {
        Err(CliError::file(
            &bin,
            format!("the benchmark failed ({status})"),
        ))
    }
}
