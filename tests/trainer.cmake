# Trainer tests: tests/trainer/test_*.c link the trainer's library (hvs_tr) and the simulator's
# (hvs_sim: the quality test trains on a simulated fleet in process). Names ending in _it run
# hvs-trainer against real services (label "integration"); the rest are unit tests.
file(GLOB HVS_TR_TESTS CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/trainer/test_*.c)
foreach(t ${HVS_TR_TESTS})
  get_filename_component(name ${t} NAME_WE)
  set(label unit)
  if(name MATCHES "_it$")
    set(label integration)
  endif()
  if(name STREQUAL "test_train_quality")
    # minutes of training: run in the plain build (ctest -LE bench), not again under ASan;
    # the trainer's code runs under ASan in test_trainer_it
    set(label quality)
  endif()
  add_executable(${name} ${t})
  target_link_libraries(${name} PRIVATE hvs_test_support hvs_tr hvs_sim PkgConfig::JANSSON)
  target_include_directories(${name} PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/aggregator)
  if(name STREQUAL "test_task_rows")
    # encodes FeatureVectors with the features worker's own writer, as features.hourly gets them
    target_link_libraries(${name} PRIVATE hvs_fx)
  endif()
  target_compile_definitions(${name} PRIVATE
    HVS_TEST_TRAINER="${PROJECT_BINARY_DIR}/bin/hvs-trainer")
  hvs_target_defaults(${name})
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES LABELS ${label} TIMEOUT 900)
  if(name STREQUAL "test_train_quality")
    # it trains on both cores: beside another XGBoost test, OpenMP's spinning threads slow both
    # several-fold (CI saw a 10 s fit take 145 s)
    set_tests_properties(${name} PROPERTIES RUN_SERIAL TRUE)
  endif()
  foreach(exe hvs-trainer hvsctl)
    if(TARGET ${exe})
      add_dependencies(${name} ${exe})
    endif()
  endforeach()
endforeach()
