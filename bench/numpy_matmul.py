#!/usr/bin/env python3
"""NumPy float32 GEMM throughput, in the same JSON-lines schema as ferrograd's
`bench_matmul` example, so the two outputs can be compared line by line.

Run (from the repository root; any python with numpy works, e.g. /work/.torchenv/bin/python):

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python3 bench/numpy_matmul.py \
        [--threads 1,2] [--sizes 256,512,1024,2048] [--reps N]

Why `env -u`: on some machines (this one included) OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE may
be set in the environment; they force OpenBLAS onto a kernel / blocking that does not match the
CPU and make numpy's matmul much slower than it should be. The script prints, on stderr, which
of these variables are set, so a run that forgot `env -u` is easy to spot.

Run it on a quiet machine: OpenBLAS's worker threads spin-wait, so when another process (a
cargo build, say) competes for the cores, multi-threaded numbers can collapse by an order of
magnitude (seen here: ~2 GFLOP/s at n=256 with 2 threads during a build, ~130 GFLOP/s at n=512
when idle).

Threads: with `threadpoolctl` installed (`pip install threadpoolctl`), the BLAS thread count is
limited per measurement inside one process. Without it, the script re-executes itself once per
thread count with OPENBLAS_NUM_THREADS / OMP_NUM_THREADS / MKL_NUM_THREADS set before numpy is
imported.

For every size and thread count: two random n x n float32 matrices, one warm-up product, then
the timed repetitions (without --reps: at least 5, continuing until about one second has been
measured, at most 100; with --reps N: exactly N). One JSON object per line on stdout:

    {"system":"numpy","workload":"gemm","dtype":"f32","n":1024,"threads":2,
     "gflops_median":...,"gflops_best":...,"reps":7}

counting 2 n^3 floating-point operations per product. Bad arguments exit with status 2.
"""

import json
import os
import statistics
import subprocess
import sys
import time

DEFAULT_SIZES = [256, 512, 1024, 2048]
MIN_REPS = 5
MAX_REPS = 100
TARGET_TIME = 1.0
SLOW_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
THREAD_ENV = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
# Set in a re-executed child: the thread count already applied through THREAD_ENV.
CHILD_ENV = "NUMPY_MATMUL_CHILD_THREADS"

USAGE = """usage: numpy_matmul.py [--threads 1,2] [--sizes 256,512,1024,2048] [--reps N]

  --threads LIST  comma-separated thread counts (default: 1 and the CPU count)
  --sizes LIST    comma-separated square matrix sizes n (default: 256,512,1024,2048)
  --reps N        timed repetitions per configuration (default: at least 5, up to ~1 s)
  -h, --help      print this help"""


class ArgError(Exception):
    pass


def parse_list(flag, value):
    out = []
    for item in value.split(","):
        item = item.strip()
        if not item.isdigit() or int(item) <= 0:
            raise ArgError(
                f"{flag}: expected a comma-separated list of positive integers, got {value!r}"
            )
        if int(item) not in out:
            out.append(int(item))
    return out


def parse_args(argv):
    """Returns a dict of options, or None when help was requested."""
    cpus = os.cpu_count() or 1
    opts = {"threads": [1, cpus] if cpus > 1 else [1], "sizes": list(DEFAULT_SIZES), "reps": None}
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if arg in ("-h", "--help"):
            return None
        flag, sep, inline = arg.partition("=")
        if flag not in ("--threads", "--sizes", "--reps"):
            raise ArgError(f"unknown argument {arg!r}")
        if sep:
            value = inline
        elif i < len(argv):
            value = argv[i]
            i += 1
        else:
            raise ArgError(f"{flag} needs a value")
        if flag == "--threads":
            opts["threads"] = parse_list(flag, value)
        elif flag == "--sizes":
            opts["sizes"] = parse_list(flag, value)
        else:
            v = value.strip()
            if not v.isdigit() or int(v) <= 0:
                raise ArgError(f"--reps: expected a positive integer, got {value!r}")
            opts["reps"] = int(v)
    return opts


def format_args(opts, threads):
    args = ["--threads", ",".join(map(str, threads)), "--sizes", ",".join(map(str, opts["sizes"]))]
    if opts["reps"] is not None:
        args += ["--reps", str(opts["reps"])]
    return args


def measure(np, n, threads, reps):
    rng = np.random.default_rng(n)
    a = rng.uniform(-1.0, 1.0, size=(n, n)).astype(np.float32)
    b = rng.uniform(-1.0, 1.0, size=(n, n)).astype(np.float32)
    c = a @ b  # warm-up
    assert c.dtype == np.float32 and c.shape == (n, n)
    del c
    times = []
    total = 0.0
    while True:
        if reps is not None:
            if len(times) >= reps:
                break
        elif len(times) >= MAX_REPS or (len(times) >= MIN_REPS and total >= TARGET_TIME):
            break
        start = time.perf_counter()
        c = a @ b
        dt = time.perf_counter() - start
        del c
        total += dt
        times.append(dt)
    flops = 2.0 * float(n) ** 3
    rates = sorted(flops / t / 1e9 for t in times)
    return {
        "system": "numpy",
        "workload": "gemm",
        "dtype": "f32",
        "n": n,
        "threads": threads,
        "gflops_median": round(statistics.median(rates), 3),
        "gflops_best": round(rates[-1], 3),
        "reps": len(rates),
    }


def run_in_process(opts, thread_counts, limit):
    """Measures every size for each thread count; `limit(t)` is a context manager or None."""
    import numpy as np

    for n in opts["sizes"]:
        for t in thread_counts:
            if limit is None:
                row = measure(np, n, t, opts["reps"])
            else:
                with limit(t):
                    row = measure(np, n, t, opts["reps"])
            print(json.dumps(row, separators=(",", ":")), flush=True)


def main(argv):
    try:
        opts = parse_args(argv)
    except ArgError as e:
        print(f"numpy_matmul.py: error: {e}\n\n{USAGE}", file=sys.stderr)
        return 2
    if opts is None:
        print(USAGE)
        return 0

    child = os.environ.get(CHILD_ENV)
    if child is not None:
        # Re-executed with the thread variables already set: measure this one thread count.
        run_in_process(opts, [int(child)], None)
        return 0

    set_slow = [f"{k}={os.environ[k]}" for k in SLOW_ENV if k in os.environ]
    if set_slow:
        print(
            "numpy_matmul.py: warning: set in the environment: "
            + ", ".join(set_slow)
            + " (may slow OpenBLAS; run with `env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE`)",
            file=sys.stderr,
        )
    else:
        print("numpy_matmul.py: OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are not set", file=sys.stderr)
    set_threads = [f"{k}={os.environ[k]}" for k in THREAD_ENV if k in os.environ]
    if set_threads:
        print("numpy_matmul.py: note: set in the environment: " + ", ".join(set_threads), file=sys.stderr)

    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        threadpool_limits = None

    if threadpool_limits is not None:
        import numpy as np  # noqa: F401  (load BLAS before threadpoolctl inspects it)

        print("numpy_matmul.py: thread control: threadpoolctl", file=sys.stderr)
        run_in_process(opts, opts["threads"], lambda t: threadpool_limits(limits=t, user_api="blas"))
        return 0

    # No threadpoolctl: the thread count must be fixed before numpy is imported, so run one
    # child process per thread count (sizes stay in order within each thread count).
    print("numpy_matmul.py: thread control: environment variables (re-exec per thread count)", file=sys.stderr)
    for t in opts["threads"]:
        env = dict(os.environ)
        for k in THREAD_ENV:
            env[k] = str(t)
        env[CHILD_ENV] = str(t)
        cmd = [sys.executable, os.path.abspath(__file__)] + format_args(opts, [t])
        rc = subprocess.run(cmd, env=env).returncode
        if rc != 0:
            return rc
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
