# WAV parity with Python's `wave` module: Python writes, asrkit reads; asrkit writes, Python
# checks (see wav_reference.py).
asrkit_add_parity_test(wav SCRIPT wav_reference.py
                       SCRIPT_ARGS make ${ASRKIT_TEST_DATA}
                       SOURCES wav_parity.cpp
                       CHECK_ARGS check ${ASRKIT_TEST_DATA})
