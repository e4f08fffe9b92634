# Deep Speech 2 (examples/ds2/ds2_model.hpp) against a PyTorch module with the same state_dict
# names: logits (training and inference), every parameter gradient, BN running statistics; the
# weights travel torch -> asrkit (strict load) and asrkit -> torch (strict=True in the :check step).
asrkit_add_parity_test(ds2 SCRIPT ds2_reference.py SCRIPT_ARGS make ${ASRKIT_TEST_DATA}
                       SOURCES ds2_parity.cpp
                       CHECK_ARGS check ${ASRKIT_TEST_DATA})
# nlohmann_json comes with asrkit::asrkit.
target_include_directories(test_parity_ds2 PRIVATE ${PROJECT_SOURCE_DIR}/examples/ds2)
