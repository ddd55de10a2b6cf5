//! GEMM throughput of ferrograd's f32 `matmul`, one JSON object per line (the same schema as
//! `bench/numpy_matmul.py`, so the two outputs can be compared or concatenated).
//!
//! ```text
//! cargo run --release -p ferrograd-core --example bench_matmul -- \
//!     [--threads 1,2] [--sizes 256,512,1024,2048] [--reps N]
//! ```
//!
//! For every size and thread count it multiplies two random `n x n` f32 matrices inside a
//! ferrograd `ThreadPool` of that many threads: one warm-up product (checked against a direct
//! dot product), then the timed repetitions. Without `--reps` it times at least 5 products and
//! keeps going until about a second of measurement has accumulated (at most 100); `--reps N`
//! times exactly `N`. Each line reports the median and the best rate in GFLOP/s, counting
//! `2 n^3` floating-point operations per product:
//!
//! ```text
//! {"system":"ferrograd","workload":"gemm","dtype":"f32","n":1024,"threads":2,"gflops_median":...,"gflops_best":...,"reps":7}
//! ```
//!
//! Exit codes: 0 on success, 2 for bad arguments, 1 when the library reports an error or the
//! warm-up product is wrong.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use ferrograd_core::{DType, Rng, Tensor, ThreadPool};

const USAGE: &str = "usage: bench_matmul [--threads 1,2] [--sizes 256,512,1024,2048] [--reps N]

  --threads LIST  comma-separated thread counts (default: 1 and the available parallelism)
  --sizes LIST    comma-separated square matrix sizes n (default: 256,512,1024,2048)
  --reps N        timed repetitions per configuration (default: at least 5, up to ~1 s)
  -h, --help      print this help";

/// Default minimum number of timed repetitions.
const MIN_REPS: usize = 5;
/// Without `--reps`, keep timing until this much time has been measured...
const TARGET_TIME: Duration = Duration::from_secs(1);
/// ...but never more than this many repetitions.
const MAX_REPS: usize = 100;

struct Args {
    threads: Vec<usize>,
    sizes: Vec<usize>,
    reps: Option<usize>,
}

/// Parses a comma-separated list of positive integers.
fn parse_list(flag: &str, value: &str) -> Result<Vec<usize>, String> {
    let mut out = Vec::new();
    for item in value.split(',') {
        let item = item.trim();
        match item.parse::<usize>() {
            Ok(v) if v > 0 => {
                if !out.contains(&v) {
                    out.push(v);
                }
            }
            _ => {
                return Err(format!(
                    "{flag}: expected a comma-separated list of positive integers, got {value:?}"
                ));
            }
        }
    }
    Ok(out)
}

/// `Ok(None)` means help was requested.
fn parse_args(raw: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let available = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut args = Args {
        threads: if available > 1 {
            vec![1, available]
        } else {
            vec![1]
        },
        sizes: vec![256, 512, 1024, 2048],
        reps: None,
    };
    let mut raw = raw.peekable();
    while let Some(arg) = raw.next() {
        if arg == "-h" || arg == "--help" {
            return Ok(None);
        }
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        if !matches!(flag.as_str(), "--threads" | "--sizes" | "--reps") {
            return Err(format!("unknown argument {arg:?}"));
        }
        let value = match inline {
            Some(v) => v,
            None => raw.next().ok_or_else(|| format!("{flag} needs a value"))?,
        };
        match flag.as_str() {
            "--threads" => args.threads = parse_list(&flag, &value)?,
            "--sizes" => args.sizes = parse_list(&flag, &value)?,
            _ => match value.trim().parse::<usize>() {
                Ok(n) if n > 0 => args.reps = Some(n),
                _ => {
                    return Err(format!(
                        "--reps: expected a positive integer, got {value:?}"
                    ));
                }
            },
        }
    }
    Ok(Some(args))
}

/// Checks a few entries of `c = a b` against direct dot products.
fn check_product(a: &[f32], b: &[f32], c: &[f32], n: usize) -> Result<(), String> {
    for &(i, j) in &[(0, 0), (n / 2, n / 3), (n - 1, n - 1)] {
        let want: f64 = (0..n)
            .map(|k| f64::from(a[i * n + k]) * f64::from(b[k * n + j]))
            .sum();
        let got = f64::from(c[i * n + j]);
        // Entries are sums of n products of values in [-1, 1): allow f32 rounding growth.
        let tol = 1e-5 * (n as f64) + 1e-4;
        if (got - want).abs() > tol {
            return Err(format!(
                "wrong product for n={n}: c[{i},{j}] = {got}, expected {want}"
            ));
        }
    }
    Ok(())
}

fn median(sorted: &[f64]) -> f64 {
    let m = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[m]
    } else {
        (sorted[m - 1] + sorted[m]) / 2.0
    }
}

fn run_one(n: usize, threads: usize, reps: Option<usize>) -> Result<String, String> {
    let err = |e: ferrograd_core::Error| e.to_string();
    let mut rng = Rng::new(n as u64);
    let a = Tensor::rand_uniform(&[n, n], -1.0, 1.0, DType::F32, &mut rng).map_err(err)?;
    let b = Tensor::rand_uniform(&[n, n], -1.0, 1.0, DType::F32, &mut rng).map_err(err)?;
    let pool = ThreadPool::new(threads).map_err(err)?;
    let flops = 2.0 * (n as f64).powi(3);

    let times = pool.install(|| -> Result<Vec<f64>, String> {
        // Warm-up (page faults, gemm's packing buffers, thread wake-up) and a correctness check.
        let c = a.matmul(&b).map_err(err)?;
        check_product(
            &a.to_vec::<f32>().map_err(err)?,
            &b.to_vec::<f32>().map_err(err)?,
            &c.to_vec::<f32>().map_err(err)?,
            n,
        )?;
        drop(c);
        let mut times = Vec::new();
        let mut total = Duration::ZERO;
        loop {
            let done = match reps {
                Some(r) => times.len() >= r,
                None => {
                    times.len() >= MAX_REPS || (times.len() >= MIN_REPS && total >= TARGET_TIME)
                }
            };
            if done {
                break;
            }
            let start = Instant::now();
            let c = a.matmul(&b).map_err(err)?;
            let dt = start.elapsed();
            drop(c);
            total += dt;
            times.push(dt.as_secs_f64());
        }
        Ok(times)
    })?;

    let mut rates: Vec<f64> = times.iter().map(|t| flops / t / 1e9).collect();
    rates.sort_by(f64::total_cmp);
    let best = rates[rates.len() - 1];
    Ok(format!(
        concat!(
            r#"{{"system":"ferrograd","workload":"gemm","dtype":"f32","n":{},"threads":{},"#,
            r#""gflops_median":{:.3},"gflops_best":{:.3},"reps":{}}}"#
        ),
        n,
        threads,
        median(&rates),
        best,
        rates.len()
    ))
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(msg) => {
            eprintln!("bench_matmul: error: {msg}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    for &n in &args.sizes {
        for &threads in &args.threads {
            match run_one(n, threads, args.reps) {
                Ok(line) => println!("{line}"),
                Err(msg) => {
                    eprintln!("bench_matmul: n={n} threads={threads}: {msg}");
                    return ExitCode::FAILURE;
                }
            }
        }
    }
    ExitCode::SUCCESS
}
