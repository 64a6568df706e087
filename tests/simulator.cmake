# Simulator tests: tests/simulator/test_*.c link the simulator's library (hvs_sim) as well.
# Names ending in _it run the hvs-simulator executable or services (label "integration");
# the rest are unit tests.
file(GLOB HVS_SIM_TESTS CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/simulator/test_*.c)
foreach(t ${HVS_SIM_TESTS})
  get_filename_component(name ${t} NAME_WE)
  set(label unit)
  if(name MATCHES "_it$")
    set(label integration)
  endif()
  add_executable(${name} ${t})
  target_link_libraries(${name} PRIVATE hvs_test_support hvs_sim)
  target_compile_definitions(${name} PRIVATE
    HVS_TEST_SIMULATOR="${PROJECT_BINARY_DIR}/workers/simulator/hvs-simulator")
  hvs_target_defaults(${name})
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES LABELS ${label} TIMEOUT 600)
  if(TARGET hvs-simulator)
    add_dependencies(${name} hvs-simulator)
  endif()
endforeach()
