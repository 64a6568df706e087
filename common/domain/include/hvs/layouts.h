/*
 * layouts.h - the binary layouts hvacstream's direct Avro readers and writers (wire.h) were
 * written for, in hvs_serde_layout's form (serde.h).
 *
 * Each direct reader or writer is on only while the current schema of its record
 * (schemas/<Record>.avsc) renders to its string here (hvs_serde_has_layout); after a schema
 * change it stays off - avro-c's generic path takes every message - and the tests that require
 * it on fail until the code and its string here are updated together.
 *   Reading        hvs_reading_decode (reading.c)
 *   Aggregate      the aggregator's writer (workers/aggregator/output.c), the feature worker's
 *                  reader (workers/features/input.c)
 *   FeatureVector  the feature worker's writer (workers/features/vectors.c, also checked
 *                  byte for byte against avro-c at start), the scorer's reader
 *                  (workers/scorer/input.c)
 */
#ifndef HVS_LAYOUTS_H
#define HVS_LAYOUTS_H

#define HVS_LAYOUT_READING                                                                         \
    "Reading{building_id:string,apartment_id:string,timestamp:long,readings:array<SensorReading{"  \
    "sensor_type:string,room_name:null|string,value:double}>,device_id:null|string,ingested_at:"   \
    "null|long,source:null|string}"

#define HVS_LAYOUT_AGGREGATE                                                                       \
    "Aggregate{building_id:string,apartment_id:null|string,window_start:long,window_end:long,"     \
    "window_size_ms:long,revision:int,heating_kwh:null|double,hot_water_litres:null|double,"       \
    "room_temp_mean_c:null|double,room_temp_min_c:null|double,room_temp_max_c:null|double,"        \
    "setpoint_mean_c:null|double,comfort_gap_mean_c:null|double,readings_expected:int,"            \
    "readings_seen:int,reporting_apartments:null|int,known_apartments:null|int,"                   \
    "quality:enum(COMPLETE,PARTIAL,SILENT,INTERPOLATED,UNKNOWN),flags:array<string>,"              \
    "emitted_at:long,rooms:array<RoomStats{room:string,temp_mean_c:null|double,"                   \
    "temp_min_c:null|double,temp_max_c:null|double,temp_std_c:null|double,"                        \
    "setpoint_mean_c:null|double,valve_mean_pct:null|double,readings_seen:int,"                    \
    "temp_changes:int}>,uncounted_kwh:null|double}"

#define HVS_LAYOUT_FEATURE_VECTOR                                                                  \
    "FeatureVector{building_id:string,apartment_id:null|string,target_hour:long,as_of:long,"       \
    "feature_set_version:string,names:array<string>,values:array<double>,target:null|double,"      \
    "quality_flags:array<string>,revision:int}"

#endif
