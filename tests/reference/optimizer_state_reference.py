#!/usr/bin/env python3
"""Optimizer state exchanged between torch.optim and asrkit checkpoints (issue 4).

A two-layer net (Linear 4->5, Tanh, Linear 5->3; loss 0.5 * sum((net(x) - y)^2)) trains for
STEPS steps, then RESUME more, with each optimizer of CASES, in float64 and float32.

    optimizer_state_reference.py make DIR    writes DIR/optstate_<case>_<dtype>.safetensors, the
        checkpoint after STEPS steps (state_dict + tools/torch_optimizer_state.flatten), and
        DIR/optstate_<case>_<dtype>_expected.safetensors: x, y and params_<s>, all parameters
        concatenated after each of the RESUME further steps. The C++ test loads the checkpoint
        into an optimizer built with other options, resumes and compares.
    optimizer_state_reference.py check DIR   loads DIR/optstate_<case>_<dtype>_from_asrkit.safetensors
        (written by the C++ test after resuming) into a torch model and optimizer built with other
        options, and compares parameters, every state tensor and the options with PyTorch's own run
        at the same point; then both take one more step and must agree. Exit 1 on a mismatch.
"""
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools"))
import st_io  # noqa: E402
import torch_optimizer_state  # noqa: E402
from safetensors_reference import decode, read_file  # noqa: E402

STEPS, RESUME = 3, 3
CASES = {
    "sgd": lambda ps: torch.optim.SGD(ps, lr=0.1),
    "sgd_nesterov": lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01),
    "sgd_dampening": lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.8, dampening=0.3),
    "adam_l2": lambda ps: torch.optim.Adam(ps, lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1),
    "adamw": lambda ps: torch.optim.AdamW(ps, lr=0.01, weight_decay=0.05),
    "amsgrad": lambda ps: torch.optim.Adam(ps, lr=0.02, amsgrad=True),
}
# The same kinds with other options: loading must restore the file's.
OTHER = {
    "sgd": lambda ps: torch.optim.SGD(ps, lr=0.7),
    "sgd_nesterov": lambda ps: torch.optim.SGD(ps, lr=0.5, momentum=0.5),
    "sgd_dampening": lambda ps: torch.optim.SGD(ps, lr=0.5, momentum=0.1),
    "adam_l2": lambda ps: torch.optim.Adam(ps, lr=0.5),
    "adamw": lambda ps: torch.optim.AdamW(ps, lr=0.5, betas=(0.5, 0.5)),
    "amsgrad": lambda ps: torch.optim.Adam(ps, lr=0.5, amsgrad=True),
}
DTYPES = {"f64": torch.float64, "f32": torch.float32}


def net(dtype, seed):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3)).to(dtype)


def data(dtype):
    gen = torch.Generator().manual_seed(7)
    return (torch.randn(6, 4, generator=gen, dtype=dtype), torch.randn(6, 3, generator=gen, dtype=dtype))


def train_step(model, opt, x, y):
    opt.zero_grad()
    loss = 0.5 * ((model(x) - y) ** 2).sum()
    loss.backward()
    opt.step()


def flat_params(model):
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def run(case, dtype, steps):
    """PyTorch's own run: model and optimizer after `steps` steps."""
    model = net(dtype, 1)
    opt = CASES[case](model.parameters())
    x, y = data(dtype)
    for _ in range(steps):
        train_step(model, opt, x, y)
    return model, opt


def make(out_dir):
    torch.set_num_threads(1)
    for case in CASES:
        for tag, dtype in DTYPES.items():
            model, opt = run(case, dtype, STEPS)
            tensors, metadata = torch_optimizer_state.flatten(opt)
            state = {k: v.numpy() for k, v in model.state_dict().items()}
            state.update({k: v.numpy() for k, v in tensors.items()})
            st_io.save(os.path.join(out_dir, f"optstate_{case}_{tag}.safetensors"), state, metadata)
            x, y = data(dtype)
            expected = {"x": x.numpy(), "y": y.numpy()}
            for s in range(RESUME):
                train_step(model, opt, x, y)
                expected[f"params_{s}"] = flat_params(model).numpy()
            st_io.save(os.path.join(out_dir, f"optstate_{case}_{tag}_expected.safetensors"), expected,
                       {"torch": torch.__version__})
    print(f"wrote {2 * len(CASES) * len(DTYPES)} optimizer state reference files to {out_dir}")


def check(out_dir):
    torch.set_num_threads(1)
    problems = []
    for case in CASES:
        for tag, dtype in DTYPES.items():
            tol = 1e-12 if dtype == torch.float64 else 2e-6
            metadata, stored, _ = read_file(os.path.join(out_dir, f"optstate_{case}_{tag}_from_asrkit.safetensors"))
            stored = {k: decode(*v) for k, v in stored.items()}
            model = net(dtype, 2)
            model.load_state_dict({k: v for k, v in stored.items() if not k.startswith("optimizer.")}, strict=True)
            opt = OTHER[case](model.parameters())
            opt.load_state_dict(torch_optimizer_state.unflatten(opt, stored, metadata))
            ref_model, ref_opt = run(case, dtype, STEPS + RESUME)

            def compare(what, a, b):
                a, b = torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64)
                if a.shape != b.shape:
                    problems.append(f"{case} {tag}: {what}: shape {tuple(a.shape)} vs {tuple(b.shape)}")
                elif a.numel() and ((a - b).abs() / b.abs().clamp(min=1)).max().item() > tol:
                    problems.append(f"{case} {tag}: {what}: max error {(a - b).abs().max().item():.3g}")

            compare("parameters", flat_params(model), flat_params(ref_model))
            ours, theirs = opt.state_dict(), ref_opt.state_dict()

            def with_tensors(state):  # SGD without momentum keeps momentum_buffer = None
                return sorted(k for k, entry in state.items() if any(v is not None for v in entry.values()))

            if with_tensors(ours["state"]) != with_tensors(theirs["state"]):
                problems.append(f"{case} {tag}: state for parameters {with_tensors(ours['state'])}, "
                                f"PyTorch has {with_tensors(theirs['state'])}")
            for k, entry in theirs["state"].items():
                for key, value in entry.items():
                    if value is None:
                        continue
                    if key not in ours["state"].get(k, {}):
                        problems.append(f"{case} {tag}: state {k} has no {key}")
                    else:
                        compare(f"state {k} {key}", ours["state"][k][key], value)
            for key, value in theirs["param_groups"][0].items():
                if ours["param_groups"][0][key] != value:
                    problems.append(f"{case} {tag}: option {key} is {ours['param_groups'][0][key]}, expected {value}")
            x, y = data(dtype)
            train_step(model, opt, x, y)  # the loaded state works in torch.optim
            train_step(ref_model, ref_opt, x, y)
            compare("parameters after one more step", flat_params(model), flat_params(ref_model))
    if problems:
        print("optimizer state check FAILED:\n  " + "\n  ".join(problems), file=sys.stderr)
        sys.exit(1)
    print(f"optimizer state: {len(CASES) * len(DTYPES)} asrkit checkpoints load into torch.optim "
          "with PyTorch's own state, options and next step")


if __name__ == "__main__":
    {"make": make, "check": check}[sys.argv[1]](sys.argv[2])
