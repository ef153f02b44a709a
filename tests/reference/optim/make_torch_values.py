#!/usr/bin/python3
"""Records PyTorch 1.13 optimizer and learning-rate-schedule values for the C# optimizer tests.

Run with Debian's python3 and python3-torch (torch 1.13), NOT the python3 on PATH:
    /usr/bin/python3 tests/reference/optim/make_torch_values.py > tests/reference/optim/torch_values.json

"gradients": per dtype, a fixed gradient for each step (independent of the parameters, so the C#
tests replay them as they are) over N parameters.
"runs": for every optimizer (sgd, momentum, nesterov, adam, adamw, each with and without weight
decay) x schedule (constant, step, cosine, each with and without warm-up) x dtype, torch.optim's
single-tensor implementation (foreach=False) stepping the same initial parameters with those
gradients; the schedule is a LambdaLR whose factor is the closed form LearningRates.At documents.
Recorded: the learning rate and the parameters after every step.
"schedules": the learning rates torch's own StepLR, CosineAnnealingLR and LinearLR give where they
coincide with LearningRates.At (no warm-up; the warm-up alone).
"trainer": a small sigmoid MLP (sum-of-squares loss, no biases; the seed's model) trained with
Adam and momentum in float64 by autograd: data, initial weights, every step's loss, final weights.
"""
import json
import math

import torch

torch.manual_seed(20240611)
N, STEPS, WARMUP, EVERY, GAMMA = 23, 6, 2, 2, 0.5

OPTIMIZERS = {
    "sgd": dict(lr=0.1),
    "momentum": dict(lr=0.05, momentum=0.9),
    "nesterov": dict(lr=0.05, momentum=0.8),
    "adam": dict(lr=0.01, beta1=0.9, beta2=0.999, eps=1e-8),
    "adamw": dict(lr=0.01, beta1=0.8, beta2=0.99, eps=1e-6),
}


def factor(schedule, warmup, steps, epoch):
    """LearningRates.At / lr at step t = epoch + 1, written as LambdaLR's factor."""
    t = epoch + 1
    if t <= warmup:
        return t / warmup
    after = t - warmup - 1
    if schedule == "constant":
        return 1.0
    if schedule == "step":
        return GAMMA ** (after // EVERY)
    return (1 + math.cos(math.pi * after / (steps - warmup))) / 2


def make(kind, params, hp, weight_decay):
    if kind in ("sgd", "momentum", "nesterov"):
        return torch.optim.SGD(params, lr=hp["lr"], momentum=hp.get("momentum", 0), nesterov=kind == "nesterov",
                               weight_decay=weight_decay, foreach=False)
    cls = torch.optim.AdamW if kind == "adamw" else torch.optim.Adam
    return cls(params, lr=hp["lr"], betas=(hp["beta1"], hp["beta2"]), eps=hp["eps"], weight_decay=weight_decay, foreach=False)


def values(t):
    return [float(v) for v in t.detach().to(torch.float64).reshape(-1)]


initial64 = torch.randn(N, dtype=torch.float64)
gradients64 = [torch.randn(N, dtype=torch.float64) * 10 ** (s % 3 - 1) for s in range(STEPS)]
gradients64[1][3] = 0.0   # a zero gradient: Adam's denominator is then eps alone
dtypes = {"float64": torch.float64, "float32": torch.float32}

runs = []
for dname, dtype in dtypes.items():
    for kind, hp in OPTIMIZERS.items():
        for weight_decay in (0.0, 0.1):
            for schedule in ("constant", "step", "cosine"):
                for warmup in (0, WARMUP):
                    w = torch.nn.Parameter(initial64.to(dtype).clone())
                    opt = make(kind, [w], hp, weight_decay)
                    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda e: factor(schedule, warmup, STEPS, e))
                    lrs, after = [], []
                    for s in range(STEPS):
                        w.grad = gradients64[s].to(dtype).clone()
                        lrs.append(opt.param_groups[0]["lr"])
                        opt.step()
                        sched.step()
                        after.append(values(w))
                    runs.append(dict(dtype=dname, optimizer=kind, weight_decay=weight_decay, schedule=schedule,
                                     warmup=warmup, hyper=hp, lrs=lrs, parameters=after))


def torch_lrs(make_scheduler, steps, lr=0.1):
    w = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    opt = torch.optim.SGD([w], lr=lr)
    sched = make_scheduler(opt)
    out = []
    for _ in range(steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


schedules = [
    dict(name="StepLR", schedule="step", lr=0.1, steps=10, warmup=0, every=3, gamma=0.3,
         lrs=torch_lrs(lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=3, gamma=0.3), 10)),
    dict(name="CosineAnnealingLR", schedule="cosine", lr=0.1, steps=10, warmup=0, every=1000, gamma=0.1,
         lrs=torch_lrs(lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=10), 10)),
    # The warm-up alone: LinearLR from 1/W to 1 over W - 1 updates gives lr*t/W at steps 1..W.
    dict(name="LinearLR", schedule="constant", lr=0.1, steps=10, warmup=7, every=1000, gamma=0.1,
         lrs=torch_lrs(lambda o: torch.optim.lr_scheduler.LinearLR(o, start_factor=1 / 7, end_factor=1.0, total_iters=6), 7)),
]


def trainer_run(kind, hp, weight_decay, schedule, warmup, steps, x, y, w1, w2):
    w1, w2 = torch.nn.Parameter(w1.clone()), torch.nn.Parameter(w2.clone())
    opt = make(kind, [w1, w2], hp, weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda e: factor(schedule, warmup, steps, e))
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = ((torch.sigmoid(x @ w1.T) @ w2.T - y) ** 2).sum()
        loss.backward()
        losses.append(loss.item())
        opt.step()
        sched.step()
    return dict(optimizer=kind, hyper=hp, weight_decay=weight_decay, schedule=schedule, warmup=warmup, steps=steps,
                losses=losses, parameters=values(w1) + values(w2))


B, D_IN, H, D_OUT = 8, 6, 4, 3
x = torch.randn(B, D_IN, dtype=torch.float64)
y = torch.randn(B, D_OUT, dtype=torch.float64)
w1 = torch.randn(H, D_IN, dtype=torch.float64) * 0.5
w2 = torch.randn(D_OUT, H, dtype=torch.float64) * 0.5
trainer = dict(batch=B, inputs=D_IN, hidden=H, outputs=D_OUT, x=values(x), y=values(y), initial=values(w1) + values(w2),
               runs=[trainer_run("adam", OPTIMIZERS["adam"], 0.01, "cosine", 3, 12, x, y, w1, w2),
                     trainer_run("momentum", OPTIMIZERS["momentum"], 0.01, "step", 0, 12, x, y, w1, w2)])

print(json.dumps(dict(torch=torch.__version__, n=N, steps=STEPS, every=EVERY, gamma=GAMMA, initial=values(initial64),
                      gradients=[values(g) for g in gradients64], runs=runs, schedules=schedules, trainer=trainer)))
