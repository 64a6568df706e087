# Flaky on the mock broker (see the file's top comment): built and registered, not in the
# default run (scripts/test.sh excludes the label).
add_executable(test_kafka_rebalance ${CMAKE_CURRENT_SOURCE_DIR}/integration/rebalance_test.c)
target_link_libraries(test_kafka_rebalance PRIVATE hvs_test_support hvs::common)
hvs_target_defaults(test_kafka_rebalance)
add_test(NAME test_kafka_rebalance COMMAND test_kafka_rebalance)
set_tests_properties(test_kafka_rebalance PROPERTIES LABELS mock_flaky TIMEOUT 300)
