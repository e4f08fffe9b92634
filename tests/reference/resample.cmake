# Resampling parity with SoX: Python writes a sine sweep and SoX's `rate -v` output, asrkit
# resamples the sweep and compares (see resample_reference.py). Needs the `sox` program.
asrkit_add_parity_test(resample SCRIPT resample_reference.py
                       SCRIPT_ARGS make ${ASRKIT_TEST_DATA}
                       SOURCES resample_parity.cpp)
