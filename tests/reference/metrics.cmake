# WER parity with NIST sclite (Debian package `sctk`): Python writes trn files and runs sclite,
# asrkit must count the same C/S/D/I per utterance and in total (see metrics_reference.py).
asrkit_add_parity_test(metrics SCRIPT metrics_reference.py
                       SCRIPT_ARGS make ${ASRKIT_TEST_DATA}
                       SOURCES metrics_parity.cpp)
