#!/usr/bin/env python3
"""Loads a ferrograd checkpoint in PyTorch and checks that the logits agree.

`ferrograd train --out DIR` writes its checkpoint into DIR/checkpoint/: config.json (the
architecture), model.safetensors (parameters and buffers named like PyTorch's nn.Sequential:
layers.0.weight, layers.0.bias, layers.1.running_mean, ...) and sample_logits.safetensors (a
batch of normalised test inputs and ferrograd's logits), all of the same run. This script rebuilds the same network (MLP, softmax
regression, LeNet-5 or the plain CNN) as a torch.nn.Sequential, loads the weights and buffers
with `safetensors.torch.load_file` (strictly: every name, shape and dtype must match), runs
the batch in evaluation mode (batch norm with its running statistics) and compares the
logits.

Usage (needs torch and safetensors, e.g. `pip install torch safetensors`):

    python3 scripts/check_pytorch_checkpoint.py runs/latest

Exit status 0 when the logits match within 1e-4, 1 otherwise.
"""
import json
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file


class Maxout(torch.nn.Module):
    """Maximum over groups of k consecutive features (ferrograd's maxout)."""

    def __init__(self, k):
        super().__init__()
        self.k = k

    def forward(self, x):
        return x.reshape(*x.shape[:-1], x.shape[-1] // self.k, self.k).amax(-1)


def activation(spec):
    name, _, param = spec.partition(":")
    table = {
        "identity": lambda: torch.nn.Identity(),
        "sigmoid": lambda: torch.nn.Sigmoid(),
        "tanh": lambda: torch.nn.Tanh(),
        "hard-sigmoid": lambda: torch.nn.Hardsigmoid(),
        "hard-tanh": lambda: torch.nn.Hardtanh(),
        "relu": lambda: torch.nn.ReLU(),
        "leaky-relu": lambda: torch.nn.LeakyReLU(float(param or 0.01)),
        "elu": lambda: torch.nn.ELU(float(param or 1.0)),
        "softplus": lambda: torch.nn.Softplus(),
        "silu": lambda: torch.nn.SiLU(),
        "gelu": lambda: torch.nn.GELU(),
        "gelu-tanh": lambda: torch.nn.GELU(approximate="tanh"),
        "prelu": lambda: torch.nn.PReLU(),
        "maxout": lambda: Maxout(int(param or 2)),
    }
    if name not in table:
        raise SystemExit(f"unknown activation {spec!r} in config.json")
    return table[name]()


def mlp(cfg):
    pieces = int(cfg["activation"].partition(":")[2] or 2) if cfg["activation"].startswith("maxout") else 1
    layers, width = [], cfg["input"]
    for h in cfg["hidden"]:
        layers.append(torch.nn.Linear(width, h * pieces))
        layers.append(activation(cfg["activation"]))
        if cfg["dropout"] > 0:
            layers.append(torch.nn.Dropout(cfg["dropout"]))
        width = h
    layers.append(torch.nn.Linear(width, cfg["output"]))
    return layers


def lenet(cfg):
    """LeNet-5, modern form; the first convolution pads images under 32x32 by 2."""
    nn = torch.nn
    c, h, w = cfg["image"]
    pad = 2 if min(h, w) < 32 else 0
    size = lambda s: ((s + 2 * pad - 4) // 2 - 4) // 2
    return [
        nn.Conv2d(c, 6, 5, padding=pad), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * size(h) * size(w), 120), nn.ReLU(),
        nn.Linear(120, 84), nn.ReLU(),
        nn.Linear(84, cfg["output"]),
    ]


def cnn(cfg):
    """Per stage: (conv 3x3 pad 1 without bias, batch norm, ReLU) x convs, max pool 2; then
    global average pooling, flatten, linear."""
    nn = torch.nn
    layers, width = [], cfg["image"][0]
    for channels in cfg["channels"]:
        for _ in range(cfg.get("convs_per_stage", 1)):
            layers += [nn.Conv2d(width, channels, 3, padding=1, bias=False),
                       nn.BatchNorm2d(channels), nn.ReLU()]
            width = channels
        layers.append(nn.MaxPool2d(2))
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, cfg["output"])]
    return layers


class Net(torch.nn.Module):
    def __init__(self, cfg):
        super().__init__()
        builders = {"mlp": mlp, "logistic": mlp, "lenet": lenet, "cnn": cnn}
        if cfg["model"] not in builders:
            raise SystemExit(f"unknown model {cfg['model']!r} in config.json")
        self.layers = torch.nn.Sequential(*builders[cfg["model"]](cfg))

    def forward(self, x):
        return self.layers(x)


def main():
    run = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/latest")
    if (run / "checkpoint" / "MANIFEST").is_file():
        run = run / "checkpoint"
    cfg = json.loads((run / "config.json").read_text())
    net = Net(cfg)
    state = load_file(str(run / "model.safetensors"))
    net.load_state_dict(state, strict=True)
    net.eval()
    sample = load_file(str(run / "sample_logits.safetensors"))
    with torch.no_grad():
        logits = net(sample["inputs"])
    diff = (logits - sample["logits"]).abs().max().item()
    agree = (logits.argmax(-1) == sample["logits"].argmax(-1)).float().mean().item()
    print(f"{run}: {len(state)} tensors loaded into torch.nn.Sequential; "
          f"{sample['inputs'].shape[0]} samples, max |logit difference| = {diff:.3e}, "
          f"predictions agree on {agree * 100:.0f}%")
    if diff > 1e-4:
        print("MISMATCH")
        sys.exit(1)
    print("OK")


if __name__ == "__main__":
    main()
