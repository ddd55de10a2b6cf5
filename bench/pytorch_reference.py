#!/usr/bin/env python3
"""The benchmark workloads of `ferrograd-bench`, in PyTorch (CPU), with identical definitions.

Prints one JSON object per line with the same schema as `ferrograd-bench --json` and
"system": "pytorch":

- gemm: f32 C = A @ B, square n; GFLOP/s = 2 n^3 / time.
- mlp-sgd / mlp-adam: 784 -> 256 -> ReLU -> 128 -> ReLU -> 10, mean softmax cross-entropy,
  SGD (lr 0.01) or Adam (lr 1e-3); forward, backward and update; inputs N(0, 1) and uniform
  labels from a rotating pool of 16 batches generated before timing.
- infer: the same MLP, forward only (torch.no_grad), batch 1024.
- epoch: one MNIST epoch (60,000 images read from the IDX files in --data-dir, batch 128,
  Adam), data pipeline included; wall seconds and the process's peak resident memory (run it
  alone in its process for a fair memory figure).

Each figure is the median of --reps timed repetitions after a warm-up, each repetition sized
to about --seconds. Threads are set with torch.set_num_threads (intra-op) and
torch.set_num_interop_threads(1). Subnormal floats are flushed to zero
(torch.set_flush_denormal(True)) as `ferrograd-bench` does, unless --keep-denormals.

    python bench/pytorch_reference.py --workload mlp-sgd --batch 1,32 --threads 1,2
"""

import argparse
import gzip
import json
import os
import resource
import statistics
import struct
import time

import torch
import torch.nn.functional as F


def csv(kind):
    return lambda s: [kind(v) for v in s.split(",") if v]


def peak_rss_mb():
    """Peak resident memory (VmHWM) in MiB, reset by reset_peak_rss where Linux allows it."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def reset_peak_rss():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def measure(reps, seconds, body):
    """Median seconds per iteration of body(iters), after a warm-up (as ferrograd-bench)."""
    start = time.perf_counter()
    body(2)
    once = max((time.perf_counter() - start) / 2.0, 1e-7)
    iters = int(min(max(seconds / once, 1), 100_000))
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        body(iters)
        times.append((time.perf_counter() - t0) / iters)
    return statistics.median(times)


FLUSH = True


def row(**fields):
    out = {"system": "pytorch"}
    out.update(fields)
    out["flush_denormals"] = FLUSH
    print(json.dumps(out), flush=True)


def mnist_mlp():
    return torch.nn.Sequential(
        torch.nn.Linear(784, 256),
        torch.nn.ReLU(),
        torch.nn.Linear(256, 128),
        torch.nn.ReLU(),
        torch.nn.Linear(128, 10),
    )


def batches(batch, gen):
    return [
        (torch.randn(batch, 784, generator=gen), torch.randint(0, 10, (batch,), generator=gen))
        for _ in range(16)
    ]


def train_row(workload, batch, threads, args):
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    model = mnist_mlp()
    if workload == "mlp-sgd":
        opt = torch.optim.SGD(model.parameters(), lr=0.01)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    pool = batches(batch, gen)
    k = [0]

    def body(iters):
        for _ in range(iters):
            x, y = pool[k[0] % len(pool)]
            k[0] += 1
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()

    secs = measure(args.reps, args.seconds, body)
    row(workload=workload, mode="eager", batch=batch, threads=threads,
        samples_per_s=batch / secs, peak_rss_mb=peak_rss_mb())


def gemm_row(n, threads, args):
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=gen)
    b = torch.randn(n, n, generator=gen)

    def body(iters):
        for _ in range(iters):
            torch.matmul(a, b)

    secs = measure(args.reps, args.seconds, body)
    row(workload="gemm", n=n, threads=threads, gflops=2.0 * n**3 / secs / 1e9)


def infer_row(threads, args):
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    model = mnist_mlp()
    pool = batches(1024, gen)
    k = [0]

    def body(iters):
        with torch.no_grad():
            for _ in range(iters):
                model(pool[k[0] % len(pool)][0])
                k[0] += 1

    secs = measure(args.reps, args.seconds, body)
    row(workload="infer", mode="eager", batch=1024, threads=threads,
        samples_per_s=1024 / secs, peak_rss_mb=peak_rss_mb())


def find_idx(data_dir, name):
    for folder in (data_dir, os.path.join(data_dir, "mnist")):
        for candidate in (name + ".gz", name):
            path = os.path.join(folder, candidate)
            if os.path.exists(path):
                return path
    raise SystemExit(f"error: --data-dir: {name}(.gz) not found in {data_dir} or {data_dir}/mnist")


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    magic, = struct.unpack(">I", data[:4])
    rank = magic & 0xFF
    dims = struct.unpack(">" + "I" * rank, data[4:4 + 4 * rank])
    return torch.frombuffer(bytearray(data[4 + 4 * rank:]), dtype=torch.uint8).reshape(dims)


def epoch_row(threads, args):
    if not args.data_dir:
        raise SystemExit("error: --data-dir: the epoch workload reads MNIST's IDX files")
    start = time.perf_counter()
    images = read_idx(find_idx(args.data_dir, "train-images-idx3-ubyte"))
    labels = read_idx(find_idx(args.data_dir, "train-labels-idx1-ubyte")).long()
    x_all = images.reshape(images.shape[0], -1).float() / 255.0
    mean, std = x_all.mean(), x_all.std()
    x_all = (x_all - mean) / std
    torch.manual_seed(0)
    model = mnist_mlp()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    order = torch.randperm(x_all.shape[0])
    total, seen = 0.0, 0
    for i in range(0, x_all.shape[0], 128):
        idx = order[i:i + 128]
        x, y = x_all[idx], labels[idx]
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        total += loss.item() * len(idx)
        seen += len(idx)
    seconds = time.perf_counter() - start
    row(workload="epoch", mode="eager", batch=128, threads=threads, seconds=seconds,
        samples=seen, mean_loss=total / seen, peak_rss_mb=peak_rss_mb())


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workload", type=csv(str), default=["mlp-sgd"])
    p.add_argument("--batch", type=csv(int), default=[1, 32, 128, 1024])
    p.add_argument("--threads", type=csv(int), default=[1, 2])
    p.add_argument("--n", type=csv(int), default=[256, 512, 1024, 2048])
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--seconds", type=float, default=0.3)
    p.add_argument("--data-dir")
    p.add_argument("--keep-denormals", action="store_true")
    args = p.parse_args()
    global FLUSH
    FLUSH = not args.keep_denormals
    torch.set_flush_denormal(FLUSH)
    known = {"gemm", "mlp-sgd", "mlp-adam", "infer", "epoch"}
    for w in args.workload:
        if w not in known:
            raise SystemExit(f"error: --workload: unknown workload {w!r}; expected {sorted(known)}")
    torch.set_num_interop_threads(1)
    for threads in args.threads:
        torch.set_num_threads(threads)
        for w in args.workload:
            if w == "gemm":
                for n in args.n:
                    gemm_row(n, threads, args)
            elif w == "infer":
                reset_peak_rss()
                infer_row(threads, args)
            elif w == "epoch":
                reset_peak_rss()
                epoch_row(threads, args)
            else:
                for batch in args.batch:
                    reset_peak_rss()
                    train_row(w, batch, threads, args)


if __name__ == "__main__":
    main()
