# hvs-sim-calibrate: the day-ahead XGBoost WAPE on simulated 50-flat buildings, asserted to lie
# in the band issue 3 asks for (real blocks: ~0.19-0.24; accepted 0.12-0.30).
# xgboost and zlib are found by the top-level CMakeLists (common links them)
if(TARGET hvs_sim)
  add_executable(hvs-sim-calibrate ${CMAKE_CURRENT_SOURCE_DIR}/tools/sim_calibrate.c)
  target_link_libraries(hvs-sim-calibrate PRIVATE hvs_sim PkgConfig::XGBOOST)
  hvs_target_defaults(hvs-sim-calibrate)
  add_test(NAME sim_calibration
           COMMAND hvs-sim-calibrate --seed 7 --days 180 --buildings 6 --apartments 50
                   --assert-range 0.12,0.30)
  set_tests_properties(sim_calibration PROPERTIES LABELS "integration;calibration" TIMEOUT 900)
endif()
