#!/usr/bin/env python3
"""PyTorch reference for asrkit's CTC loss: torch.nn.functional.ctc_loss on random batches.

Usage: ctc_reference.py OUT_DIR    writes OUT_DIR/ctc_<case>_<dtype>.safetensors with
  logits [T,B,V], log_probs (log_softmax of logits), targets [B,S] (padded, int32),
  input_lengths, target_lengths, losses (reduction none), loss_mean, grad_logits (d mean loss /
  d logits through log_softmax), grad_log_probs (what torch returns for a log_probs leaf).
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st_io  # noqa: E402

# name: (T, B, V, max L, blank, kind)
CASES = {
    "basic": (50, 4, 20, 12, 0, "random"),
    "repeats": (40, 3, 4, 15, 0, "repeats"),
    "blank_mid": (30, 5, 11, 8, 7, "random"),
    "empty": (20, 3, 6, 5, 2, "empty"),
    "limit": (12, 3, 5, 12, 0, "limit"),
    "long": (5000, 2, 29, 400, 0, "random"),
    "bigvocab": (60, 2, 5000, 20, 4999, "random"),
}


def make_targets(T, B, V, S, blank, kind, gen):
    labels = [v for v in range(V) if v != blank]
    targets = torch.zeros(B, S, dtype=torch.int32)
    tl, il = [], []
    for b in range(B):
        L = int(torch.randint(1, S + 1, (1,), generator=gen))
        if kind == "empty" and b != 1:
            L = 0
        if kind == "repeats":
            seq = [labels[int(torch.randint(0, 2, (1,), generator=gen))] for _ in range(L)]
        else:
            seq = [labels[int(i)] for i in torch.randint(0, len(labels), (L,), generator=gen)]
        if kind == "limit" and b == 0:  # all repeats: needs 2L - 1 frames, at most T
            L = min(L, (T + 1) // 2)
            seq = [labels[0]] * L
        needed = L + sum(1 for i in range(1, L) if seq[i] == seq[i - 1])
        while needed > T:  # keep every item feasible; the limit case then uses T = needed
            seq, L = seq[:-1], L - 1
            needed = L + sum(1 for i in range(1, L) if seq[i] == seq[i - 1])
        targets[b, :L] = torch.tensor(seq, dtype=torch.int32)
        if kind == "limit":
            frames = needed
        else:
            frames = int(torch.randint(max(needed, 1), T + 1, (1,), generator=gen))
        if b == 0 and kind != "limit":
            frames = T  # at least one item uses every frame
        tl.append(L)
        il.append(frames)
    return targets, torch.tensor(il), torch.tensor(tl)


def run_torch(logits, targets, il_t, tl_t, blank):
    x = logits.clone().requires_grad_(True)
    lp = torch.log_softmax(x, dim=2)
    loss_mean = torch.nn.functional.ctc_loss(lp, targets.long(), il_t, tl_t, blank=blank,
                                             reduction="mean")
    loss_mean.backward()
    lp_leaf = torch.log_softmax(logits, dim=2).detach().requires_grad_(True)
    loss_lp = torch.nn.functional.ctc_loss(lp_leaf, targets.long(), il_t, tl_t, blank=blank,
                                           reduction="mean")
    loss_lp.backward()
    losses = torch.nn.functional.ctc_loss(lp_leaf.detach(), targets.long(), il_t, tl_t,
                                          blank=blank, reduction="none")
    return {
        "logits": logits.numpy(),
        "log_probs": lp_leaf.detach().numpy(),
        "targets": targets.numpy(),
        "input_lengths": il_t.to(torch.int32).numpy(),
        "target_lengths": tl_t.to(torch.int32).numpy(),
        "losses": losses.detach().numpy(),
        "loss_mean": loss_mean.detach().reshape(1).numpy(),
        "grad_logits": x.grad.numpy(),
        "grad_log_probs": lp_leaf.grad.numpy(),
    }


def main(out_dir):
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(1234)
    for name, (T, B, V, S, blank, kind) in CASES.items():
        targets, il, tl = make_targets(T, B, V, S, blank, kind, gen)
        logits64 = torch.randn(T, B, V, generator=gen, dtype=torch.float64)
        # The f32 case holds the same inputs rounded to float, so the C++ test can measure
        # asrkit's and PyTorch's float32 errors against the float64 results.
        for dtype, tag in ((torch.float32, "f32"), (torch.float64, "f64")):
            tensors = run_torch(logits64.to(dtype), targets, il, tl, blank)
            st_io.save(os.path.join(out_dir, f"ctc_{name}_{tag}.safetensors"), tensors,
                       {"blank": blank, "torch": torch.__version__})
    print(f"wrote {len(CASES) * 2} CTC reference files to {out_dir}")


if __name__ == "__main__":
    main(sys.argv[1])
