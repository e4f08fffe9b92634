"""torch.optim state <-> asrkit checkpoint entries (include/asrkit/train/checkpoint.hpp).

asrkit stores an optimizer's state as PyTorch's ``optimizer.state_dict()`` flattened with '.'
under "optimizer.", the way a module's state_dict names nest:

    tensors   "optimizer.state.<k>.<key>"              e.g. optimizer.state.0.exp_avg
    metadata  "optimizer.param_groups.0.<option>"      JSON literals, e.g. "0.001", "[0.9,0.999]"

``k`` is the parameter's index in ``model.parameters()`` order, which is the order of the
model's state_dict and of asrkit's for_each_parameter.

    tensors, metadata = flatten(optimizer)             # PyTorch -> a checkpoint
    safetensors.torch.save_file({**model.state_dict(), **tensors}, path, metadata)

    optimizer.load_state_dict(unflatten(optimizer, tensors, metadata))   # checkpoint -> PyTorch

Only a single param group is supported (as asrkit's optimizers have one). Options asrkit does not
store (foreach, capturable, ...) keep the PyTorch optimizer's own values.
"""
import json

import torch

PREFIX = "optimizer"


def flatten(optimizer, prefix=PREFIX):
    """-> (tensors, metadata): the optimizer's state dict as checkpoint entries."""
    sd = optimizer.state_dict()
    if len(sd["param_groups"]) != 1:
        raise ValueError(f"asrkit optimizers have one param group, this optimizer has {len(sd['param_groups'])}")
    tensors = {}
    for k, state in sd["state"].items():
        for key, value in state.items():
            if value is None:  # SGD without momentum keeps momentum_buffer = None
                continue
            if key == "step":  # a count: rank 0 float32 (capturable/fused Adam keep shape (1,))
                value = torch.as_tensor(value, dtype=torch.float32).reshape(())
            tensors[f"{prefix}.state.{k}.{key}"] = value.detach().clone().contiguous()
    metadata = {f"{prefix}.param_groups.0.{key}": json.dumps(value, separators=(",", ":"))
                for key, value in sd["param_groups"][0].items()}
    return tensors, metadata


def unflatten(optimizer, tensors, metadata, prefix=PREFIX):
    """-> a state dict for ``optimizer.load_state_dict`` from checkpoint entries (tensors: name ->
    torch tensor, metadata: name -> str). Options absent from the file keep the optimizer's."""
    sd = optimizer.state_dict()
    groups = sd["param_groups"]
    if len(groups) != 1:
        raise ValueError(f"asrkit optimizers have one param group, this optimizer has {len(groups)}")
    group = dict(groups[0])
    head = f"{prefix}.param_groups.0."
    found = {name[len(head):]: json.loads(text) for name, text in metadata.items() if name.startswith(head)}
    if not found:
        raise ValueError(f"the metadata has no optimizer param group ('{head}*')")
    for key, value in found.items():
        if key in group:  # options this optimizer does not have (another kind's) are left out
            group[key] = tuple(value) if key == "betas" else value
    if list(group["params"]) != list(groups[0]["params"]):
        raise ValueError(f"the file lists parameters {group['params']}, the optimizer has {groups[0]['params']}")
    state = {}
    head = f"{prefix}.state."
    for name, value in tensors.items():
        if name.startswith(head):
            k, key = name[len(head):].split(".", 1)
            if key == "step":  # torch keeps steps float32 (asrkit<double> writes F64)
                value = value.to(torch.float32)
            state.setdefault(int(k), {})[key] = value
    return {"state": state, "param_groups": [group]}
