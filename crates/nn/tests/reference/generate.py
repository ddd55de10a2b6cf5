#!/usr/bin/env python3
"""Generates PyTorch reference values for ferrograd-nn's `tests/torch_nn_reference.rs`.

What it writes: `torch_nn_reference.json`, next to this script, with seven sections:

- `activations`: every activation of `crates/nn/src/activation.rs` against its PyTorch
  function (maxout, which has no PyTorch op, as reshape + amax). Each case stores its inputs
  (name, dtype, shape, row-major values, whether it is differentiated), the forward output, a
  fixed weight tensor `w` of the output's shape, and the gradients of `(out * w).sum()` with
  respect to every differentiated input (for PReLU also its slope).
- `losses`: every loss of `crates/nn/src/loss.rs` (mean reduction), same format, with `w = 1`:
  the loss value and its gradient with respect to the prediction (targets get no gradient).
- `optimizers`: one small fixed problem (`problem`: data `x`, `y` and the initial parameters
  `W [3, 2]`, `b [2]`, loss `sum((tanh(x @ W + b) - y)^2) + 0.5 * sum(sin(2 W))`) and, for each
  optimizer configuration, the parameters after each of `STEPS` steps (a fresh copy of the
  initial parameters per configuration). Configurations use `lr = 0.1`, except the
  `*_torch_defaults` ones, which use PyTorch's defaults throughout.
- `clip`: `torch.nn.utils.clip_grad_norm_` on two parameters with fixed gradients (one case
  with a parameter that has no gradient): gradients before and after, and the returned norm.
- `loss_options`: the losses with their options (drawn after every other section, so the
  sections above keep their values): each reduction (`sum`, `none`), class weights,
  `ignore_index`, label smoothing, probability (soft) targets and inputs `[n, c, d1, ...]`
  for `F.cross_entropy` and `F.nll_loss`, `pos_weight` and `weight` for
  `F.binary_cross_entropy_with_logits`, and `F.kl_div`. Same format as `losses`.
- `optimizer_options`: trajectories on the fixed `problem` of `amsgrad` (Adam, AdamW) and
  `maximize` (every optimizer). Same format as `optimizers`.
- `schedules`: learning rates per epoch (epoch 0 first, before any `scheduler.step()`) of
  `StepLR`, `ExponentialLR`, `CosineAnnealingLR` (only epochs 0..=T_max, where PyTorch's
  recursive form equals the closed form ferrograd documents) and `LinearLR` as the linear
  warm-up, alone and chained with `StepLR` / `ExponentialLR`.

Everything is computed in float64 on the CPU. Inputs are drawn from a seeded
`torch.Generator` and rounded to two decimals, so they are short and exact to read back;
inputs that would sit on a kink (0, +-1, +-3, or a loss's switch point) are moved off it.
Outputs are written with Python's shortest round-trip `repr` of each float64, one case per
line. The Rust test rebuilds each case by `name`; a case added here needs a matching one-line
entry in the corresponding table of `torch_nn_reference.rs` (the test fails otherwise).

One deliberate deviation: the `hard_sigmoid` gradients are those of the exact composite
`clamp(x / 6 + 1/2, 0, 1)`, because PyTorch's CPU hardsigmoid backward multiplies by a float32
1/6 even in float64 (see `hardsigmoid_f64`, which asserts the two agree to 1e-7).

How to rerun (from the repository root; any Python with torch installed):

    /path/to/python crates/nn/tests/reference/generate.py

e.g. `/work/.torchenv/bin/python crates/nn/tests/reference/generate.py`. The output is
deterministic for a given torch version; commit the regenerated JSON together with any change
to this script. Generated with torch 2.15 (the exact version is recorded in the JSON).
"""

import json
import math
from pathlib import Path

import torch
import torch.nn.functional as F

SEED = 20240715
STEPS = 5
LR = 0.1
OUT = Path(__file__).resolve().parent / "torch_nn_reference.json"

torch.set_default_dtype(torch.float64)
gen = torch.Generator().manual_seed(SEED)


def uniform(shape, lo, hi):
    """Seeded uniform values in [lo, hi), rounded to two decimals (exact in the JSON)."""
    x = torch.rand(shape, generator=gen, dtype=torch.float64) * (hi - lo) + lo
    return torch.round(x * 100) / 100


def off_kinks(x, kinks=(0.0, 1.0, -1.0, 3.0, -3.0), margin=0.02):
    """Moves values within `margin` of a kink to `kink + margin + 0.01` (still two decimals)."""
    x = x.clone()
    for k in kinks:
        near = (x - k).abs() < margin
        x[near] = k + margin + 0.01
    return x


def labels(n, classes):
    return torch.randint(0, classes, (n,), generator=gen, dtype=torch.int64)


def tensor_json(t):
    t = t.detach()
    values = t.reshape(-1).tolist()
    if t.dtype.is_floating_point:
        assert all(math.isfinite(v) for v in values), "non-finite reference value"
    return {"shape": list(t.shape), "values": values}


def case(name, expr, fn, inputs, unit_weight=False):
    """Runs `fn(*inputs)` and the backward of `(out * w).sum()`.

    `inputs` is a list of (name, tensor, differentiate); `w` is a fresh fixed random tensor of
    the output's shape, or 1 when `unit_weight` (losses).
    """
    leaves = []
    for _, t, diff in inputs:
        t = t.clone()
        assert t.dtype in (torch.float64, torch.int64)
        if diff:
            t.requires_grad_(True)
        leaves.append(t)
    out = fn(*leaves)
    w = torch.ones(out.shape) if unit_weight else uniform(tuple(out.shape), -1.0, 1.0)
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


def no_ties_in_groups(x, k):
    """Asserts that each group of `k` consecutive features has a unique maximum."""
    g = x.reshape(-1, k)
    top2 = torch.topk(g, 2, dim=-1).values
    assert bool((top2[:, 0] != top2[:, 1]).all()), "tie in maxout group"
    return x


def hardsigmoid_f64(x):
    """`F.hardsigmoid` with an exact float64 gradient.

    PyTorch's CPU `hardsigmoid_backward` multiplies by `one_sixth(1.0f / 6.0f)`, a float32
    constant, even for float64, so its float64 gradient is off by ~3e-8 relative. Its forward
    is exact. This returns `F.hardsigmoid(x)` (the forward) with the gradient of the identical
    composite `clamp(x / 6 + 1/2, 0, 1)`; `check_hardsigmoid` asserts both agree with PyTorch.
    """
    exact = torch.clamp(x / 6 + 0.5, 0.0, 1.0)
    return F.hardsigmoid(x).detach() + (exact - exact.detach())


def check_hardsigmoid(x):
    a, b = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    torch_out, ours = F.hardsigmoid(a), hardsigmoid_f64(b)
    assert torch.equal(torch_out, ours), "hardsigmoid forward differs"
    torch_out.sum().backward()
    ours.sum().backward()
    assert torch.allclose(a.grad, b.grad, rtol=1e-7, atol=0), "hardsigmoid grad differs"
    return x


def maxout(x, k):
    return x.reshape(*x.shape[:-1], x.shape[-1] // k, k).amax(-1)


def activation_cases():
    cases = []

    def act(name, expr, fn, shape=(3, 4), lo=-4.0, hi=4.0):
        x = off_kinks(uniform(shape, lo, hi))
        cases.append(case(name, expr, fn, [("x", x, True)]))

    act("sigmoid", "torch.sigmoid(x)", torch.sigmoid)
    act("tanh", "torch.tanh(x)", torch.tanh)
    x = check_hardsigmoid(off_kinks(uniform((3, 4), -4.0, 4.0)))
    cases.append(
        case(
            "hard_sigmoid",
            "F.hardsigmoid(x); grads of clamp(x / 6 + 1/2, 0, 1), as PyTorch's f64 backward "
            "uses a float32 1/6",
            hardsigmoid_f64,
            [("x", x, True)],
        )
    )
    act("hard_tanh", "F.hardtanh(x)", F.hardtanh)
    act("relu", "F.relu(x)", F.relu)
    act("leaky_relu_0.1", "F.leaky_relu(x, 0.1)", lambda t: F.leaky_relu(t, 0.1))
    act("elu_1", "F.elu(x, alpha=1.0)", lambda t: F.elu(t, alpha=1.0))
    act("elu_0.5", "F.elu(x, alpha=0.5)", lambda t: F.elu(t, alpha=0.5))
    act("softplus", "F.softplus(x)", F.softplus, lo=-8.0, hi=8.0)
    act("silu", "F.silu(x)", F.silu)
    act("gelu", "F.gelu(x)", F.gelu)
    act("gelu_tanh", "F.gelu(x, approximate='tanh')", lambda t: F.gelu(t, approximate="tanh"))
    act("softmax", "torch.softmax(x, -1)", lambda t: torch.softmax(t, -1), shape=(3, 5))
    act(
        "log_softmax",
        "torch.log_softmax(x, -1)",
        lambda t: torch.log_softmax(t, -1),
        shape=(3, 5),
    )

    # PReLU with a learnable per-feature slope (features on the last axis = PyTorch's channel
    # axis for 2-D input) and with one shared slope; the slope gets a gradient too.
    x, a = off_kinks(uniform((3, 4), -4.0, 4.0)), uniform((4,), -0.5, 0.5)
    cases.append(
        case("prelu_per_feature", "F.prelu(x, a)", F.prelu, [("x", x, True), ("a", a, True)])
    )
    x, a = off_kinks(uniform((3, 4), -4.0, 4.0)), uniform((1,), -0.5, 0.5)
    cases.append(case("prelu_shared", "F.prelu(x, a)", F.prelu, [("x", x, True), ("a", a, True)]))

    x = no_ties_in_groups(uniform((3, 4), -4.0, 4.0), 2)
    cases.append(
        case("maxout_2", "x.reshape(3, 2, 2).amax(-1)", lambda t: maxout(t, 2), [("x", x, True)])
    )
    x = no_ties_in_groups(uniform((2, 2, 6), -4.0, 4.0), 3)
    cases.append(
        case(
            "maxout_3",
            "x.reshape(2, 2, 2, 3).amax(-1)",
            lambda t: maxout(t, 3),
            [("x", x, True)],
        )
    )
    return cases


def loss_cases():
    cases = []

    def add(name, expr, fn, inputs):
        cases.append(case(name, expr, fn, inputs, unit_weight=True))

    p, t = uniform((3, 4), -2.0, 2.0), uniform((3, 4), -2.0, 2.0)
    add("mse", "F.mse_loss(pred, target)", F.mse_loss, [("pred", p, True), ("target", t, False)])

    def diff_off(p, t, kinks):
        """Moves `p` so that `p - t` stays away from the given kinks."""
        p = torch.round((t + off_kinks(p - t, kinks)) * 100) / 100
        assert all(bool(((p - t - k).abs() > 0.015).all()) for k in kinks), "kink in loss input"
        return p

    p, t = uniform((3, 4), -2.0, 2.0), uniform((3, 4), -2.0, 2.0)
    p = diff_off(p, t, (0.0,))
    add("l1", "F.l1_loss(pred, target)", F.l1_loss, [("pred", p, True), ("target", t, False)])
    for delta in (1.0, 0.5):
        p, t = uniform((3, 4), -2.0, 2.0), uniform((3, 4), -2.0, 2.0)
        p = diff_off(p, t, (0.0, delta, -delta))
        add(
            f"huber_{delta}",
            f"F.huber_loss(pred, target, delta={delta})",
            lambda a, b, d=delta: F.huber_loss(a, b, delta=d),
            [("pred", p, True), ("target", t, False)],
        )
    p, t = uniform((3, 4), 0.05, 0.95), uniform((3, 4), 0.0, 1.0)
    t[0, :2] = torch.tensor([0.0, 1.0])  # hard targets too
    add(
        "binary_cross_entropy",
        "F.binary_cross_entropy(prob, target)",
        F.binary_cross_entropy,
        [("prob", p, True), ("target", t, False)],
    )
    z, t = uniform((3, 4), -5.0, 5.0), uniform((3, 4), 0.0, 1.0)
    t[0, :2] = torch.tensor([0.0, 1.0])
    add(
        "binary_cross_entropy_with_logits",
        "F.binary_cross_entropy_with_logits(logits, target)",
        F.binary_cross_entropy_with_logits,
        [("logits", z, True), ("target", t, False)],
    )
    for eps in (0.0, 0.1):
        z, y = uniform((4, 5), -3.0, 3.0), labels(4, 5)
        add(
            f"cross_entropy_ls_{eps}",
            f"F.cross_entropy(logits, labels, label_smoothing={eps})",
            lambda a, b, e=eps: F.cross_entropy(a, b, label_smoothing=e),
            [("logits", z, True), ("labels", y, False)],
        )
    lp, y = uniform((4, 5), -4.0, 0.0), labels(4, 5)
    add(
        "nll",
        "F.nll_loss(log_probs, labels)",
        F.nll_loss,
        [("log_probs", lp, True), ("labels", y, False)],
    )
    return cases


PROBLEM_EXPR = "sum((tanh(x @ W + b) - y)^2) + 0.5 * sum(sin(2 W))"


def problem_loss(x, y, W, b):
    return ((torch.tanh(x @ W + b) - y) ** 2).sum() + 0.5 * torch.sin(2 * W).sum()


def optimizer_cases():
    x, y = uniform((4, 3), -1.5, 1.5), uniform((4, 2), -0.9, 0.9)
    W0, b0 = uniform((3, 2), -1.0, 1.0), uniform((2,), -0.5, 0.5)
    problem = {
        "expr": PROBLEM_EXPR,
        "x": tensor_json(x),
        "y": tensor_json(y),
        "params": {"W": tensor_json(W0), "b": tensor_json(b0)},
        "steps": STEPS,
    }
    O = torch.optim
    configs = [
        ("sgd", "SGD(lr=0.1)", lambda p: O.SGD(p, lr=LR)),
        ("sgd_momentum", "SGD(lr=0.1, momentum=0.9)", lambda p: O.SGD(p, lr=LR, momentum=0.9)),
        (
            "sgd_momentum_dampening",
            "SGD(lr=0.1, momentum=0.9, dampening=0.1)",
            lambda p: O.SGD(p, lr=LR, momentum=0.9, dampening=0.1),
        ),
        (
            "sgd_nesterov_weight_decay",
            "SGD(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)",
            lambda p: O.SGD(p, lr=LR, momentum=0.9, nesterov=True, weight_decay=0.01),
        ),
        ("adam", "Adam(lr=0.1)", lambda p: O.Adam(p, lr=LR)),
        ("adam_torch_defaults", "Adam()", lambda p: O.Adam(p)),
        (
            "adam_weight_decay",
            "Adam(lr=0.1, weight_decay=0.1)",
            lambda p: O.Adam(p, lr=LR, weight_decay=0.1),
        ),
        (
            "adamw",
            "AdamW(lr=0.1, weight_decay=0.1)",
            lambda p: O.AdamW(p, lr=LR, weight_decay=0.1),
        ),
        ("adamw_torch_defaults", "AdamW()", lambda p: O.AdamW(p)),
        ("rmsprop", "RMSprop(lr=0.1)", lambda p: O.RMSprop(p, lr=LR)),
        ("rmsprop_torch_defaults", "RMSprop()", lambda p: O.RMSprop(p)),
        (
            "rmsprop_centered_momentum_weight_decay",
            "RMSprop(lr=0.1, centered=True, momentum=0.5, weight_decay=0.01)",
            lambda p: O.RMSprop(p, lr=LR, centered=True, momentum=0.5, weight_decay=0.01),
        ),
        ("adagrad", "Adagrad(lr=0.1)", lambda p: O.Adagrad(p, lr=LR)),
        ("adagrad_torch_defaults", "Adagrad()", lambda p: O.Adagrad(p)),
        (
            "adagrad_lr_decay_init_acc",
            "Adagrad(lr=0.1, lr_decay=0.1, initial_accumulator_value=0.1)",
            lambda p: O.Adagrad(p, lr=LR, lr_decay=0.1, initial_accumulator_value=0.1),
        ),
        (
            "adagrad_weight_decay",
            "Adagrad(lr=0.1, weight_decay=0.05)",
            lambda p: O.Adagrad(p, lr=LR, weight_decay=0.05),
        ),
    ]
    cases = []
    for name, expr, make in configs:
        W, b = W0.clone().requires_grad_(True), b0.clone().requires_grad_(True)
        opt = make([W, b])
        trajectory = []
        for _ in range(STEPS):
            opt.zero_grad()
            problem_loss(x, y, W, b).backward()
            opt.step()
            trajectory.append({"W": tensor_json(W), "b": tensor_json(b)})
        cases.append({"name": name, "expr": expr, "trajectory": trajectory})
    return problem, cases


def clip_cases():
    cases = []

    def add(name, max_norm, with_grad=(True, True)):
        params = [torch.zeros(3, 2, requires_grad=True), torch.zeros(4, requires_grad=True)]
        before = []
        for p, has in zip(params, with_grad):
            g = uniform(tuple(p.shape), -2.0, 2.0)
            if has:
                p.grad = g.clone()
            before.append(tensor_json(g) if has else None)
        norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
        cases.append(
            {
                "name": name,
                "expr": f"clip_grad_norm_(params, max_norm={max_norm})",
                "max_norm": max_norm,
                "before": before,
                "after": [tensor_json(p.grad) if p.grad is not None else None for p in params],
                "norm": norm.item(),
            }
        )

    add("clips", 1.0)
    add("below_max_norm", 100.0)
    add("max_norm_zero", 0.0)
    add("missing_grad", 0.5, with_grad=(True, False))
    return cases


def schedule_cases():
    S = torch.optim.lr_scheduler
    base_lr = 0.1
    epochs = 9

    def run(name, expr, make, n=epochs):
        p = torch.zeros(1, requires_grad=True)
        opt = torch.optim.SGD([p], lr=base_lr)
        sched = make(opt)
        lrs = []
        for _ in range(n):
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        return {"name": name, "expr": expr, "base_lr": base_lr, "lrs": lrs}

    warmup = 4

    def linear(o):
        return S.LinearLR(o, start_factor=1 / warmup, end_factor=1.0, total_iters=warmup - 1)

    linear_expr = f"LinearLR(start_factor=1/{warmup}, end_factor=1, total_iters={warmup - 1})"
    return [
        run("step", "StepLR(step_size=2, gamma=0.5)", lambda o: S.StepLR(o, 2, gamma=0.5)),
        run("exponential", "ExponentialLR(gamma=0.9)", lambda o: S.ExponentialLR(o, 0.9)),
        # Epochs 0..=T_max only: after T_max PyTorch's recursive form rises again, while
        # ferrograd's closed form stays at eta_min (asserted separately in Rust).
        run(
            "cosine",
            "CosineAnnealingLR(T_max=5, eta_min=0.01), epochs 0..=5",
            lambda o: S.CosineAnnealingLR(o, T_max=5, eta_min=0.01),
            n=6,
        ),
        run("warmup_constant", linear_expr, linear),
        run(
            "warmup_step",
            f"ChainedScheduler([{linear_expr}, StepLR(step_size=2, gamma=0.5)])",
            lambda o: S.ChainedScheduler([linear(o), S.StepLR(o, 2, gamma=0.5)]),
        ),
        run(
            "warmup_exponential",
            f"ChainedScheduler([{linear_expr}, ExponentialLR(gamma=0.9)])",
            lambda o: S.ChainedScheduler([linear(o), S.ExponentialLR(o, 0.9)]),
        ),
    ]


def loss_option_cases():
    """Every loss with its options; drawn last so that earlier sections keep their inputs."""
    cases = []

    def add(name, expr, fn, inputs):
        cases.append(case(name, expr, fn, inputs, unit_weight=True))

    p, t = uniform((3, 4), -2.0, 2.0), uniform((3, 4), -2.0, 2.0)
    add(
        "mse_sum",
        "F.mse_loss(pred, target, reduction='sum')",
        lambda a, b: F.mse_loss(a, b, reduction="sum"),
        [("pred", p, True), ("target", t, False)],
    )
    p, t = uniform((2, 3), -2.0, 2.0), uniform((2, 3), -2.0, 2.0)
    add(
        "mse_none",
        "F.mse_loss(pred, target, reduction='none')",
        lambda a, b: F.mse_loss(a, b, reduction="none"),
        [("pred", p, True), ("target", t, False)],
    )
    p, t = uniform((3, 4), -2.0, 2.0), uniform((3, 4), -2.0, 2.0)
    p = torch.round((t + off_kinks(p - t, (0.0,))) * 100) / 100
    add(
        "l1_sum",
        "F.l1_loss(pred, target, reduction='sum')",
        lambda a, b: F.l1_loss(a, b, reduction="sum"),
        [("pred", p, True), ("target", t, False)],
    )
    p, t = uniform((2, 4), -2.0, 2.0), uniform((2, 4), -2.0, 2.0)
    p = torch.round((t + off_kinks(p - t, (0.0, 1.0, -1.0))) * 100) / 100
    add(
        "huber_none",
        "F.huber_loss(pred, target, reduction='none')",
        lambda a, b: F.huber_loss(a, b, reduction="none"),
        [("pred", p, True), ("target", t, False)],
    )
    p, t = uniform((3, 4), 0.05, 0.95), uniform((3, 4), 0.0, 1.0)
    add(
        "binary_cross_entropy_sum",
        "F.binary_cross_entropy(prob, target, reduction='sum')",
        lambda a, b: F.binary_cross_entropy(a, b, reduction="sum"),
        [("prob", p, True), ("target", t, False)],
    )
    z, t, pw = uniform((3, 4), -5.0, 5.0), uniform((3, 4), 0.0, 1.0), uniform((4,), 0.5, 3.0)
    add(
        "bce_logits_pos_weight",
        "F.binary_cross_entropy_with_logits(logits, target, pos_weight=pw)",
        lambda a, b, c: F.binary_cross_entropy_with_logits(a, b, pos_weight=c),
        [("logits", z, True), ("target", t, False), ("pos_weight", pw, False)],
    )
    z, t = uniform((3, 4), -5.0, 5.0), uniform((3, 4), 0.0, 1.0)
    pw, w = uniform((4,), 0.5, 3.0), uniform((3, 1), 0.1, 2.0)
    add(
        "bce_logits_pos_weight_weight_none",
        "F.binary_cross_entropy_with_logits(logits, target, weight=w, pos_weight=pw, "
        "reduction='none')",
        lambda a, b, c, d: F.binary_cross_entropy_with_logits(
            a, b, weight=d, pos_weight=c, reduction="none"
        ),
        [("logits", z, True), ("target", t, False), ("pos_weight", pw, False), ("weight", w, False)],
    )
    z, y, w = uniform((5, 4), -3.0, 3.0), labels(5, 4), uniform((4,), 0.2, 2.0)
    add(
        "cross_entropy_weight",
        "F.cross_entropy(logits, labels, weight=w)",
        lambda a, b, c: F.cross_entropy(a, b, weight=c),
        [("logits", z, True), ("labels", y, False), ("weight", w, False)],
    )
    z, y = uniform((5, 4), -3.0, 3.0), torch.tensor([0, -100, 3, 1, -100])
    add(
        "cross_entropy_ignore_index",
        "F.cross_entropy(logits, labels), labels -100 ignored (PyTorch's default)",
        F.cross_entropy,
        [("logits", z, True), ("labels", y, False)],
    )
    z, y, w = uniform((5, 4), -3.0, 3.0), torch.tensor([2, 1, 3, 1, 0]), uniform((4,), 0.2, 2.0)
    add(
        "cross_entropy_weight_ignore_smoothing",
        "F.cross_entropy(logits, labels, weight=w, ignore_index=1, label_smoothing=0.2)",
        lambda a, b, c: F.cross_entropy(a, b, weight=c, ignore_index=1, label_smoothing=0.2),
        [("logits", z, True), ("labels", y, False), ("weight", w, False)],
    )
    z, y = uniform((4, 5), -3.0, 3.0), labels(4, 5)
    add(
        "cross_entropy_sum",
        "F.cross_entropy(logits, labels, reduction='sum')",
        lambda a, b: F.cross_entropy(a, b, reduction="sum"),
        [("logits", z, True), ("labels", y, False)],
    )
    z, t = uniform((4, 3), -3.0, 3.0), torch.softmax(uniform((4, 3), -2.0, 2.0), -1)
    add(
        "cross_entropy_soft_targets",
        "F.cross_entropy(logits, probs)",
        F.cross_entropy,
        [("logits", z, True), ("probs", t, False)],
    )
    z, t, w = uniform((4, 3), -3.0, 3.0), torch.softmax(uniform((4, 3), -2.0, 2.0), -1), uniform((3,), 0.2, 2.0)
    add(
        "cross_entropy_soft_weight_smoothing",
        "F.cross_entropy(logits, probs, weight=w, label_smoothing=0.1)",
        lambda a, b, c: F.cross_entropy(a, b, weight=c, label_smoothing=0.1),
        [("logits", z, True), ("probs", t, False), ("weight", w, False)],
    )
    z, y = uniform((2, 3, 2, 2), -3.0, 3.0), torch.randint(0, 3, (2, 2, 2), generator=gen)
    add(
        "cross_entropy_spatial_none",
        "F.cross_entropy(logits [N, C, H, W], labels [N, H, W], reduction='none')",
        lambda a, b: F.cross_entropy(a, b, reduction="none"),
        [("logits", z, True), ("labels", y, False)],
    )
    z, y, w = uniform((2, 3, 4), -3.0, 3.0), torch.randint(0, 3, (2, 4), generator=gen), uniform((3,), 0.2, 2.0)
    y[0, 1] = 2
    add(
        "cross_entropy_spatial_weight_ignore",
        "F.cross_entropy(logits [N, C, L], labels [N, L], weight=w, ignore_index=2)",
        lambda a, b, c: F.cross_entropy(a, b, weight=c, ignore_index=2),
        [("logits", z, True), ("labels", y, False), ("weight", w, False)],
    )
    z, t = uniform((2, 3, 2), -3.0, 3.0), torch.softmax(uniform((2, 3, 2), -2.0, 2.0), 1)
    add(
        "cross_entropy_spatial_soft",
        "F.cross_entropy(logits [N, C, L], probs [N, C, L])",
        F.cross_entropy,
        [("logits", z, True), ("probs", t, False)],
    )
    lp, y, w = uniform((5, 4), -4.0, 0.0), torch.tensor([0, 3, 3, 1, 2]), uniform((4,), 0.2, 2.0)
    add(
        "nll_weight_ignore",
        "F.nll_loss(log_probs, labels, weight=w, ignore_index=3)",
        lambda a, b, c: F.nll_loss(a, b, weight=c, ignore_index=3),
        [("log_probs", lp, True), ("labels", y, False), ("weight", w, False)],
    )
    lp, y = uniform((2, 3, 2, 2), -4.0, 0.0), torch.randint(0, 3, (2, 2, 2), generator=gen)
    add(
        "nll_spatial_sum",
        "F.nll_loss(log_probs [N, C, H, W], labels [N, H, W], reduction='sum')",
        lambda a, b: F.nll_loss(a, b, reduction="sum"),
        [("log_probs", lp, True), ("labels", y, False)],
    )
    x, t = torch.log_softmax(uniform((3, 4), -2.0, 2.0), -1), torch.softmax(uniform((3, 4), -2.0, 2.0), -1)
    t[0, 1] = 0.0
    add(
        "kl_div_batchmean",
        "F.kl_div(log_probs, target, reduction='batchmean'), one target 0",
        lambda a, b: F.kl_div(a, b, reduction="batchmean"),
        [("log_probs", x, True), ("target", t, False)],
    )
    x, t = torch.log_softmax(uniform((3, 4), -2.0, 2.0), -1), torch.log_softmax(uniform((3, 4), -2.0, 2.0), -1)
    add(
        "kl_div_mean_log_target",
        "F.kl_div(log_probs, log_target, reduction='mean', log_target=True)",
        lambda a, b: F.kl_div(a, b, reduction="mean", log_target=True),
        [("log_probs", x, True), ("log_target", t, False)],
    )
    x, t = torch.log_softmax(uniform((2, 3), -2.0, 2.0), -1), torch.softmax(uniform((2, 3), -2.0, 2.0), -1)
    add(
        "kl_div_none",
        "F.kl_div(log_probs, target, reduction='none')",
        lambda a, b: F.kl_div(a, b, reduction="none"),
        [("log_probs", x, True), ("target", t, False)],
    )
    return cases


def optimizer_option_cases(problem):
    """`amsgrad` and `maximize` on the fixed problem."""
    x = torch.tensor(problem["x"]["values"]).reshape(problem["x"]["shape"])
    y = torch.tensor(problem["y"]["values"]).reshape(problem["y"]["shape"])
    W0 = torch.tensor(problem["params"]["W"]["values"]).reshape(problem["params"]["W"]["shape"])
    b0 = torch.tensor(problem["params"]["b"]["values"]).reshape(problem["params"]["b"]["shape"])
    O = torch.optim
    configs = [
        ("adam_amsgrad", "Adam(lr=0.1, amsgrad=True)", lambda p: O.Adam(p, lr=LR, amsgrad=True)),
        (
            "adamw_amsgrad",
            "AdamW(lr=0.1, weight_decay=0.1, amsgrad=True)",
            lambda p: O.AdamW(p, lr=LR, weight_decay=0.1, amsgrad=True),
        ),
        (
            "sgd_maximize",
            "SGD(lr=0.1, momentum=0.9, weight_decay=0.01, maximize=True)",
            lambda p: O.SGD(p, lr=LR, momentum=0.9, weight_decay=0.01, maximize=True),
        ),
        (
            "adam_amsgrad_maximize",
            "Adam(lr=0.1, weight_decay=0.1, amsgrad=True, maximize=True)",
            lambda p: O.Adam(p, lr=LR, weight_decay=0.1, amsgrad=True, maximize=True),
        ),
        (
            "adamw_maximize",
            "AdamW(lr=0.1, weight_decay=0.1, maximize=True)",
            lambda p: O.AdamW(p, lr=LR, weight_decay=0.1, maximize=True),
        ),
        (
            "rmsprop_maximize",
            "RMSprop(lr=0.1, centered=True, momentum=0.5, maximize=True)",
            lambda p: O.RMSprop(p, lr=LR, centered=True, momentum=0.5, maximize=True),
        ),
        (
            "adagrad_maximize",
            "Adagrad(lr=0.1, weight_decay=0.05, maximize=True)",
            lambda p: O.Adagrad(p, lr=LR, weight_decay=0.05, maximize=True),
        ),
    ]
    cases = []
    for name, expr, make in configs:
        W, b = W0.clone().requires_grad_(True), b0.clone().requires_grad_(True)
        opt = make([W, b])
        trajectory = []
        for _ in range(STEPS):
            opt.zero_grad()
            problem_loss(x, y, W, b).backward()
            opt.step()
            trajectory.append({"W": tensor_json(W), "b": tensor_json(b)})
        cases.append({"name": name, "expr": expr, "trajectory": trajectory})
    return cases


def main():
    activations = activation_cases()
    losses = loss_cases()
    problem, optimizers = optimizer_cases()
    clip = clip_cases()
    schedules = schedule_cases()
    loss_options = loss_option_cases()
    optimizer_options = optimizer_option_cases(problem)
    every = (activations, losses, optimizers, clip, schedules, loss_options, optimizer_options)
    for section in every:
        names = [c["name"] for c in section]
        assert len(names) == len(set(names)), "duplicate case name"
    meta = {
        "generator": "crates/nn/tests/reference/generate.py",
        "torch_version": torch.__version__,
        "seed": SEED,
        "dtype": "float64",
        "loss": "(out * weight).sum(); grads are d loss / d input (weight = 1 for losses)",
    }
    dump = lambda v: json.dumps(v, allow_nan=False, separators=(",", ":"))

    def section(cases):
        # One case per line: small, diffable, and still plain JSON.
        return "[\n" + ",\n".join("  " + dump(c) for c in cases) + "\n]"

    text = (
        '{"meta":' + dump(meta)
        + ',\n"activations":' + section(activations)
        + ',\n"losses":' + section(losses)
        + ',\n"problem":' + dump(problem)
        + ',\n"optimizers":' + section(optimizers)
        + ',\n"clip":' + section(clip)
        + ',\n"schedules":' + section(schedules)
        + ',\n"loss_options":' + section(loss_options)
        + ',\n"optimizer_options":' + section(optimizer_options)
        + "}\n"
    )
    json.loads(text)  # sanity check
    OUT.write_text(text)
    total = sum(map(len, every))
    print(f"wrote {total} cases, {len(text)} bytes to {OUT}")


if __name__ == "__main__":
    main()
