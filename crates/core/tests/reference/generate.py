#!/usr/bin/env python3
"""Generates PyTorch reference values for ferrograd's `tests/torch_reference.rs`.

What it writes: `torch_reference.json`, next to this script. For every case it stores the
inputs (name, dtype, shape, row-major values), the forward output of the PyTorch op, a fixed
weight tensor `w` of the output's shape, and the gradients of `(out * w).sum()` with respect
to every float input. Integer inputs (class labels) are stored but get no gradient.

Everything is computed in float64, on the CPU, from fixed inputs: a seeded `torch.Generator`
draws them and they are rounded to two decimals, so the stored inputs are short and exact
to read back. Outputs and gradients are written with Python's shortest round-trip `repr` of
each float64. The Rust test rebuilds each case from ferrograd ops by `name`; a case added
here needs a matching one-line entry in the table of `torch_reference.rs` (the test fails
otherwise).

How to rerun (from the repository root; any Python with torch installed):

    /path/to/python crates/core/tests/reference/generate.py

e.g. `/work/.torchenv/bin/python crates/core/tests/reference/generate.py`. The output is
deterministic for a given torch version; commit the regenerated JSON together with any change
to this script. Generated with torch 2.15 (the exact version is recorded in the JSON).
"""

import json
import math
from pathlib import Path

import torch
import torch.nn.functional as F

SEED = 20240601
OUT = Path(__file__).resolve().parent / "torch_reference.json"

torch.set_default_dtype(torch.float64)
gen = torch.Generator().manual_seed(SEED)


def uniform(shape, lo, hi):
    """Seeded uniform values in [lo, hi), rounded to two decimals (exact in the JSON)."""
    x = torch.rand(shape, generator=gen, dtype=torch.float64) * (hi - lo) + lo
    return torch.round(x * 100) / 100


def labels(n, classes):
    return torch.randint(0, classes, (n,), generator=gen, dtype=torch.int64)


def gelu_tanh(x):
    return F.gelu(x, approximate="tanh")


def tensor_json(t):
    t = t.detach()
    values = t.reshape(-1).tolist()
    if t.dtype.is_floating_point:
        assert all(math.isfinite(v) for v in values), "non-finite reference value"
    return {"shape": list(t.shape), "values": values}


def case(name, expr, fn, inputs):
    """Runs `fn(*inputs)` and the backward of `(out * w).sum()` for a fresh fixed weight `w`.

    `inputs` is a list of (name, tensor); float tensors get gradients, int64 ones do not.
    """
    leaves = []
    for _, t in inputs:
        t = t.clone()
        if t.dtype.is_floating_point:
            assert t.dtype == torch.float64
            t.requires_grad_(True)
        leaves.append(t)
    out = fn(*leaves)
    w = uniform(tuple(out.shape), -1.0, 1.0)
    (out * w).sum().backward()
    entry = {
        "name": name,
        "expr": expr,
        "inputs": [
            {"name": n, "dtype": str(t.dtype).removeprefix("torch."), **tensor_json(t)}
            for (n, _), t in zip(inputs, leaves)
        ],
        "weight": tensor_json(w),
        "output": tensor_json(out),
        "grads": {
            n: tensor_json(t.grad)
            for (n, _), t in zip(inputs, leaves)
            if t.dtype.is_floating_point
        },
    }
    return entry


def no_ties(x, dim):
    """Asserts that the maximum along `dim` is unique (so max's gradient is unambiguous)."""
    top2 = torch.topk(x, 2, dim=dim).values
    assert bool((top2.select(dim, 0) != top2.select(dim, 1)).all()), "tie in max case"
    return x


def build_cases():
    cases = []
    x = uniform((2, 3), -3.0, 3.0)
    cases.append(case("sigmoid", "torch.sigmoid(x)", torch.sigmoid, [("x", x)]))
    x = uniform((2, 3), -3.0, 3.0)
    cases.append(case("tanh", "torch.tanh(x)", torch.tanh, [("x", x)]))
    x = uniform((2, 3), -3.0, 3.0)
    x[0, 1] = 0.0  # relu'(0) is 0 in PyTorch
    cases.append(case("relu", "torch.relu(x)", torch.relu, [("x", x)]))
    x = uniform((2, 3), -3.0, 3.0)
    cases.append(case("exp", "torch.exp(x)", torch.exp, [("x", x)]))
    x = uniform((2, 3), 0.05, 4.0)
    cases.append(case("log", "torch.log(x), x > 0", torch.log, [("x", x)]))
    x = uniform((2, 3), 0.05, 4.0)
    cases.append(case("sqrt", "torch.sqrt(x), x > 0", torch.sqrt, [("x", x)]))
    x = uniform((2, 3), -3.0, 3.0)
    cases.append(case("erf", "torch.erf(x)", torch.erf, [("x", x)]))
    x = uniform((2, 3), -3.0, 3.0)
    cases.append(case("gelu_erf", "F.gelu(x)", F.gelu, [("x", x)]))
    x = uniform((2, 3), -3.0, 3.0)
    cases.append(case("gelu_tanh", "F.gelu(x, approximate='tanh')", gelu_tanh, [("x", x)]))

    x = uniform((3, 5), -3.0, 3.0)
    cases.append(
        case("softmax_last", "torch.softmax(x, -1)", lambda t: torch.softmax(t, -1), [("x", x)])
    )
    x = uniform((3, 5), -3.0, 3.0)
    cases.append(
        case(
            "log_softmax_last",
            "torch.log_softmax(x, -1)",
            lambda t: torch.log_softmax(t, -1),
            [("x", x)],
        )
    )

    logits, y = uniform((4, 5), -3.0, 3.0), labels(4, 5)
    cases.append(
        case(
            "cross_entropy_none",
            "F.cross_entropy(logits, labels, reduction='none')",
            lambda a, b: F.cross_entropy(a, b, reduction="none"),
            [("logits", logits), ("labels", y)],
        )
    )
    logits, y = uniform((4, 5), -3.0, 3.0), labels(4, 5)
    cases.append(
        case(
            "cross_entropy_mean",
            "F.cross_entropy(logits, labels)",
            F.cross_entropy,
            [("logits", logits), ("labels", y)],
        )
    )

    a, b = uniform((3, 4), -2.0, 2.0), uniform((4, 2), -2.0, 2.0)
    cases.append(case("matmul_2d", "a @ b", torch.matmul, [("a", a), ("b", b)]))
    a, b = uniform((2, 3, 4), -2.0, 2.0), uniform((4, 5), -2.0, 2.0)
    cases.append(
        case("matmul_batched_broadcast", "a @ b", torch.matmul, [("a", a), ("b", b)])
    )

    x = uniform((3, 4), -3.0, 3.0)
    cases.append(
        case("mean_dim1", "x.mean(dim=1)", lambda t: t.mean(dim=1), [("x", x)])
    )
    x = no_ties(uniform((3, 4), -3.0, 3.0), 0)
    cases.append(
        case("max_dim0", "torch.amax(x, dim=0)", lambda t: torch.amax(t, dim=0), [("x", x)])
    )
    # Tied maxima: amax shares the gradient evenly between them.
    x = uniform((2, 4), -3.0, 3.0)
    x[0, 3] = x[0, 1] = x[0].max()
    cases.append(
        case(
            "max_dim1_ties",
            "torch.amax(x, dim=1), row 0 has a tie",
            lambda t: torch.amax(t, dim=1),
            [("x", x)],
        )
    )
    names = [c["name"] for c in cases]
    assert len(names) == len(set(names)), "duplicate case name"
    return cases


def main():
    cases = build_cases()
    meta = {
        "generator": "crates/core/tests/reference/generate.py",
        "torch_version": torch.__version__,
        "seed": SEED,
        "dtype": "float64",
        "loss": "(out * weight).sum(); grads are d loss / d input",
    }
    dump = lambda v: json.dumps(v, allow_nan=False, separators=(",", ":"))
    # One case per line: small, diffable, and still plain JSON.
    lines = ",\n".join("  " + dump(c) for c in cases)
    text = '{"meta":' + dump(meta) + ',\n"cases":[\n' + lines + "\n]}\n"
    json.loads(text)  # sanity check
    OUT.write_text(text)
    print(f"wrote {len(cases)} cases, {len(text)} bytes to {OUT}")


if __name__ == "__main__":
    main()
