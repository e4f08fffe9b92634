# Real-recorded-speech evaluation sets (tools/make-eval-sets); needs the Debian packages
# asterisk-core-sounds-en-wav, asterisk-core-sounds-en, pocketsphinx-testdata and sox
# (the end-to-end part skips itself when they are missing). See docs/eval-sets.md.
add_test(NAME tools:eval_sets COMMAND ${ASRKIT_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/test_eval_sets.py ${PROJECT_SOURCE_DIR}/tools)
set_tests_properties(tools:eval_sets PROPERTIES LABELS "slow")
# CI installs the source packages: a missing one must fail, not skip.
set_tests_properties(tools:eval_sets PROPERTIES ENVIRONMENT "ASRKIT_REQUIRE_EVAL_SETS=1")
