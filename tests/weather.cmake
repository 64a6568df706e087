# Weather tests: tests/weather/test_*.c link the weather worker's library (hvs_weather). Names
# ending in _it run hvs-weather against real services (label "integration"); the rest are unit
# tests. tests/weather/wx_*.c is the loopback Open-Meteo test server the integration test and
# bench/bench_weather.c share.
file(GLOB HVS_WX_TESTS CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/weather/test_*.c)
file(GLOB HVS_WX_TEST_SUPPORT CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/weather/wx_*.c)
if(HVS_WX_TEST_SUPPORT)
  add_library(hvs_wx_test_support STATIC ${HVS_WX_TEST_SUPPORT})
  target_include_directories(hvs_wx_test_support PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/weather)
  target_link_libraries(hvs_wx_test_support PUBLIC hvs_test_support hvs_weather hvs::common
                        PkgConfig::JANSSON)
  hvs_target_defaults(hvs_wx_test_support)
endif()
foreach(t ${HVS_WX_TESTS})
  get_filename_component(name ${t} NAME_WE)
  set(label unit)
  if(name MATCHES "_it$")
    set(label integration)
  endif()
  add_executable(${name} ${t})
  target_link_libraries(${name} PRIVATE hvs_test_support hvs_weather PkgConfig::JANSSON)
  if(TARGET hvs_wx_test_support)
    target_link_libraries(${name} PRIVATE hvs_wx_test_support)
  endif()
  target_compile_definitions(${name} PRIVATE
    HVS_TEST_WEATHER="${PROJECT_BINARY_DIR}/bin/hvs-weather"
    HVS_TEST_SIMULATOR="${PROJECT_BINARY_DIR}/bin/hvs-simulator")
  hvs_target_defaults(${name})
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES LABELS ${label} TIMEOUT 600)
  foreach(exe hvs-weather hvs-simulator hvsctl)
    if(TARGET ${exe})
      add_dependencies(${name} ${exe})
    endif()
  endforeach()
endforeach()

# The pure unit tests again under valgrind's memcheck (label "valgrind", as tests/valgrind.cmake
# does for the common modules; registered here because that file is included before this one).
find_program(VALGRIND_BIN valgrind)
if(VALGRIND_BIN)
  foreach(t test_openmeteo test_wx_history)
    if(TARGET ${t})
      add_test(NAME valgrind_${t}
               COMMAND ${VALGRIND_BIN} --quiet --error-exitcode=99 --leak-check=full
                       --errors-for-leak-kinds=definite,indirect $<TARGET_FILE:${t}>)
      set_tests_properties(valgrind_${t} PROPERTIES LABELS "valgrind" TIMEOUT 300)
    endif()
  endforeach()
endif()
