# Unit tests of pure library code again under valgrind's memcheck (label "valgrind"): leaks and
# invalid accesses fail the test. Services-heavy tests are covered by the ASan/LSan pass instead
# (valgrind slows librdkafka's threads too much for their timeouts). test_serde is not here:
# its fuzz cases make libavro call malloc with a negative size, which valgrind counts as an
# error although libavro handles the failure; ASan (allocator_may_return_null=1) covers it.
find_program(VALGRIND_BIN valgrind)
if(VALGRIND_BIN)
  foreach(t test_config test_time test_metrics test_reading test_calendar test_vec test_fmt test_features test_fx_engine test_fx_output test_agg_windows
            test_sim_delivery test_sim_weather)
    if(TARGET ${t})
      add_test(NAME valgrind_${t}
               COMMAND ${VALGRIND_BIN} --quiet --error-exitcode=99 --leak-check=full
                       --errors-for-leak-kinds=definite,indirect $<TARGET_FILE:${t}>)
      set_tests_properties(valgrind_${t} PROPERTIES LABELS "valgrind" TIMEOUT 300)
    endif()
  endforeach()
endif()
