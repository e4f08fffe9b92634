asrkit_add_parity_test(frontend SCRIPT frontend_reference.py SCRIPT_ARGS ${ASRKIT_TEST_DATA}
                       SOURCES frontend_parity.cpp)
if(ASRKIT_WITH_FFTW)  # the same parity with FFTW as Eigen's FFT backend
  asrkit_add_parity_test(frontend_fftw SCRIPT frontend_reference.py SCRIPT_ARGS ${ASRKIT_TEST_DATA}
                         SOURCES frontend_parity.cpp)
  target_link_libraries(test_parity_frontend_fftw PRIVATE asrkit::fftw)
endif()
