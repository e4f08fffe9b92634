# Linear, Conv1d, Conv2d, activations and softmax against PyTorch (forward, input and weight grads).
asrkit_add_parity_test(layers_a SCRIPT layers_a_reference.py SCRIPT_ARGS ${ASRKIT_TEST_DATA}
                       SOURCES layers_a_parity.cpp)
