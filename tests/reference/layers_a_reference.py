#!/usr/bin/env python3
"""PyTorch reference for asrkit's Linear, Conv1d, Conv2d, activations and (log-)softmax.

Usage: layers_a_reference.py OUT_DIR    writes OUT_DIR/layers_a_<case>_<f32|f64>.safetensors with
  the module's state_dict tensors under their own names ("weight", "bias"), "input", "output",
  "grad_output" (a fixed random upstream gradient), "grad_input" (d <output, grad_output> / d input)
  and "grad.<name>" for every parameter. The C++ side (layers_a_parity.cpp) builds the same
  module from the case name, loads the weights through for_each_parameter by these names, and
  compares forward and backward.
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st_io  # noqa: E402

nn = torch.nn

# name: (module factory, input shape, input scale). Keep in sync with layers_a_parity.cpp.
CASES = {
    "linear": (lambda: nn.Linear(20, 12), (5, 3, 20), 1.0),
    "linear_nobias": (lambda: nn.Linear(7, 4, bias=False), (6, 7), 1.0),
    "conv1d": (lambda: nn.Conv1d(4, 6, 3, stride=2, padding=1, dilation=2), (2, 4, 17), 1.0),
    "conv1d_depthwise": (lambda: nn.Conv1d(6, 6, 5, padding=2, groups=6), (2, 6, 12), 1.0),
    "conv2d": (lambda: nn.Conv2d(3, 4, (3, 5), stride=(2, 1), padding=(1, 2)), (2, 3, 9, 11), 1.0),
    "conv2d_groups_dilation": (lambda: nn.Conv2d(4, 6, 3, padding=2, dilation=2, groups=2),
                               (2, 4, 8, 7), 1.0),
    "conv2d_depthwise": (lambda: nn.Conv2d(4, 8, 3, stride=2, padding=1, groups=4, bias=False),
                         (1, 4, 7, 7), 1.0),
    "conv2d_ds2": (lambda: nn.Conv2d(1, 8, (41, 11), stride=(2, 2), padding=(20, 5)),
                   (1, 1, 61, 40), 1.0),
    "relu": (lambda: nn.ReLU(), (4, 5, 6), 5.0),
    "clipped_relu": (lambda: nn.Hardtanh(0.0, 20.0), (4, 5, 6), 15.0),
    "selu": (lambda: nn.SELU(), (4, 5, 6), 3.0),
    "swish": (lambda: nn.SiLU(), (4, 5, 6), 3.0),
    "tanh": (lambda: nn.Tanh(), (4, 5, 6), 2.0),
    "sigmoid": (lambda: nn.Sigmoid(), (4, 5, 6), 3.0),
    "glu": (lambda: nn.GLU(dim=-1), (4, 5, 6), 2.0),
    "softmax": (lambda: nn.Softmax(dim=-1), (3, 4, 10), 3.0),
    "log_softmax": (lambda: nn.LogSoftmax(dim=-1), (3, 4, 10), 3.0),
}


def main(out_dir):
    torch.set_num_threads(1)
    for i, (name, (factory, shape, scale)) in enumerate(CASES.items()):
        torch.manual_seed(1000 + i)
        module64 = factory().to(torch.float64)
        x64 = torch.randn(*shape, dtype=torch.float64) * scale
        with torch.no_grad():
            g64 = torch.randn_like(module64(x64))
        # The f32 file holds the same weights and inputs rounded to float.
        for dtype, tag in ((torch.float32, "f32"), (torch.float64, "f64")):
            module = factory().to(dtype)
            module.load_state_dict({k: v.to(dtype) for k, v in module64.state_dict().items()})
            x = x64.to(dtype).clone().requires_grad_(True)
            y = module(x)
            y.backward(g64.to(dtype))
            tensors = {k: v.detach().numpy() for k, v in module.state_dict().items()}
            tensors.update({"input": x.detach().numpy(), "output": y.detach().numpy(),
                            "grad_output": g64.to(dtype).numpy(), "grad_input": x.grad.numpy()})
            for k, p in module.named_parameters():
                tensors["grad." + k] = p.grad.numpy()
            st_io.save(os.path.join(out_dir, f"layers_a_{name}_{tag}.safetensors"), tensors,
                       {"case": name, "torch": torch.__version__})
    print(f"wrote {2 * len(CASES)} layer reference files to {out_dir}")


if __name__ == "__main__":
    main(sys.argv[1])
