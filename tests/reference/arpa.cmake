# ARPA n-gram parity: irstlm builds a 3-gram model, a pure-Python back-off scorer gives the
# reference sentence scores (see arpa_reference.py); needs Debian's irstlm package.
asrkit_add_parity_test(arpa SCRIPT arpa_reference.py
                       SCRIPT_ARGS make ${ASRKIT_TEST_DATA}
                       SOURCES arpa_parity.cpp)
