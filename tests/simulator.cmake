# Simulator tests: tests/simulator/test_*.c link the simulator's library (hvs_sim) as well.
# Names ending in _it run the hvs-simulator executable or services (label "integration");
# the rest are unit tests.
# tests/simulator/sim_*.c are support code (reading the simulator's outputs back), linked into
# every simulator test.
file(GLOB HVS_SIM_TESTS CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/simulator/test_*.c)
file(GLOB HVS_SIM_TEST_SUPPORT CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/simulator/sim_*.c)
add_library(hvs_sim_test_support STATIC ${HVS_SIM_TEST_SUPPORT})
target_include_directories(hvs_sim_test_support PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/simulator)
target_link_libraries(hvs_sim_test_support PUBLIC hvs::common PkgConfig::JANSSON m)
hvs_target_defaults(hvs_sim_test_support)
foreach(t ${HVS_SIM_TESTS})
  get_filename_component(name ${t} NAME_WE)
  set(label unit)
  if(name MATCHES "_it$")
    set(label integration)
  endif()
  add_executable(${name} ${t})
  target_link_libraries(${name} PRIVATE hvs_test_support hvs_sim hvs_sim_test_support)
  target_compile_definitions(${name} PRIVATE
    HVS_TEST_SIMULATOR="${PROJECT_BINARY_DIR}/bin/hvs-simulator")
  hvs_target_defaults(${name})
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES LABELS ${label} TIMEOUT 600)
  if(TARGET hvs-simulator)
    add_dependencies(${name} hvs-simulator)
  endif()
endforeach()
