#!/usr/bin/env python3
"""Generates `special_points.json`, the PyTorch values of `tests/special_points.rs`.

For every op, at the special points of its domain (0, +-1, +-inf, NaN, the kinks of piecewise
functions, saturation, ties), in float64 through PyTorch's public API: the forward value, the
gradient of `out.sum()` with respect to each float input, and, for ops of one input, the
second derivative (the gradient of `grad.sum()`, `null` where PyTorch has none). Values are
stored as numbers, or as the strings "inf", "-inf" and "nan" (JSON has no such numbers). The
Rust test rebuilds each case from ferrograd ops by `name`.

How to rerun (from the repository root; any Python with torch installed):

    /path/to/python crates/nn/tests/reference/special_points.py

The output is deterministic for a given torch version (recorded in the file); generated with
torch 2.15. Commit the JSON together with any change to this script.
"""

import json
import math
from pathlib import Path

import torch
import torch.nn.functional as F

OUT = Path(__file__).resolve().parent / "special_points.json"
torch.set_default_dtype(torch.float64)
INF, NAN = math.inf, math.nan

# Points every function of one input is evaluated at.
COMMON = [0.0, 1.0, -1.0, INF, -INF, NAN, 0.5, -2.5, 40.0, -40.0, 800.0, -800.0]


def enc(v):
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return v


def values(t):
    return [enc(v) for v in t.detach().reshape(-1).tolist()]


def unary(name, fn, extra=(), second=True):
    xs = COMMON + list(extra)
    x = torch.tensor(xs, requires_grad=True)
    y = fn(x)
    (g,) = torch.autograd.grad(y.sum(), x, create_graph=second)
    case = {"name": name, "inputs": [values(x)], "out": values(y), "grads": [values(g)]}
    if second and g.requires_grad:
        try:
            (g2,) = torch.autograd.grad(g.sum(), x, allow_unused=True)
        except RuntimeError:  # "derivative for ... is not implemented"
            case["second"] = None
            return case
        if g2 is None or g2._is_zerotensor():
            # No dependence (or PyTorch's lazy zero tensor): the second derivative is 0.
            case["second"] = [0.0] * len(xs)
        else:
            case["second"] = values(g2)
    else:
        case["second"] = None
    return case


def binary(name, fn, pairs):
    a = torch.tensor([p[0] for p in pairs], requires_grad=True)
    b = torch.tensor([p[1] for p in pairs], requires_grad=True)
    y = fn(a, b)
    ga, gb = torch.autograd.grad(y.sum(), (a, b), allow_unused=True)
    zeros = [0.0] * len(pairs)
    return {
        "name": name,
        "inputs": [values(a), values(b)],
        "out": values(y),
        "grads": [values(ga) if ga is not None else zeros, values(gb) if gb is not None else zeros],
        "second": None,
    }


def rows(name, fn, data):
    """An op over the last axis of a [rows, k] input (reductions, softmax)."""
    x = torch.tensor(data, requires_grad=True)
    y = fn(x)
    (g,) = torch.autograd.grad(y.sum(), x)
    return {"name": name, "inputs": [values(x)], "shape": list(x.shape), "out": values(y),
            "grads": [values(g)], "second": None}


SPECIAL = [0.0, 1.0, -1.0, INF, -INF, NAN]
PAIRS = [(a, b) for a in SPECIAL for b in SPECIAL] + [(2.0, 2.0), (0.5, -3.0), (-2.0, 0.5)]
PROB_PAIRS = [(p, t) for p in [0.0, 1.0, 0.5, 1e-13, 1 - 1e-13] for t in [0.0, 1.0, 0.3]]
ROWS = [[0.0, 0.0, 0.0], [1.0, 1.0, -1.0], [INF, 0.0, 1.0], [-INF, 0.0, 1.0], [-INF, -INF, -INF],
        [NAN, 0.0, 1.0], [1000.0, -1000.0, 999.0], [INF, INF, 0.0], [2.0, 2.0, 2.0]]


def cases():
    out = [
        unary("neg", torch.neg),
        unary("exp", torch.exp),
        unary("expm1", torch.expm1),
        unary("log", torch.log, [1e-300]),
        unary("log1p", torch.log1p, [-0.999999]),
        unary("sqrt", torch.sqrt, [1e-300]),
        unary("abs", torch.abs),
        unary("tanh", torch.tanh),
        unary("sigmoid", torch.sigmoid),
        unary("relu", torch.relu),
        unary("recip", torch.reciprocal),
        unary("erf", torch.erf),
        unary("sin", torch.sin),
        unary("cos", torch.cos),
        unary("square", torch.square),
        unary("powf_0", lambda x: torch.pow(x, 0.0)),
        unary("powf_1", lambda x: torch.pow(x, 1.0)),
        unary("powf_3", lambda x: torch.pow(x, 3.0)),
        unary("powf_half", lambda x: torch.pow(x, 0.5)),
        unary("powf_neg1", lambda x: torch.pow(x, -1.0)),
        unary("clamp", lambda x: torch.clamp(x, -1.0, 1.0), [0.999, -0.999]),
        unary("hard_tanh", F.hardtanh, [0.999]),
        unary("hard_sigmoid", F.hardsigmoid, [3.0, -3.0, 2.999]),
        unary("leaky_relu", lambda x: F.leaky_relu(x, 0.1)),
        unary("elu", F.elu),
        unary("softplus", F.softplus, [20.0, -20.0, 21.0]),
        unary("silu", F.silu),
        unary("gelu", F.gelu),
        unary("gelu_tanh", lambda x: F.gelu(x, approximate="tanh")),
        binary("add", torch.add, PAIRS),
        binary("sub", torch.sub, PAIRS),
        binary("mul", torch.mul, PAIRS),
        binary("div", torch.div, PAIRS),
        binary("pow", torch.pow, PAIRS),
        binary("maximum", torch.maximum, PAIRS),
        binary("minimum", torch.minimum, PAIRS),
        binary("binary_cross_entropy",
               lambda p, t: F.binary_cross_entropy(p, t, reduction="none"), PROB_PAIRS),
        binary("bce_with_logits",
               lambda x, t: F.binary_cross_entropy_with_logits(x, t, reduction="none"),
               [(x, t) for x in [0.0, 1.0, -1.0, 40.0, -40.0, 800.0, -800.0] for t in [0.0, 1.0, 0.3]]),
        rows("sum", lambda x: x.sum(-1), ROWS),
        rows("amax", lambda x: x.amax(-1), ROWS),
        rows("amin", lambda x: x.amin(-1), ROWS),
        rows("logsumexp", lambda x: torch.logsumexp(x, -1), ROWS),
        rows("softmax", lambda x: torch.softmax(x, -1), ROWS),
        rows("log_softmax", lambda x: torch.log_softmax(x, -1), ROWS),
    ]
    return out


def main():
    data = {"meta": {"torch": torch.__version__, "dtype": "float64"}, "cases": cases()}
    OUT.write_text(json.dumps(data, indent=None, separators=(",", ":")) + "\n")
    print(f"wrote {OUT} ({len(data['cases'])} cases)")


if __name__ == "__main__":
    main()
