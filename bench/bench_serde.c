/*
 * Encode and decode of a Reading with 6 readings through the serde layer (wire header
 * included, encoder/decoder reused as workers do): records/s and ns per record; and the direct
 * reader (hvs_reading_decode, wire.h) on the same bytes.
 */
#include "hvs/log.h"
#include "hvs/reading.h"
#include "hvs/serde.h"
#include "hvs_test.h"

#define N 1000000

int main(void) {
    hvs_log_init("bench", HVS_LOG_ERROR, NULL);
    hvs_serde_t *s;
    hvs_err_t err;
    HVS_REQUIRE(hvs_serde_new(NULL, &s, &err) == 0, "serde");
    hvs_reading_codec_t *c;
    HVS_REQUIRE(hvs_reading_codec_new(s, &c, &err) == 0, "codec");
    const char *line =
        "{\"timestamp_str\": \"2024-10-27T10:30:00Z\", \"building_id\": \"bldg_A123\", "
        "\"apartment_id\": \"apt_404\", \"readings\": [{\"sensor_type\": \"heating_energy_kwh\", "
        "\"value\": 15432.7}, {\"sensor_type\": \"hot_water_litres\", \"value\": 89541.2}, "
        "{\"sensor_type\": \"room_temp_c\", \"room_name\": \"living_room\", \"value\": 21.5}, "
        "{\"sensor_type\": \"setpoint_temp_c\", \"room_name\": \"living_room\", \"value\": 22.0}, "
        "{\"sensor_type\": \"room_temp_c\", \"room_name\": \"bedroom\", \"value\": 19.5}, "
        "{\"sensor_type\": \"setpoint_temp_c\", \"room_name\": \"bedroom\", \"value\": 20.0}]}";
    static hvs_reading_t r;
    HVS_REQUIRE(hvs_reading_parse_json(line, strlen(line), &r, &err) == 0 && r.n == 6, "parse");
    hvs_encoder_t *e;
    HVS_REQUIRE(hvs_encoder_new(s, HVS_SCHEMA_READING, NULL, &e, &err) == 0, "encoder");
    const void *buf = NULL;
    size_t len = 0;
    int64_t t0 = hvs_test_now_ms();
    for (int i = 0; i < N; i++) {
        r.timestamp = 1730025000000 + i;
        hvs_reading_to_avro(c, &r, NULL, HVS_MS_NONE, hvs_encoder_value(e), NULL);
        if (hvs_encoder_encode(e, &buf, &len, &err) != 0)
            return 1;
    }
    int64_t t1 = hvs_test_now_ms();
    unsigned char copy[512];
    memcpy(copy, buf, len);
    hvs_decoder_t *d;
    HVS_REQUIRE(hvs_decoder_new(s, HVS_SCHEMA_READING, &d, &err) == 0, "decoder");
    static hvs_reading_t out;
    avro_value_t *v;
    int64_t t2 = hvs_test_now_ms();
    for (int i = 0; i < N; i++)
        if (hvs_decoder_decode(d, copy, len, &v, &err) != 0 ||
            hvs_reading_from_avro(c, v, &out, &err) != 0)
            return 1;
    int64_t t3 = hvs_test_now_ms();
    for (int i = 0; i < N; i++)
        if (hvs_decoder_decode(d, copy, len, &v, &err) != 0)
            return 1;
    int64_t t4 = hvs_test_now_ms();
    static hvs_reading_t fast;
    bool direct = false;
    for (int i = 0; i < N; i++)
        if (hvs_reading_decode(c, d, copy, len, &fast, &direct, &err) != 0 || !direct)
            return 1;
    int64_t t5 = hvs_test_now_ms();
    double fast_s = (double)(t5 - t4) / 1000;
    double enc_s = (double)(t1 - t0) / 1000, dec_s = (double)(t3 - t2) / 1000;
    double raw_s = (double)(t4 - t3) / 1000;
    printf("bench_serde: Reading with 6 readings, %zu bytes on the wire, %d records\n", len, N);
    printf("  encode (struct -> Avro value -> wire bytes): %.0f records/s, %.0f ns/record\n",
           N / enc_s, enc_s * 1e9 / N);
    printf("  decode (wire bytes -> Avro value -> struct): %.0f records/s, %.0f ns/record\n",
           N / dec_s, dec_s * 1e9 / N);
    printf("  decode only (wire bytes -> Avro value, bounds pre-check included): %.0f records/s, "
           "%.0f ns/record\n",
           N / raw_s, raw_s * 1e9 / N);
    printf("  decode direct (hvs_reading_decode: wire bytes -> struct, wire.h): %.0f records/s, "
           "%.0f ns/record\n",
           N / fast_s, fast_s * 1e9 / N);
    HVS_CHECK(fast.n == 6 && strcmp(fast.v[5].room_name, "bedroom") == 0 && fast.v[5].value == 20.0,
              "the direct reader read what was encoded");
    HVS_CHECK(out.n == 6 && strcmp(out.building_id, "bldg_A123") == 0, "decoded what was encoded");
    hvs_decoder_destroy(d);
    hvs_encoder_destroy(e);
    hvs_reading_codec_destroy(c);
    hvs_serde_destroy(s);
    return hvs_test_done();
}
