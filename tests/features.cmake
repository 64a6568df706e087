# Feature worker tests: tests/features/test_*.c link the worker's library (hvs_fx). Names
# ending in _it run hvs-features against real services (label "integration"); the rest are
# unit tests.
file(GLOB HVS_FX_TESTS CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/features/test_*.c)
foreach(t ${HVS_FX_TESTS})
  get_filename_component(name ${t} NAME_WE)
  set(label unit)
  if(name MATCHES "_it$")
    set(label integration)
  endif()
  add_executable(${name} ${t})
  target_link_libraries(${name} PRIVATE hvs_test_support hvs_agg_test_support hvs_fx PkgConfig::JANSSON)
  target_include_directories(${name} PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/aggregator)
  target_compile_definitions(${name} PRIVATE
    HVS_TEST_FEATURES="${PROJECT_BINARY_DIR}/bin/hvs-features")
  hvs_target_defaults(${name})
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES LABELS ${label} TIMEOUT 600)
  foreach(exe hvs-features hvsctl)
    if(TARGET ${exe})
      add_dependencies(${name} ${exe})
    endif()
  endforeach()
endforeach()
