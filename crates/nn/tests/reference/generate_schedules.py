#!/usr/bin/env python3
"""Generates PyTorch reference learning rates for ferrograd-nn's `tests/schedules.rs`.

What it writes: `schedules_reference.json`, next to this script, with two sections:

- `plateau`: `ReduceLROnPlateau` (mode `min`, threshold mode `rel`) stepped once per epoch
  with a fixed curve of validation losses (`losses`); `lrs[e]` is the rate used in epoch `e`,
  i.e. after `e` calls of `scheduler.step(losses[i])`.
- `one_cycle`: `OneCycleLR` (cosine annealing, two phases, `cycle_momentum=False` since
  ferrograd does not cycle momentum) over `epochs * steps_per_epoch` steps; `lrs[k]` is the
  rate of step `k`, i.e. after `k` calls of `scheduler.step()`.

Each case stores its settings by the names ferrograd's parser takes. How to rerun (from the
repository root; any Python with torch installed):

    /path/to/python crates/nn/tests/reference/generate_schedules.py

Generated with torch 2.15 (the exact version is recorded in the JSON).
"""

import json
from pathlib import Path

import torch

OUT = Path(__file__).resolve().parent / "schedules_reference.json"

# A validation curve that improves, stalls, improves by less than the threshold, and stalls.
LOSSES = [1.0, 0.8, 0.7, 0.7, 0.71, 0.69, 0.69, 0.68999, 0.7, 0.7, 0.7, 0.65, 0.66, 0.66, 0.66,
          0.66, 0.66, 0.66, 0.66, 0.66]


def optimizer(lr):
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)


def plateau(name, lr, factor, patience, threshold, cooldown, min_lr):
    opt = optimizer(lr)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
        opt, mode="min", factor=factor, patience=patience, threshold=threshold,
        threshold_mode="rel", cooldown=cooldown, min_lr=min_lr)
    lrs = []
    for loss in LOSSES:
        lrs.append(opt.param_groups[0]["lr"])
        sched.step(loss)
    lrs.append(opt.param_groups[0]["lr"])
    return {"name": name, "lr": lr, "factor": factor, "patience": patience,
            "threshold": threshold, "cooldown": cooldown, "min_lr": min_lr,
            "losses": LOSSES, "lrs": lrs}


def one_cycle(name, lr, epochs, steps_per_epoch, pct_start, div_factor, final_div_factor):
    opt = optimizer(lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=lr, epochs=epochs, steps_per_epoch=steps_per_epoch, pct_start=pct_start,
        anneal_strategy="cos", cycle_momentum=False, div_factor=div_factor,
        final_div_factor=final_div_factor, three_phase=False)
    lrs = []
    for _ in range(epochs * steps_per_epoch):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return {"name": name, "lr": lr, "epochs": epochs, "steps_per_epoch": steps_per_epoch,
            "pct_start": pct_start, "div_factor": div_factor,
            "final_div_factor": final_div_factor, "lrs": lrs}


def main():
    data = {
        "meta": {"generator": "crates/nn/tests/reference/generate_schedules.py",
                 "torch_version": torch.__version__},
        "plateau": [
            plateau("defaults_patience_2", 0.1, 0.1, 2, 1e-4, 0, 0.0),
            plateau("half_patience_1_cooldown_2", 0.5, 0.5, 1, 1e-4, 2, 0.0),
            plateau("min_lr", 1.0, 0.1, 0, 1e-4, 0, 0.005),
            plateau("coarse_threshold", 0.3, 0.5, 1, 0.05, 0, 0.0),
        ],
        "one_cycle": [
            one_cycle("defaults", 0.1, 5, 7, 0.3, 25.0, 1e4),
            one_cycle("short_rise", 1.0, 3, 10, 0.1, 10.0, 100.0),
            one_cycle("per_epoch", 0.01, 12, 1, 0.25, 25.0, 1e4),
        ],
    }
    OUT.write_text(json.dumps(data, indent=1) + "\n")


if __name__ == "__main__":
    main()
