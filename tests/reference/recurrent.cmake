# RNN, GRU, LSTM (torch.nn on packed batches) and DS2's GRU / BN-RNN conventions (explicit-loop
# reference modules) against PyTorch: output, input and parameter gradients, BN running stats.
asrkit_add_parity_test(recurrent SCRIPT recurrent_reference.py SCRIPT_ARGS ${ASRKIT_TEST_DATA}
                       SOURCES recurrent_parity.cpp)
