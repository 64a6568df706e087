/*
 * hvsctl ingest: JSON lines/s of the real process against hvs-devbroker (wall time, process
 * start and Kafka acknowledgements included), and the in-process parse + validate + encode rate.
 */
#include "hvs/log.h"
#include "hvs/reading.h"
#include "hvs/serde.h"
#include "hvs_test.h"

#define LINES 200000

int main(void) {
    hvs_log_init("bench", HVS_LOG_ERROR, NULL);
    char path[] = "/tmp/hvs-bench-ingest-XXXXXX";
    int fd = mkstemp(path);
    HVS_REQUIRE(fd >= 0, "tmp");
    FILE *f = fdopen(fd, "w");
    for (int i = 0; i < LINES; i++)
        fprintf(f,
                "{\"timestamp_str\": \"2024-10-27T%02d:%02d:00Z\", \"building_id\": \"bldg_%d\", "
                "\"apartment_id\": \"apt_%d\", \"readings\": [{\"sensor_type\": "
                "\"heating_energy_kwh\", \"value\": %.1f}, {\"sensor_type\": \"room_temp_c\", "
                "\"room_name\": \"living_room\", \"value\": %.1f}, {\"sensor_type\": "
                "\"setpoint_temp_c\", \"room_name\": \"living_room\", \"value\": 21.5}]}\n",
                (i / 4) % 24, (i % 4) * 15, i % 120, i % 3000, 10000 + i * 0.1,
                18 + (i % 50) * 0.1);
    fclose(f);

    /* in-process */
    hvs_serde_t *s;
    hvs_err_t err;
    HVS_REQUIRE(hvs_serde_new(NULL, &s, &err) == 0, "serde");
    hvs_reading_codec_t *c;
    hvs_encoder_t *e;
    HVS_REQUIRE(hvs_reading_codec_new(s, &c, &err) == 0 &&
                    hvs_encoder_new(s, HVS_SCHEMA_READING, NULL, &e, &err) == 0,
                "codec");
    FILE *in = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    static hvs_reading_t r;
    long ok = 0;
    hvs_ms_t now = hvs_time_now_ms();
    int64_t t0 = hvs_test_now_ms();
    while ((len = getline(&line, &cap, in)) > 0) {
        const void *buf;
        size_t blen;
        if (hvs_reading_parse_json(line, (size_t)len, &r, &err) == 0 &&
            hvs_reading_validate(&r, now, HVS_MS_DAY, &err) == 0 &&
            hvs_reading_to_avro(c, &r, "bench", now, hvs_encoder_value(e), &err) == 0 &&
            hvs_encoder_encode(e, &buf, &blen, &err) == 0)
            ok++;
    }
    double inproc = (double)(hvs_test_now_ms() - t0) / 1000;
    free(line);
    fclose(in);
    HVS_CHECK_EQ_INT(ok, LINES);
    hvs_encoder_destroy(e);
    hvs_reading_codec_destroy(c);
    hvs_serde_destroy(s);

    /* the real process */
    hvs_test_proc_t broker;
    HVS_REQUIRE(hvs_test_devbroker_start(&broker, NULL) == 0, "devbroker");
    char cmd[512];
    snprintf(cmd, sizeof cmd, "HVS_KAFKA_BROKERS=%s %s ingest %s", broker.addr, HVS_TEST_HVSCTL,
             path);
    char *out = NULL;
    t0 = hvs_test_now_ms();
    int rc = hvs_test_run(cmd, NULL, 0, &out, NULL);
    double proc = (double)(hvs_test_now_ms() - t0) / 1000;
    char want[64];
    snprintf(want, sizeof want, "accepted %d", LINES);
    HVS_CHECK(rc == 0 && out && strstr(out, want), "ingest: %d %s", rc, out ? out : "");
    free(out);
    printf("bench_ingest: %d JSON lines (3 readings each)\n", LINES);
    printf("  parse + validate + Avro encode, in process: %.0f lines/s\n", LINES / inproc);
    printf("  hvsctl ingest, whole process until Kafka acknowledged all: %.0f lines/s (%.2f s)\n",
           LINES / proc, proc);
    hvs_test_proc_stop(&broker);
    unlink(path);
    return hvs_test_done();
}
