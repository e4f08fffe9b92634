# RowConvolution vs torch.nn.Conv1d(groups = d) on the per-item zero-padded input, and
# RandomWalkSmoothing (walk + affinity loss) vs a dense PyTorch implementation; forward and grads.
asrkit_add_parity_test(rowconv SCRIPT rowconv_reference.py SCRIPT_ARGS ${ASRKIT_TEST_DATA}
                       SOURCES rowconv_parity.cpp)
