# BN-LSTM (per-step and sequence-wise input BN, uni / bidirectional) and residual LSTM (learned
# and identity shortcut, with and without peepholes) against explicit-loop torch modules with
# variable lengths: outputs, input and parameter gradients, running statistics, inference beyond
# T_max (see bn_lstm_reference.py).
asrkit_add_parity_test(bn_lstm SCRIPT bn_lstm_reference.py SCRIPT_ARGS ${ASRKIT_TEST_DATA}
                       SOURCES bn_lstm_parity.cpp)
