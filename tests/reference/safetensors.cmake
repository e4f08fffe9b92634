# safetensors: Python (json + struct + torch/numpy, no asrkit) writes files asrkit must read, and
# checks the file the C++ test writes.
asrkit_add_parity_test(safetensors SCRIPT safetensors_reference.py
                       SCRIPT_ARGS make ${ASRKIT_TEST_DATA}
                       SOURCES safetensors_parity.cpp
                       CHECK_ARGS check ${ASRKIT_TEST_DATA})
