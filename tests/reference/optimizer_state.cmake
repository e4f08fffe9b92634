# Optimizer state exchanged with torch.optim both ways: PyTorch's checkpoint (model state_dict +
# flattened optimizer.state_dict()) resumes in asrkit on PyTorch's trajectory, and asrkit's
# checkpoint loads into torch.optim with PyTorch's own state (see optimizer_state_reference.py).
asrkit_add_parity_test(optimizer_state SCRIPT optimizer_state_reference.py
                       SCRIPT_ARGS make ${ASRKIT_TEST_DATA}
                       SOURCES optimizer_state_parity.cpp
                       CHECK_ARGS check ${ASRKIT_TEST_DATA})
