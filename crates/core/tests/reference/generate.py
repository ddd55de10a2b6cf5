#!/usr/bin/env python3
"""Generates PyTorch reference values for ferrograd's `tests/torch_reference.rs`.

What it writes: `torch_reference.json`, next to this script, with three sections:

- `cases`: elementwise ops, softmax, cross-entropy, matmul and reductions. For every case it
  stores the inputs (name, dtype, shape, row-major values), the forward output of the PyTorch
  op, a fixed weight tensor `w` of the output's shape, and the gradients of `(out * w).sum()`
  with respect to every float input. Integer inputs (class labels) are stored but get no
  gradient.
- `cnn`: convolutions (`F.conv2d` with stride, padding, dilation, groups, depthwise, with and
  without bias; `F.conv1d`), pooling (`F.max_pool2d` with exact ties from integer-valued
  inputs, overlapping windows, padding and dilation; `F.avg_pool2d` with padding;
  `F.adaptive_avg_pool2d` with sizes that do not divide), `F.batch_norm` in training and
  evaluation, `F.layer_norm` and constant `F.pad`. Same format, except that each input also
  says whether it is differentiated (`grad`): running statistics are not.
- `batch_norm_running`: `nn.BatchNorm1d` / `nn.BatchNorm2d` modules run for several training
  steps (each step's input, output and running mean and variance after it), then once in
  evaluation mode.
- `api`: the everyday tensor ops: variance and standard deviation, product (with zeros),
  cumulative sum, sort, topk, max/min along an axis with ties, p-norms, rounding, tan and the
  inverse trigonometric functions, clamp with tensor bounds (with ties), masked_fill,
  tril/triu. Same format as `cases`.
- `jvp`: forward-mode derivatives from `torch.func.jvp`: each case stores float64 `inputs`,
  one `tangent` per input, the `output` and the Jacobian-vector product `jvp`. One case is a
  Hessian-vector product (`jvp` of `torch.func.grad`), forward over reverse.

Everything is computed in float64, on the CPU, from fixed inputs: a seeded `torch.Generator`
draws them and they are rounded to two decimals (or are small integers, for pooling ties), so
the stored inputs are short and exact to read back. Outputs and gradients are written with
Python's shortest round-trip `repr` of each float64. The Rust test rebuilds each case from
ferrograd ops by `name`; a case added here needs a matching one-line entry in the
corresponding table of `torch_reference.rs` (the test fails otherwise). New cases go at the
end of their section, and sections are drawn in order, so earlier cases keep their inputs.

How to rerun (from the repository root; any Python with torch installed):

    /path/to/python crates/core/tests/reference/generate.py [SECTION ...]

e.g. `/work/.torchenv/bin/python crates/core/tests/reference/generate.py cnn`. Naming sections
rewrites only those and keeps the others as stored: PyTorch's vectorised CPU kernels (softmax's
`exp`, for one) can move the last bit of a float64 between CPUs, so rewriting a section that
did not change only adds noise to the diff. The output is otherwise deterministic for a given
torch version; commit the regenerated JSON together with any change to this script. Generated
with torch 2.15 (the exact version is recorded in the JSON).
"""

import argparse
import json
import math
from pathlib import Path

import torch
import torch.nn.functional as F

SEED = 20240601
OUT = Path(__file__).resolve().parent / "torch_reference.json"
# The sections of the JSON, in the order they are drawn and written.
SECTIONS = ["cases", "cnn", "batch_norm_running", "api", "jvp"]

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


def integers(shape, lo, hi):
    """Seeded integer values in [lo, hi) as float64: windows of them hold exact ties."""
    return torch.randint(lo, hi, shape, generator=gen).to(torch.float64)


def flagged_case(name, expr, fn, inputs):
    """As `case`, but `inputs` is a list of (name, tensor, differentiate) and each stored input
    says whether it is differentiated (`grad`): running statistics, for instance, are not.
    """
    leaves = []
    for _, t, diff in inputs:
        t = t.clone()
        assert t.dtype in (torch.float64, torch.int64)
        if diff:
            t.requires_grad_(True)
        leaves.append(t)
    out = fn(*leaves)
    w = uniform(tuple(out.shape), -1.0, 1.0)
    (out * w).sum().backward()
    return {
        "name": name,
        "expr": expr,
        "inputs": [
            {
                "name": n,
                "dtype": str(t.dtype).removeprefix("torch."),
                "grad": diff,
                **tensor_json(t),
            }
            for (n, _, diff), t in zip(inputs, leaves)
        ],
        "weight": tensor_json(w),
        "output": tensor_json(out),
        "grads": {n: tensor_json(t.grad) for (n, _, diff), t in zip(inputs, leaves) if diff},
    }


def window_ties(x, kernel, stride, padding, dilation):
    """How many max-pooling windows of `x` [n, c, h, w] have a tied maximum."""
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
    n, c, h, w = x.shape
    ho = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    wo = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    ties = 0
    for i in range(ho):
        for j in range(wo):
            rows = [i * sh - ph + a * dh for a in range(kh)]
            cols = [j * sw - pw + b * dw for b in range(kw)]
            rows = [r for r in rows if 0 <= r < h]
            cols = [q for q in cols if 0 <= q < w]
            win = x[:, :, rows][:, :, :, cols].reshape(n, c, -1)
            top = win.max(dim=-1, keepdim=True).values
            ties += int(((win == top).sum(-1) > 1).sum())
    return ties


def pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def cnn_cases():
    """Convolution, pooling, padding and normalisation: forward values and gradients."""
    cases = []

    def conv(name, x_shape, w_shape, bias, stride=1, padding=0, dilation=1, groups=1):
        x = uniform(x_shape, -2.0, 2.0)
        w = uniform(w_shape, -1.0, 1.0)
        inputs = [("x", x, True), ("w", w, True)]
        if bias:
            inputs.append(("b", uniform((w_shape[0],), -1.0, 1.0), True))
        conv_fn = F.conv2d if len(x_shape) == 4 else F.conv1d
        fn_name = "F.conv2d" if len(x_shape) == 4 else "F.conv1d"
        expr = (
            f"{fn_name}(x, w, {'b' if bias else 'None'}, stride={stride}, "
            f"padding={padding}, dilation={dilation}, groups={groups})"
        )

        def fn(x, w, b=None):
            return conv_fn(x, w, b, stride=stride, padding=padding, dilation=dilation,
                           groups=groups)

        cases.append(flagged_case(name, expr, fn, inputs))

    conv("conv2d_plain", (2, 3, 5, 5), (4, 3, 3, 3), bias=True)
    conv("conv2d_plain_no_bias", (2, 3, 5, 5), (4, 3, 3, 3), bias=False)
    conv("conv2d_stride2_pad1", (2, 3, 7, 6), (4, 3, 3, 3), bias=True, stride=2, padding=1)
    # Stride 3 over 8 leaves the last row and column out of every window: zero gradient there.
    conv("conv2d_stride3_uncovered", (1, 2, 8, 8), (2, 2, 3, 3), bias=False, stride=3)
    conv(
        "conv2d_asymmetric",
        (2, 2, 6, 7),
        (3, 2, 3, 2),
        bias=True,
        stride=(2, 1),
        padding=(1, 2),
        dilation=(1, 2),
    )
    conv("conv2d_dilation2", (1, 2, 7, 7), (3, 2, 3, 3), bias=True, padding=2, dilation=2)
    conv("conv2d_groups2", (2, 4, 5, 5), (6, 2, 3, 3), bias=True, padding=1, groups=2)
    conv(
        "conv2d_depthwise",
        (2, 3, 6, 6),
        (3, 1, 3, 3),
        bias=True,
        stride=2,
        padding=1,
        groups=3,
    )
    conv("conv2d_depthwise_multiplier2", (1, 2, 5, 5), (4, 1, 3, 3), bias=False, groups=2)
    conv("conv2d_pointwise", (2, 5, 3, 4), (3, 5, 1, 1), bias=True)
    conv(
        "conv2d_all_options",
        (2, 4, 9, 8),
        (6, 2, 3, 3),
        bias=True,
        stride=2,
        padding=2,
        dilation=2,
        groups=2,
    )
    conv("conv2d_lenet_5x5_pad2", (2, 1, 8, 8), (3, 1, 5, 5), bias=True, padding=2)
    conv("conv1d_plain", (2, 3, 10), (4, 3, 3), bias=True, padding=1)
    conv(
        "conv1d_all_options",
        (2, 4, 11),
        (6, 2, 3),
        bias=False,
        stride=2,
        padding=2,
        dilation=2,
        groups=2,
    )

    def max_pool(name, x, kernel, stride=None, padding=0, dilation=1, min_ties=0):
        stride = kernel if stride is None else stride
        ties = window_ties(x, pair(kernel), pair(stride), pair(padding), pair(dilation))
        assert ties >= min_ties, f"{name}: {ties} tied windows, wanted at least {min_ties}"
        expr = (
            f"F.max_pool2d(x, {kernel}, stride={stride}, padding={padding}, "
            f"dilation={dilation})"
        )
        if ties:
            expr += f"; {ties} windows with a tied maximum"
        fn = lambda t: F.max_pool2d(t, kernel, stride=stride, padding=padding,
                                    dilation=dilation)
        cases.append(flagged_case(name, expr, fn, [("x", x, True)]))

    max_pool("max_pool2d_2x2", uniform((2, 3, 6, 6), -3.0, 3.0), 2)
    # Integer values from a small range: many windows hold their maximum more than once, and
    # overlapping windows (stride 1) that pick the same element add their gradients there.
    max_pool("max_pool2d_ties_overlap", integers((2, 2, 6, 6), 0, 3), 3, stride=1, min_ties=20)
    max_pool(
        "max_pool2d_ties_pad1_stride2",
        integers((1, 3, 7, 7), -2, 2),
        3,
        stride=2,
        padding=1,
        min_ties=10,
    )
    # All negative: the padding (minus infinity) must never be the maximum.
    max_pool(
        "max_pool2d_negative_pad1",
        uniform((2, 2, 5, 5), -3.0, -0.5),
        2,
        stride=2,
        padding=1,
    )
    max_pool(
        "max_pool2d_dilation2_ties",
        integers((1, 2, 7, 7), 0, 4),
        2,
        stride=1,
        dilation=2,
        min_ties=5,
    )
    max_pool(
        "max_pool2d_asymmetric",
        integers((2, 2, 7, 6), 0, 5),
        (3, 2),
        stride=(2, 1),
        padding=(1, 0),
        min_ties=5,
    )
    # A constant input: every window is one tie, resolved to its first element.
    max_pool(
        "max_pool2d_constant",
        torch.full((1, 1, 4, 5), 1.5),
        2,
        stride=1,
        min_ties=12,
    )

    def avg_pool(name, x, kernel, stride=None, padding=0):
        stride = kernel if stride is None else stride
        expr = f"F.avg_pool2d(x, {kernel}, stride={stride}, padding={padding})"
        fn = lambda t: F.avg_pool2d(t, kernel, stride=stride, padding=padding)
        cases.append(flagged_case(name, expr, fn, [("x", x, True)]))

    avg_pool("avg_pool2d_2x2", uniform((2, 3, 4, 6), -2.0, 2.0), 2)
    avg_pool("avg_pool2d_pad1_stride2", uniform((2, 2, 7, 6), -2.0, 2.0), 3, stride=2, padding=1)
    avg_pool(
        "avg_pool2d_asymmetric",
        uniform((1, 2, 5, 7), -2.0, 2.0),
        (2, 3),
        stride=(1, 2),
        padding=(1, 1),
    )

    def adaptive(name, x, out):
        expr = f"F.adaptive_avg_pool2d(x, {out})"
        fn = lambda t: F.adaptive_avg_pool2d(t, out)
        cases.append(flagged_case(name, expr, fn, [("x", x, True)]))

    adaptive("adaptive_avg_pool2d_5x7_to_3x4", uniform((2, 2, 5, 7), -2.0, 2.0), (3, 4))
    adaptive("adaptive_avg_pool2d_7x5_to_2x3", uniform((1, 3, 7, 5), -2.0, 2.0), (2, 3))
    adaptive("adaptive_avg_pool2d_global", uniform((2, 3, 5, 6), -2.0, 2.0), (1, 1))
    adaptive("adaptive_avg_pool2d_3x3_to_4x5", uniform((1, 2, 3, 3), -2.0, 2.0), (4, 5))

    def batch_norm(name, x_shape, affine, training, running, eps=1e-5, momentum=0.1):
        c = x_shape[1]
        inputs = [("x", uniform(x_shape, -2.0, 3.0), True)]
        if affine:
            inputs.append(("weight", uniform((c,), 0.5, 1.5), True))
            inputs.append(("bias", uniform((c,), -0.5, 0.5), True))
        if running:
            inputs.append(("running_mean", uniform((c,), -0.5, 0.5), False))
            inputs.append(("running_var", uniform((c,), 0.5, 1.5), False))
        expr = (
            f"F.batch_norm(x, {'running_mean' if running else 'None'}, "
            f"{'running_var' if running else 'None'}, {'weight' if affine else 'None'}, "
            f"{'bias' if affine else 'None'}, training={training}, momentum={momentum}, "
            f"eps={eps})"
        )

        def fn(x, *rest):
            rest = list(rest)
            w, b = (rest.pop(0), rest.pop(0)) if affine else (None, None)
            # F.batch_norm updates running statistics in place: keep the stored inputs intact.
            rm, rv = (rest[0].clone(), rest[1].clone()) if running else (None, None)
            return F.batch_norm(x, rm, rv, w, b, training=training, momentum=momentum, eps=eps)

        cases.append(flagged_case(name, expr, fn, inputs))

    batch_norm("batch_norm_train_affine", (4, 3, 3, 3), affine=True, training=True, running=True)
    batch_norm("batch_norm_train_plain", (3, 2, 2, 4), affine=False, training=True, running=False)
    batch_norm(
        "batch_norm_train_1d_eps1e-3",
        (5, 2, 4),
        affine=True,
        training=True,
        running=False,
        eps=1e-3,
    )
    batch_norm("batch_norm_train_2d", (6, 3), affine=True, training=True, running=False)
    batch_norm("batch_norm_eval_affine", (2, 3, 4, 4), affine=True, training=False, running=True)
    batch_norm("batch_norm_eval_plain", (3, 2, 5), affine=False, training=False, running=True)

    def layer_norm(name, x_shape, normalized, affine, eps=1e-5):
        inputs = [("x", uniform(x_shape, -2.0, 3.0), True)]
        if affine:
            inputs.append(("weight", uniform(normalized, 0.5, 1.5), True))
            inputs.append(("bias", uniform(normalized, -0.5, 0.5), True))
        expr = (
            f"F.layer_norm(x, {list(normalized)}, {'weight' if affine else 'None'}, "
            f"{'bias' if affine else 'None'}, eps={eps})"
        )
        fn = lambda x, w=None, b=None: F.layer_norm(x, normalized, w, b, eps=eps)
        cases.append(flagged_case(name, expr, fn, inputs))

    layer_norm("layer_norm_affine_last", (2, 3, 5), (5,), affine=True)
    layer_norm("layer_norm_affine_last2_eps1e-3", (2, 3, 4), (3, 4), affine=True, eps=1e-3)
    layer_norm("layer_norm_plain", (4, 6), (6,), affine=False)

    def pad(name, x, pads, value):
        expr = f"F.pad(x, {pads}, value={value})"
        fn = lambda t: F.pad(t, pads, mode="constant", value=value)
        cases.append(flagged_case(name, expr, fn, [("x", x, True)]))

    pad("pad_last_dim", uniform((2, 4), -2.0, 2.0), [2, 1], 0.0)
    pad("pad_width_height", uniform((2, 3, 4), -2.0, 2.0), [1, 2, 0, 3], 0.5)
    pad("pad_three_dims", uniform((2, 2, 3), -2.0, 2.0), [1, 0, 0, 1, 2, 0], -1.25)
    return cases


def batch_norm_running_cases():
    """`nn.BatchNorm` modules trained for several steps, then evaluated: the output of each
    training step and the running statistics after it, then the output in evaluation mode.
    """
    cases = []

    def run(name, module, x_shape, steps, initial):
        c = x_shape[1]
        with torch.no_grad():
            module.weight.copy_(uniform((c,), 0.5, 1.5))
            module.bias.copy_(uniform((c,), -0.5, 0.5))
            if initial:
                module.running_mean.copy_(uniform((c,), -0.5, 0.5))
                module.running_var.copy_(uniform((c,), 0.5, 1.5))
        entry = {
            "name": name,
            "expr": f"{module!r}, {steps} steps in train(), then eval()",
            "momentum": module.momentum,
            "eps": module.eps,
            "weight": tensor_json(module.weight),
            "bias": tensor_json(module.bias),
            "initial_mean": tensor_json(module.running_mean),
            "initial_var": tensor_json(module.running_var),
            "steps": [],
        }
        module.train()
        for _ in range(steps):
            x = uniform(x_shape, -2.0, 3.0)
            out = module(x)
            entry["steps"].append(
                {
                    "x": tensor_json(x),
                    "output": tensor_json(out),
                    "running_mean": tensor_json(module.running_mean),
                    "running_var": tensor_json(module.running_var),
                }
            )
        module.eval()
        x = uniform(x_shape, -2.0, 3.0)
        entry["eval"] = {"x": tensor_json(x), "output": tensor_json(module(x))}
        cases.append(entry)

    run("batch_norm2d_momentum_0.1", torch.nn.BatchNorm2d(3, momentum=0.1), (4, 3, 3, 3), 5,
        initial=False)
    run("batch_norm1d_momentum_0.1_initial_stats", torch.nn.BatchNorm1d(4, momentum=0.1),
        (6, 4), 4, initial=True)
    run("batch_norm2d_momentum_0.3_eps1e-3",
        torch.nn.BatchNorm2d(2, momentum=0.3, eps=1e-3), (2, 2, 3, 4), 3, initial=False)
    return cases


def api_cases():
    """The everyday tensor ops, forward values and gradients, in the `cases` format."""
    cases = []

    def add(name, expr, fn, inputs):
        cases.append(case(name, expr, fn, inputs))

    x = uniform((3, 4), -3.0, 3.0)
    add("var_unbiased", "torch.var(x, dim=1)", lambda t: torch.var(t, dim=1), [("x", x)])
    x = uniform((3, 4), -3.0, 3.0)
    add(
        "var_biased_keepdim",
        "torch.var(x, dim=0, correction=0, keepdim=True)",
        lambda t: torch.var(t, dim=0, correction=0, keepdim=True),
        [("x", x)],
    )
    x = uniform((2, 3), -3.0, 3.0)
    add("std_all", "torch.std(x)", torch.std, [("x", x)])
    x = uniform((3, 5), -2.0, 2.0)
    x[0, 1] = 0.0
    x[1, 0] = x[1, 3] = 0.0
    add(
        "prod_dim1_zeros",
        "torch.prod(x, 1), one zero in row 0, two in row 1",
        lambda t: torch.prod(t, 1),
        [("x", x)],
    )
    x = uniform((3, 5), -3.0, 3.0)
    add("cumsum_dim1", "torch.cumsum(x, 1)", lambda t: torch.cumsum(t, 1), [("x", x)])
    x = uniform((4, 3), -3.0, 3.0)
    add("cumsum_dim0", "torch.cumsum(x, 0)", lambda t: torch.cumsum(t, 0), [("x", x)])
    x = uniform((3, 5), -3.0, 3.0)
    add(
        "sort_descending",
        "torch.sort(x, stable=True, dim=1, descending=True).values",
        lambda t: torch.sort(t, stable=True, dim=1, descending=True).values,
        [("x", x)],
    )
    x = uniform((3, 5), -3.0, 3.0)
    add("topk_2", "torch.topk(x, 2, dim=1).values", lambda t: torch.topk(t, 2, dim=1).values, [("x", x)])
    x = uniform((3, 4), -3.0, 3.0)
    x[0, 3] = x[0, 1] = x[0].max()
    add(
        "max_dim_values_ties",
        "torch.max(x, 1).values, row 0 has a tie (the first index takes the gradient)",
        lambda t: torch.max(t, 1).values,
        [("x", x)],
    )
    x = uniform((3, 4), -3.0, 3.0)
    x[2, 2] = x[0, 2] = x[:, 2].min()
    add(
        "min_dim_values_ties",
        "torch.min(x, 0).values, column 2 has a tie",
        lambda t: torch.min(t, 0).values,
        [("x", x)],
    )
    for name, p in [("norm_2", 2), ("norm_1", 1), ("norm_3", 3), ("norm_inf", math.inf)]:
        x = uniform((3, 4), -3.0, 3.0)
        add(
            name,
            f"torch.linalg.vector_norm(x, {p}, dim=1)",
            lambda t, p=p: torch.linalg.vector_norm(t, p, dim=1),
            [("x", x)],
        )
    x = torch.zeros(2, 3)
    x[1] = uniform((3,), -3.0, 3.0)
    add(
        "norm_2_zero_row",
        "torch.linalg.vector_norm(x, 2, dim=1), row 0 all zero",
        lambda t: torch.linalg.vector_norm(t, 2, dim=1),
        [("x", x)],
    )
    halves = torch.tensor([0.5, 1.5, 2.5, -0.5, -1.5, -2.5])
    for name, fn in [("floor", torch.floor), ("ceil", torch.ceil), ("round", torch.round)]:
        x = torch.cat([halves, uniform((6,), -3.0, 3.0)]).reshape(2, 6)
        add(name, f"torch.{name}(x), with halves", fn, [("x", x)])
    x = uniform((2, 3), -1.2, 1.2)
    add("tan", "torch.tan(x)", torch.tan, [("x", x)])
    x = uniform((2, 3), -3.0, 3.0)
    add("atan", "torch.atan(x)", torch.atan, [("x", x)])
    x = uniform((2, 3), -0.95, 0.95)
    add("asin", "torch.asin(x)", torch.asin, [("x", x)])
    x = uniform((2, 3), -0.95, 0.95)
    add("acos", "torch.acos(x)", torch.acos, [("x", x)])
    x, lo, hi = uniform((2, 4), -3.0, 3.0), uniform((2, 4), -2.0, 0.0), uniform((4,), 0.0, 2.0)
    x[0, 0] = lo[0, 0]
    x[0, 1] = hi[1]
    lo[1, 2] = 1.5  # above hi: the result is hi
    hi[2] = 1.0
    add(
        "clamp_tensor_ties",
        "torch.clamp(x, lo, hi), x ties lo and hi once, lo > hi once",
        torch.clamp,
        [("x", x), ("lo", lo), ("hi", hi)],
    )
    x, m = uniform((3, 4), -3.0, 3.0), torch.randint(0, 2, (3, 4), generator=gen)
    add(
        "masked_fill",
        "x.masked_fill(mask.bool(), -1.5)",
        lambda t, mask: t.masked_fill(mask.bool(), -1.5),
        [("x", x), ("mask", m)],
    )
    x = uniform((2, 3, 4), -3.0, 3.0)
    add("tril_0", "torch.tril(x)", torch.tril, [("x", x)])
    x = uniform((2, 3, 4), -3.0, 3.0)
    add("triu_1", "torch.triu(x, 1)", lambda t: torch.triu(t, 1), [("x", x)])
    x = uniform((3, 3), -3.0, 3.0)
    add("tril_minus1", "torch.tril(x, -1)", lambda t: torch.tril(t, -1), [("x", x)])
    return cases


def jvp_case(name, expr, fn, inputs):
    """`torch.func.jvp(fn, inputs, tangents)` for seeded tangents, one per input."""
    primals = tuple(t for _, t in inputs)
    tangents = tuple(uniform(tuple(t.shape), -1.0, 1.0) for t in primals)
    out, jv = torch.func.jvp(fn, primals, tangents)
    return {
        "name": name,
        "expr": expr,
        "inputs": [
            {"name": n, "dtype": "float64", **tensor_json(t)} for (n, _), t in zip(inputs, primals)
        ],
        "tangents": [tensor_json(t) for t in tangents],
        "output": tensor_json(out),
        "jvp": tensor_json(jv),
    }


def jvp_cases():
    """Forward-mode derivatives of compositions of ops, and one forward-over-reverse case."""
    cases = []

    def mlp(x, w1, b1, w2):
        return torch.tanh(x @ w1 + b1) @ w2

    cases.append(
        jvp_case(
            "mlp",
            "torch.tanh(x @ w1 + b1) @ w2",
            mlp,
            [
                ("x", uniform((3, 4), -2.0, 2.0)),
                ("w1", uniform((4, 5), -1.0, 1.0)),
                ("b1", uniform((5,), -1.0, 1.0)),
                ("w2", uniform((5, 2), -1.0, 1.0)),
            ],
        )
    )
    cases.append(
        jvp_case(
            "log_softmax_exp",
            "torch.log_softmax(x, -1) * torch.exp(y)",
            lambda x, y: torch.log_softmax(x, -1) * torch.exp(y),
            [("x", uniform((3, 5), -3.0, 3.0)), ("y", uniform((5,), -1.0, 1.0))],
        )
    )
    cases.append(
        jvp_case(
            "cumsum_prod_var_norm",
            "torch.cumsum(x, 1) * torch.prod(x, 1, keepdim=True) + var + norm",
            lambda x: torch.cumsum(x, 1) * torch.prod(x, 1, keepdim=True)
            + torch.var(x, 1, keepdim=True)
            + torch.linalg.vector_norm(x, 2, dim=1, keepdim=True),
            [("x", uniform((3, 4), -1.5, 1.5))],
        )
    )
    cases.append(
        jvp_case(
            "inverse_trig",
            "torch.atan(x) + torch.asin(x / 3) * torch.acos(x / 4) + torch.tan(x / 2)",
            lambda x: torch.atan(x) + torch.asin(x / 3) * torch.acos(x / 4) + torch.tan(x / 2),
            [("x", uniform((2, 3), -2.0, 2.0))],
        )
    )
    cases.append(
        jvp_case(
            "conv2d_max_pool",
            "F.max_pool2d(F.conv2d(x, w, padding=1), 2)",
            lambda x, w: F.max_pool2d(F.conv2d(x, w, padding=1), 2),
            [("x", uniform((1, 2, 4, 4), -2.0, 2.0)), ("w", uniform((3, 2, 3, 3), -1.0, 1.0))],
        )
    )
    cases.append(
        jvp_case(
            "sort_topk",
            "torch.sort(x, 1).values * 2 + torch.topk(x, 4, dim=1).values",
            lambda x: torch.sort(x, 1).values * 2 + torch.topk(x, 4, dim=1).values,
            [("x", uniform((2, 4), -3.0, 3.0))],
        )
    )

    def sum_tanh_cube(x):
        return torch.tanh(x).pow(3).sum()

    cases.append(
        jvp_case(
            "hvp_sum_tanh_cube",
            "jvp(grad(sum(tanh(x)^3))): a Hessian-vector product, forward over reverse",
            torch.func.grad(sum_tanh_cube),
            [("x", uniform((5,), -2.0, 2.0))],
        )
    )
    return cases


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "sections",
        nargs="*",
        metavar="SECTION",
        help=f"rewrite only these of {SECTIONS}, keeping the others as stored (default: all)",
    )
    args = parser.parse_args()
    unknown = set(args.sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; the sections are {SECTIONS}")
    rewrite = set(args.sections or SECTIONS)
    # Every section is computed, in order, so that each case's seeded draws never change.
    fresh = {
        "cases": build_cases(),
        "cnn": cnn_cases(),
        "batch_norm_running": batch_norm_running_cases(),
        "api": api_cases(),
        "jvp": jvp_cases(),
    }
    assert list(fresh) == SECTIONS
    stored = json.loads(OUT.read_text()) if OUT.exists() else {}
    sections = {}
    for name, cases in fresh.items():
        if name not in rewrite and name in stored:
            cases = stored[name]
        names = [c["name"] for c in cases]
        assert len(names) == len(set(names)), f"duplicate case name in {name}"
        sections[name] = cases
    meta = {
        "generator": "crates/core/tests/reference/generate.py",
        "torch_version": torch.__version__,
        "seed": SEED,
        "dtype": "float64",
        "loss": "(out * weight).sum(); grads are d loss / d input",
    }
    if "meta" in stored and rewrite != set(SECTIONS):
        meta = stored["meta"]
    dump = lambda v: json.dumps(v, allow_nan=False, separators=(",", ":"))

    def section(cases):
        # One case per line: small, diffable, and still plain JSON.
        return "[\n" + ",\n".join("  " + dump(c) for c in cases) + "\n]"

    text = '{"meta":' + dump(meta)
    for name, cases in sections.items():
        text += f',\n"{name}":' + section(cases)
    text += "}\n"
    json.loads(text)  # sanity check
    OUT.write_text(text)
    total = sum(map(len, sections.values()))
    rewritten = ", ".join(n for n in SECTIONS if n in rewrite)
    print(f"wrote {total} cases ({rewritten} rewritten), {len(text)} bytes to {OUT}")


if __name__ == "__main__":
    main()
