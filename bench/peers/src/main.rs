//! The workloads of `ferrograd-bench` (gemm, mlp-sgd, mlp-adam, infer, cnn-lenet, cnn-cifar) in
//! the Rust peers candle and burn (its `flex` CPU backend), with identical definitions, printing
//! one JSON object per line in the same schema with `"system": "candle"` or `"burn"`.
//!
//! Each thread count runs in a process of its own (both libraries size their thread pools once
//! per process, from `RAYON_NUM_THREADS`); subnormal floats are flushed to zero on every thread,
//! as `ferrograd-bench` and the PyTorch script do.
//!
//!     cargo run --release -- --system candle --workload mlp-sgd --batch 1,32 --threads 1,2

mod burn_peer;
mod candle_peer;

use std::process::Command;
use std::time::Instant;

use clap::Parser;

#[derive(Parser, Debug, Clone)]
struct Args {
    /// candle or burn
    #[arg(long)]
    system: String,
    /// Workloads: gemm, mlp-sgd, mlp-adam, infer, cnn-lenet, cnn-cifar (comma separated)
    #[arg(long, value_delimiter = ',', default_value = "mlp-sgd")]
    workload: Vec<String>,
    /// Batch sizes of the training workloads (default 1,32,128,1024 for the MLP, 64,256 for
    /// cnn-lenet and 128 for cnn-cifar, as `ferrograd-bench`)
    #[arg(long, value_delimiter = ',')]
    batch: Vec<usize>,
    /// Thread counts (one process each)
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    threads: Vec<usize>,
    /// Matrix sizes of the gemm workload
    #[arg(long, value_delimiter = ',', default_value = "256,512,1024,2048")]
    n: Vec<usize>,
    /// Timed repetitions (the median is reported)
    #[arg(long, default_value_t = 5)]
    reps: usize,
    /// Approximate seconds per repetition
    #[arg(long, default_value_t = 0.3)]
    seconds: f64,
    /// Keep subnormal floats instead of flushing them to zero
    #[arg(long)]
    keep_denormals: bool,
    /// Accepted for the same command line as `ferrograd-bench`; output is always JSON
    #[arg(long)]
    json: bool,
    /// Accepted for the same command line as `ferrograd-bench`; both peers run in eager mode
    #[arg(long, value_delimiter = ',')]
    mode: Vec<String>,
}

/// The 16 pre-generated batches every system rotates through: inputs N(0, 1) of shape
/// `[batch, sample...]` and uniform labels, as plain vectors that each library turns into its
/// own tensors.
pub struct Pool {
    pub batch: usize,
    /// The shape of one sample: `[784]` for the MLP, `[channels, height, width]` for the CNNs.
    pub sample: Vec<usize>,
    pub inputs: Vec<Vec<f32>>,
    pub labels: Vec<Vec<u32>>,
}

impl Pool {
    fn new(batch: usize, sample: &[usize]) -> Pool {
        let mut rng = SplitMix(batch as u64);
        let size = batch * sample.iter().product::<usize>();
        let inputs = (0..16)
            .map(|_| (0..size).map(|_| rng.normal()).collect())
            .collect();
        let labels = (0..16)
            .map(|_| (0..batch).map(|_| (rng.next() % 10) as u32).collect())
            .collect();
        Pool {
            batch,
            sample: sample.to_vec(),
            inputs,
            labels,
        }
    }
}

/// A small seeded generator, so that the data do not depend on either library's.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn uniform(&mut self) -> f64 {
        ((self.next() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// Box-Muller.
    fn normal(&mut self) -> f32 {
        let (u, v) = (self.uniform(), self.uniform());
        ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
    }
}

/// The convolutional networks of the CNN workloads, defined as in `ferrograd-bench` and
/// bench/pytorch_reference.py.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Cnn {
    /// LeNet-5 on [B, 1, 28, 28]: conv 5x5 (6, padding 2) -> ReLU -> max pool 2 -> conv 5x5
    /// (16) -> ReLU -> max pool 2 -> flatten (400) -> 120 -> ReLU -> 84 -> ReLU -> 10.
    LeNet,
    /// The plain CNN on [B, 3, 32, 32]: three stages of 32, 64 and 128 channels, each conv 3x3
    /// (padding 1, no bias) -> batch norm (training mode) -> ReLU -> max pool 2, then global
    /// average pooling and a linear 128 -> 10.
    Cifar,
}

impl Cnn {
    /// The shape of one input sample.
    pub fn sample(self) -> [usize; 3] {
        match self {
            Cnn::LeNet => [1, 28, 28],
            Cnn::Cifar => [3, 32, 32],
        }
    }

    /// The channel widths of the plain CNN's stages.
    pub const CIFAR_WIDTHS: [usize; 3] = [32, 64, 128];
}

/// What one system runs: a closure per workload, built outside the timing, that runs the
/// workload's step a given number of times.
pub trait Peer {
    fn name(&self) -> &'static str;
    fn gemm(&self, n: usize) -> Box<dyn FnMut(usize)>;
    fn train(&self, pool: Pool, adam: bool) -> Box<dyn FnMut(usize)>;
    fn infer(&self, pool: Pool) -> Box<dyn FnMut(usize)>;
    /// One CNN training step: mean softmax cross-entropy, backward, and SGD with lr 0.01 and
    /// momentum 0.9 (no dampening, as PyTorch's).
    fn train_cnn(&self, pool: Pool, net: Cnn) -> Box<dyn FnMut(usize)>;
}

/// Median seconds per iteration of `body(iters)` after a warm-up, each repetition sized to
/// about `seconds` (as `ferrograd-bench` and the PyTorch script measure).
fn measure(reps: usize, seconds: f64, mut body: impl FnMut(usize)) -> f64 {
    let start = Instant::now();
    body(2);
    let once = (start.elapsed().as_secs_f64() / 2.0).max(1e-7);
    let iters = (seconds / once).clamp(1.0, 100_000.0) as usize;
    let mut times: Vec<f64> = (0..reps.max(1))
        .map(|_| {
            let t = Instant::now();
            body(iters);
            t.elapsed().as_secs_f64() / iters as f64
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// Sets flush-to-zero and denormals-are-zero on the calling thread.
fn flush_denormals() {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: setting the MXCSR's FTZ (bit 15) and DAZ (bit 6) flags changes only how this
    // thread rounds subnormal results; SSE is always present on x86_64.
    #[allow(deprecated)]
    unsafe {
        use std::arch::x86_64::{_mm_getcsr, _mm_setcsr};
        _mm_setcsr(_mm_getcsr() | 0x8040);
    }
}

fn row(system: &str, threads: usize, flush: bool, fields: serde_json::Value) {
    let mut out = serde_json::json!({ "system": system });
    if let (Some(o), Some(f)) = (out.as_object_mut(), fields.as_object()) {
        o.extend(f.clone());
        o.insert("threads".into(), threads.into());
        o.insert("flush_denormals".into(), flush.into());
    }
    println!("{out}");
}

fn run_one(args: &Args, threads: usize) -> Result<(), String> {
    let flush = !args.keep_denormals;
    let mut pool = rayon::ThreadPoolBuilder::new().num_threads(threads);
    if flush {
        flush_denormals();
        pool = pool.start_handler(|_| flush_denormals());
    }
    pool.build_global().map_err(|e| e.to_string())?;
    let peer: Box<dyn Peer> = match args.system.as_str() {
        "candle" => Box::new(candle_peer::Candle),
        "burn" => Box::new(burn_peer::Burn),
        other => return Err(format!("--system: expected candle or burn, got {other}")),
    };
    let name = peer.name();
    // A row of samples per second for one step closure.
    let samples_row = |workload: &str, batch: usize, step: &mut dyn FnMut(usize)| {
        let secs = measure(args.reps, args.seconds, step);
        let fields = serde_json::json!({
            "workload": workload, "mode": "eager", "batch": batch,
            "samples_per_s": batch as f64 / secs,
        });
        row(name, threads, flush, fields);
    };
    for w in &args.workload {
        match w.as_str() {
            "gemm" => {
                for &n in &args.n {
                    let secs = measure(args.reps, args.seconds, peer.gemm(n));
                    let gflops = 2.0 * (n as f64).powi(3) / secs / 1e9;
                    row(
                        name,
                        threads,
                        flush,
                        serde_json::json!({"workload": "gemm", "n": n, "gflops": gflops}),
                    );
                }
            }
            "mlp-sgd" | "mlp-adam" => {
                for &batch in batches(&args.batch, &[1, 32, 128, 1024]) {
                    let mut step = peer.train(Pool::new(batch, &[784]), w == "mlp-adam");
                    samples_row(w, batch, &mut step);
                }
            }
            "infer" => samples_row("infer", 1024, &mut peer.infer(Pool::new(1024, &[784]))),
            "cnn-lenet" | "cnn-cifar" => {
                let (net, default) = if w == "cnn-lenet" {
                    (Cnn::LeNet, &[64, 256][..])
                } else {
                    (Cnn::Cifar, &[128][..])
                };
                for &batch in batches(&args.batch, default) {
                    let mut step = peer.train_cnn(Pool::new(batch, &net.sample()), net);
                    samples_row(w, batch, &mut step);
                }
            }
            "epoch" | "epoch-lenet" => {} // needs a data pipeline of each library's; not measured for peers
            other => return Err(format!("--workload: unknown workload {other}")),
        }
    }
    Ok(())
}

/// The batch sizes given, else a workload's defaults.
fn batches<'a>(given: &'a [usize], default: &'a [usize]) -> &'a [usize] {
    if given.is_empty() { default } else { given }
}

/// The command line without its `--threads` option.
fn without_threads(args: impl Iterator<Item = String>) -> Vec<String> {
    let mut out = Vec::new();
    let mut skip = false;
    for a in args {
        if std::mem::take(&mut skip) || a.starts_with("--threads=") {
            continue;
        }
        if a == "--threads" {
            skip = true;
            continue;
        }
        out.push(a);
    }
    out
}

fn main() {
    let args = Args::parse();
    let result = if let [threads] = args.threads[..] {
        run_one(&args, threads)
    } else {
        // One child process per thread count, each with the pool size in its environment.
        let exe = std::env::current_exe().expect("the running executable's path");
        args.threads.iter().try_for_each(|&t| {
            let mut cmd = Command::new(&exe);
            cmd.args(without_threads(std::env::args().skip(1)))
                .arg("--threads")
                .arg(t.to_string());
            cmd.env("RAYON_NUM_THREADS", t.to_string());
            match cmd.status() {
                Ok(s) if s.success() => Ok(()),
                Ok(s) => Err(format!("the run with {t} threads failed ({s})")),
                Err(e) => Err(format!("cannot start {}: {e}", exe.display())),
            }
        })
    };
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(2);
    }
}
