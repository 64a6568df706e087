# Cross-check with an independent Avro implementation: Debian's python3-avro under /usr/bin/python3.
add_executable(hvs-serde-tool ${CMAKE_CURRENT_SOURCE_DIR}/tools/serde_tool.c)
target_link_libraries(hvs-serde-tool PRIVATE hvs::common)
hvs_target_defaults(hvs-serde-tool)
add_test(NAME avro_interop
         COMMAND ${HVS_PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/python/avro_interop.py
                 ${PROJECT_SOURCE_DIR} $<TARGET_FILE:hvs-serde-tool>)
set_tests_properties(avro_interop PROPERTIES LABELS unit TIMEOUT 120)
