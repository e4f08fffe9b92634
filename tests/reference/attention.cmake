# MultiHeadAttention vs torch.nn.MultiheadAttention (key_padding_mask + attn_mask) and
# RelPositionMultiHeadAttention / positional encodings vs our torch reference of ESPnet's
# relative attention: forward, input gradient and every parameter gradient.
asrkit_add_parity_test(attention SCRIPT attention_reference.py SCRIPT_ARGS ${ASRKIT_TEST_DATA}
                       SOURCES attention_parity.cpp)
