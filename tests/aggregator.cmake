# Aggregator tests: tests/aggregator/test_*.c link the aggregator's library (hvs_agg). Names
# ending in _it run hvs-aggregator against real services (label "integration"); the rest are
# unit tests. offline_aggregate.py is the independent recomputation the simulator test uses.
file(GLOB HVS_AGG_TESTS CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/aggregator/test_*.c)
file(GLOB HVS_AGG_TEST_SUPPORT CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/aggregator/agg_*.c)
add_library(hvs_agg_test_support STATIC ${HVS_AGG_TEST_SUPPORT})
target_include_directories(hvs_agg_test_support PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/aggregator)
target_link_libraries(hvs_agg_test_support PUBLIC hvs_test_support hvs_agg hvs::common PkgConfig::JANSSON)
hvs_target_defaults(hvs_agg_test_support)
foreach(t ${HVS_AGG_TESTS})
  get_filename_component(name ${t} NAME_WE)
  set(label unit)
  if(name MATCHES "_it$")
    set(label integration)
  endif()
  add_executable(${name} ${t})
  target_link_libraries(${name} PRIVATE hvs_agg_test_support hvs_test_support hvs_agg)
  target_compile_definitions(${name} PRIVATE
    HVS_TEST_AGGREGATOR="${PROJECT_BINARY_DIR}/bin/hvs-aggregator"
    HVS_TEST_SIMULATOR="${PROJECT_BINARY_DIR}/bin/hvs-simulator"
    HVS_TEST_OFFLINE_AGG="${CMAKE_CURRENT_SOURCE_DIR}/aggregator/offline_aggregate.py")
  hvs_target_defaults(${name})
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES LABELS ${label} TIMEOUT 600)
  foreach(exe hvs-aggregator hvs-simulator hvsctl)
    if(TARGET ${exe})
      add_dependencies(${name} ${exe})
    endif()
  endforeach()
endforeach()

# The simulator's messy stream aggregated undisturbed, under kill -9 and across a rebalance,
# compared with each other and with the independent offline recomputation.
if(HVS_PYTHON3)
  add_test(NAME test_aggregator_sim_it
           COMMAND ${HVS_PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/aggregator/aggregator_sim_test.py
                   ${PROJECT_BINARY_DIR} ${PROJECT_SOURCE_DIR})
  set_tests_properties(test_aggregator_sim_it PROPERTIES LABELS integration TIMEOUT 900)
endif()
