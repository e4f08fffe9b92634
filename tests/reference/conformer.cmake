# Feed-forward, Conformer convolution module, Transformer / Conformer / FusionFormer blocks and
# convolutional subsampling against our torch modules with ESPnet semantics (see
# conformer_reference.py): training forward, eval forward, input and parameter gradients.
asrkit_add_parity_test(conformer SCRIPT conformer_reference.py SCRIPT_ARGS ${ASRKIT_TEST_DATA}
                       SOURCES conformer_parity.cpp)
