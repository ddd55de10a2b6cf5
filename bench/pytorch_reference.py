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
- cnn-lenet: the MNIST-shaped LeNet-5 training step on [B, 1, 28, 28]: conv 5x5 (6, padding 2)
  -> ReLU -> max pool 2 -> conv 5x5 (16) -> ReLU -> max pool 2 -> flatten (400) -> 120 -> ReLU
  -> 84 -> ReLU -> 10, mean softmax cross-entropy, SGD (lr 0.01, momentum 0.9); zero_grad,
  forward, backward and update; inputs N(0, 1) and uniform labels from a rotating pool of 16
  batches. Batches 64 and 256 unless --batch is given.
- cnn-cifar: the same step for a plain CNN on [B, 3, 32, 32]: three stages of 32, 64 and 128
  channels, each conv 3x3 (padding 1, no bias) -> BatchNorm2d -> ReLU -> max pool 2, then
  global average pooling and a linear 128 -> 10; same loss, optimizer and input pool; the
  model in training mode (batch statistics, running statistics updated). Batch 128 unless
  --batch is given.
- epoch-lenet: one MNIST epoch of LeNet-5 as in cnn-lenet (same optimizer), read and
  normalised as in epoch, batch 128; wall seconds and peak resident memory, as epoch.

Convolutions and pooling are the PyTorch modules with their defaults (NCHW, f32, parameters
initialised by torch.manual_seed(0)).

Each figure is the median of --reps timed repetitions after a warm-up, each repetition sized
to about --seconds. Threads are set with torch.set_num_threads (intra-op) and
torch.set_num_interop_threads(1). Subnormal floats are flushed to zero
(torch.set_flush_denormal(True)) as `ferrograd-bench` does, unless --keep-denormals.

    python bench/pytorch_reference.py --workload mlp-sgd --batch 1,32 --threads 1,2
    python bench/pytorch_reference.py --workload cnn-lenet --batch 64 --threads 2
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


def lenet():
    """LeNet-5 for [B, 1, 28, 28] inputs (the first convolution pads by 2, as for 32 x 32)."""
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 6, 5, padding=2),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(6, 16, 5),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(400, 120),
        torch.nn.ReLU(),
        torch.nn.Linear(120, 84),
        torch.nn.ReLU(),
        torch.nn.Linear(84, 10),
    )


def cifar_cnn():
    """Three conv 3x3 (no bias: batch norm follows) -> batch norm -> ReLU -> max pool 2 stages
    (32, 64, 128 channels), global average pooling, linear 128 -> 10, for [B, 3, 32, 32]
    inputs: ferrograd's plain CNN."""
    layers, c = [], 3
    for width in (32, 64, 128):
        layers += [
            torch.nn.Conv2d(c, width, 3, padding=1, bias=False),
            torch.nn.BatchNorm2d(width),
            torch.nn.ReLU(),
            torch.nn.MaxPool2d(2),
        ]
        c = width
    layers += [torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(128, 10)]
    return torch.nn.Sequential(*layers)


# Input shape (per sample) of each training-step workload.
INPUT_SHAPE = {
    "mlp-sgd": (784,),
    "mlp-adam": (784,),
    "cnn-lenet": (1, 28, 28),
    "cnn-cifar": (3, 32, 32),
}

# Batch sizes when --batch is not given.
DEFAULT_BATCHES = {"cnn-lenet": [64, 256], "cnn-cifar": [128]}
MLP_BATCHES = [1, 32, 128, 1024]


def batches(batch, gen, shape=(784,)):
    return [
        (torch.randn(batch, *shape, generator=gen), torch.randint(0, 10, (batch,), generator=gen))
        for _ in range(16)
    ]


def train_row(workload, batch, threads, args):
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    if workload == "cnn-lenet":
        model = lenet()
    elif workload == "cnn-cifar":
        model = cifar_cnn()
    else:
        model = mnist_mlp()
    model.train()
    if workload == "mlp-sgd":
        opt = torch.optim.SGD(model.parameters(), lr=0.01)
    elif workload.startswith("cnn-"):
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    pool = batches(batch, gen, INPUT_SHAPE[workload])
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


def epoch_row(threads, args, workload="epoch"):
    """One MNIST epoch: the MLP with Adam (epoch) or LeNet-5 with SGD and momentum
    (epoch-lenet), loading and normalisation included."""
    if not args.data_dir:
        raise SystemExit(f"error: --data-dir: the {workload} workload reads MNIST's IDX files")
    start = time.perf_counter()
    images = read_idx(find_idx(args.data_dir, "train-images-idx3-ubyte"))
    labels = read_idx(find_idx(args.data_dir, "train-labels-idx1-ubyte")).long()
    x_all = images.reshape(images.shape[0], -1).float() / 255.0
    mean, std = x_all.mean(), x_all.std()
    x_all = (x_all - mean) / std
    torch.manual_seed(0)
    if workload == "epoch-lenet":
        x_all = x_all.reshape(-1, 1, 28, 28)
        model = lenet()
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    else:
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
    row(workload=workload, mode="eager", batch=128, threads=threads, seconds=seconds,
        samples=seen, mean_loss=total / seen, peak_rss_mb=peak_rss_mb())


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workload", type=csv(str), default=["mlp-sgd"])
    p.add_argument(
        "--batch",
        type=csv(int),
        help="batch sizes of the training-step workloads (default: 1,32,128,1024 for the MLP, "
        "64,256 for cnn-lenet, 128 for cnn-cifar)",
    )
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
    known = {"gemm", "mlp-sgd", "mlp-adam", "infer", "epoch", "cnn-lenet", "cnn-cifar",
             "epoch-lenet"}
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
            elif w in ("epoch", "epoch-lenet"):
                reset_peak_rss()
                epoch_row(threads, args, w)
            else:
                for batch in args.batch or DEFAULT_BATCHES.get(w, MLP_BATCHES):
                    reset_peak_rss()
                    train_row(w, batch, threads, args)


if __name__ == "__main__":
    main()
