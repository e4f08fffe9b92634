asrkit_add_parity_test(ctc SCRIPT ctc_reference.py SCRIPT_ARGS ${ASRKIT_TEST_DATA} SOURCES ctc_parity.cpp)
