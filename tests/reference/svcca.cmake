# CCA, SVCCA and PWCCA against an independent numpy implementation of cca_core's semantics
# (svcca_reference.py): random and correlated data, N >> D and N ~ 2-3 D, float and double.
asrkit_add_parity_test(svcca SCRIPT svcca_reference.py SCRIPT_ARGS ${ASRKIT_TEST_DATA}
                       SOURCES svcca_parity.cpp)
