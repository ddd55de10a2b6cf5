#!/usr/bin/env python3
"""Turns benchmark rows (JSON lines from `ferrograd-bench --json` and
bench/pytorch_reference.py) into a markdown table of ferrograd / PyTorch ratios, and, where
rows of the Rust peers (bench/peers: "candle", "burn") are present, a second table of
ferrograd / peer ratios.

Each figure is the median over the rounds of the per-round medians. ferrograd's eager and static
rows are both compared with PyTorch's eager row of the same workload, size and thread count.
The targets (2-thread rows) are those of the performance plan: W-MLP static 6x / 3x / 2x / 1.3x
at batch 1 / 32 / 128 / 1024, eager 1.5x up to batch 128 and 1.0x at 1024; W-GEMM 0.9x at
n >= 512; W-INFER 1.2x; W-EPOCH 1.5x faster with at most a third of the peak memory;
cnn-lenet static 2x and eager 1.3x at batch 64, 1.2x at batch 256; cnn-cifar 1.0x; epoch-lenet
2x faster with at most a third of the peak memory.

    python3 bench/ratio_table.py rows.jsonl --cpu "..." --versions "..." --out table.md
"""

import argparse
import datetime
import json
import os
import statistics
import sys
from collections import defaultdict

METRIC = {"gemm": "gflops", "epoch": "seconds", "epoch-lenet": "seconds"}
# Workloads measured in wall seconds per epoch, with peak memory.
EPOCHS = {"epoch", "epoch-lenet"}
UNIT = {"gflops": "GFLOP/s", "seconds": "s", "samples_per_s": "samples/s"}


def metric_of(workload):
    return METRIC.get(workload, "samples_per_s")


def unit_of(workload):
    return UNIT[metric_of(workload)]


def target(workload, mode, size, threads):
    """The ratio a row must reach (ferrograd / PyTorch; for epoch, the speed-up), or None."""
    if threads != 2:
        return None
    if workload in ("mlp-sgd", "mlp-adam"):
        if mode == "static":
            return {1: 6.0, 32: 3.0, 128: 2.0, 1024: 1.3}.get(size)
        return 1.0 if size >= 1024 else 1.5
    if workload == "gemm":
        return 0.9 if size >= 512 else None
    if workload == "infer":
        return 1.2
    if workload == "epoch":
        return 1.5
    if workload == "cnn-lenet":
        if size >= 256:
            return 1.2
        return 2.0 if mode == "static" else 1.3
    if workload == "cnn-cifar":
        return 1.0
    if workload == "epoch-lenet":
        return 2.0
    return None


def load(path):
    rows = []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                sys.exit(f"error: {path}: line {number}: not JSON ({e})")
    return rows


def fmt(v):
    if v >= 100:
        return f"{v:,.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def table(rows, cpu, versions, rounds):
    groups = defaultdict(list)
    for r in rows:
        size = r.get("n", r.get("batch"))
        key = (r["system"], r["workload"], r.get("mode", "-"), size, r["threads"])
        groups[key].append(r)
    med = {k: statistics.median(r[metric_of(k[1])] for r in v) for k, v in groups.items()}
    mem = {
        k: statistics.median(r["peak_rss_mb"] for r in v)
        for k, v in groups.items()
        if all("peak_rss_mb" in r for r in v)
    }
    order = [
        "gemm", "mlp-sgd", "mlp-adam", "infer", "epoch", "cnn-lenet", "cnn-cifar", "epoch-lenet",
    ]
    lines = [
        f"Measured {datetime.date.today().isoformat()} on {cpu}; {versions}.",
        f"Medians over {rounds} alternating rounds (ferrograd, then PyTorch) of medians of"
        " timed repetitions; training-step workloads rotate through 16 pre-generated batches.",
        "Ratio: ferrograd / PyTorch for throughput (samples/s, GFLOP/s); for the epochs, PyTorch's"
        " seconds / ferrograd's (the speed-up) and memory as ferrograd / PyTorch.",
        "",
        "| workload | batch or n | threads | ferrograd mode | ferrograd | PyTorch | ratio | target | met |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    met_count = [0, 0]
    keys = sorted(
        (k for k in med if k[0] == "ferrograd"),
        key=lambda k: (order.index(k[1]) if k[1] in order else 99, k[4], k[3] or 0, k[2]),
    )
    for _, workload, mode, size, threads in keys:
        ours = med[("ferrograd", workload, mode, size, threads)]
        theirs_mode = "-" if workload == "gemm" else "eager"
        theirs = med.get(("pytorch", workload, theirs_mode, size, threads))
        unit = unit_of(workload)
        if theirs is None:
            ratio_s, goal_s, met_s = "no PyTorch row", "", ""
        else:
            ratio = theirs / ours if workload in EPOCHS else ours / theirs
            goal = target(workload, mode, size, threads)
            ratio_s = f"{ratio:.2f}x"
            goal_s = f">= {goal}x" if goal else ""
            met_s = ""
            if goal:
                ok = ratio >= goal
                met_count[0] += ok
                met_count[1] += 1
                met_s = "yes" if ok else "**no**"
        theirs_s = "" if theirs is None else f"{fmt(theirs)} {unit}"
        lines.append(
            f"| {workload} | {size} | {threads} | {mode} | {fmt(ours)} {unit} | {theirs_s} | {ratio_s} | {goal_s} | {met_s} |"
        )
        if workload in EPOCHS:
            ours_m = mem.get(("ferrograd", workload, mode, size, threads))
            theirs_m = mem.get(("pytorch", workload, "eager", size, threads))
            if ours_m and theirs_m:
                r = ours_m / theirs_m
                ok = r <= 1 / 3
                if threads == 2:
                    met_count[0] += ok
                    met_count[1] += 1
                lines.append(
                    f"| {workload} peak memory | {size} | {threads} | {mode} | {ours_m:.0f} MiB | {theirs_m:.0f} MiB | {r:.2f}x |"
                    f" {'<= 0.33x' if threads == 2 else ''} | {('yes' if ok else '**no**') if threads == 2 else ''} |"
                )
    # PyTorch rows of workloads that ferrograd did not measure (not yet in its benchmark).
    ours_sizes = {(k[1], k[3], k[4]) for k in med if k[0] == "ferrograd"}
    alone = sorted(
        (k for k in med if k[0] == "pytorch" and (k[1], k[3], k[4]) not in ours_sizes),
        key=lambda k: (order.index(k[1]) if k[1] in order else 99, k[4], k[3] or 0),
    )
    for key in alone:
        _, workload, _, size, threads = key
        lines.append(
            f"| {workload} | {size} | {threads} | | | {fmt(med[key])} {unit_of(workload)} | no ferrograd row | | |"
        )
    lines.append("")
    lines.append(f"Targets met: {met_count[0]} of {met_count[1]}.")
    lines += peer_table(med, order)
    return "\n".join(lines) + "\n"


PEERS = ["candle", "burn"]


def peer_table(med, order):
    """Lines of the ferrograd / Rust peer table (empty when no peer rows were measured)."""
    peers = [p for p in PEERS if any(k[0] == p for k in med)]
    if not peers:
        return []
    lines = [
        "",
        "Rust peers (eager; their rows alternate with the others in each round). Ratio: ferrograd"
        " (eager, then static) / peer.",
        "",
        "| workload | batch or n | threads | ferrograd eager | ferrograd static | "
        + " | ".join(peers)
        + " | "
        + " | ".join(f"ratio to {p}" for p in peers)
        + " |",
        "|---|---|---|---|---|" + "---|" * (2 * len(peers)),
    ]
    sizes = sorted(
        {(k[1], k[3], k[4]) for k in med if k[0] in peers},
        key=lambda k: (order.index(k[0]) if k[0] in order else 99, k[2], k[1] or 0),
    )
    for workload, size, threads in sizes:
        unit = unit_of(workload)
        modes = ["-"] if workload == "gemm" else ["eager", "static"]
        ours = [med.get(("ferrograd", workload, m, size, threads)) for m in modes]
        if workload == "gemm":
            ours.append(None)
        theirs = [med.get((p, workload, "-" if workload == "gemm" else "eager", size, threads)) for p in peers]
        cell = lambda v: "" if v is None else f"{fmt(v)} {unit}"
        ratio = lambda p: " / ".join(f"{o / p:.2f}x" for o in ours if o is not None and p)
        lines.append(
            f"| {workload} | {size} | {threads} | {cell(ours[0])} | {cell(ours[1])} | "
            + " | ".join(cell(t) for t in theirs)
            + " | "
            + " | ".join(ratio(t) for t in theirs)
            + " |"
        )
    return lines


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("rows")
    p.add_argument("--cpu", default="unknown CPU")
    p.add_argument("--versions", default="")
    p.add_argument("--rounds", default="?")
    p.add_argument("--out")
    args = p.parse_args()
    text = table(load(args.rows), args.cpu, args.versions, args.rounds)
    print(text)
    if args.out:
        os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
        tmp = args.out + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, args.out)


if __name__ == "__main__":
    main()
