# Norms, optimizers and clipping against PyTorch: BatchNorm1d (training steps with running
# statistics, eval), LayerNorm, torch.optim SGD/Adam/AdamW trajectories, clip_grad_norm_ (see
# layers_b_reference.py).
asrkit_add_parity_test(layers_b SCRIPT layers_b_reference.py SCRIPT_ARGS ${ASRKIT_TEST_DATA}
                       SOURCES layers_b_parity.cpp)
