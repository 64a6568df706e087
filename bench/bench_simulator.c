/*
 * bench_simulator - how fast hvs-simulator makes data:
 *   1. in process: the fleet stepped (physics, reporting, delivery queue with the default messy
 *      rates) and every record formatted as a JSON line, no I/O: the generator's own ceiling;
 *   2. the real process, --out jsonl to /dev/null: the 10-building x 20-apartment x 180-day
 *      history the issue asks for "in well under a minute";
 *   3. the real process, --out kafka against hvs-devbroker (Avro, lz4, acks=all), until every
 *      message is acknowledged.
 * "records" are Reading messages (one apartment at one instant); "readings" are the sensor
 * values inside them (the seeds' readings[] entries).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "delivery.h"
#include "fleet.h"
#include "hvs/log.h"
#include "hvs_test.h"
#include "output.h"
#include "sim.h"

#define DAY_MS (86400000LL)

static void in_process(void) {
    sim_fleet_params_t fp;
    sim_fleet_params_default(&fp);
    fp.seed = 3;
    fp.start = 1727740800000LL; /* 2024-10-01 */
    fp.end = fp.start + 180 * DAY_MS;
    fp.buildings = 10;
    fp.apartments_per_building = 20;
    hvs_err_t err;
    sim_fleet_t *fleet;
    HVS_REQUIRE(sim_fleet_new(&fp, &fleet, &err) == 0, "fleet: %s", err.msg);
    sim_conf_t conf;
    sim_conf_default(&conf, 3);
    sim_delivery_conf_t dc;
    sim_delivery_conf_default(&dc);
    uint32_t apts[10];
    for (int i = 0; i < 10; i++)
        apts[i] = fleet->buildings[i].napartments;
    sim_delivery_t *d;
    sim_t *sim;
    HVS_REQUIRE(sim_delivery_new(&dc, 3, 10, apts, NULL, &d, &err) == 0, "delivery");
    HVS_REQUIRE(sim_new(fleet, &conf, d, NULL, &sim, &err) == 0, "sim");
    static char line[8192];
    uint64_t records = 0, values = 0, bytes = 0;
    int64_t t0 = hvs_test_now_ms();
    sim_record_t r;
    for (hvs_ms_t t = fp.start + SIM_STEP_MS; t <= fp.end; t += SIM_STEP_MS) {
        HVS_REQUIRE(sim_step(sim, t, &err) == 0, "step: %s", err.msg);
        while (sim_delivery_pop(d, t, &r)) {
            bytes += sim_format_json(fleet, &r, line, sizeof line);
            records++;
            values += r.n;
        }
    }
    while (sim_delivery_drain(d, &r)) {
        bytes += sim_format_json(fleet, &r, line, sizeof line);
        records++;
        values += r.n;
    }
    double s = (double)(hvs_test_now_ms() - t0) / 1000.0;
    printf("in process, 10 x 20 x 180 days, JSON formatted: %llu records (%llu readings, %.0f MB) "
           "in %.2f s = %.0f records/s, %.0f readings/s\n",
           (unsigned long long)records, (unsigned long long)values, (double)bytes / 1e6, s,
           (double)records / s, (double)values / s);
    sim_destroy(sim);
    sim_delivery_destroy(d);
    sim_fleet_destroy(fleet);
}

/* Run the executable; print its summary figures and the process's wall time. */
static void process(const char *what, const char *env, const char *args) {
    char cmd[1024], log[] = "/tmp/hvs-bench-sim-XXXXXX";
    int fd = mkstemp(log);
    HVS_REQUIRE(fd >= 0, "mkstemp");
    close(fd);
    snprintf(cmd, sizeof cmd, "%s %s %s >/dev/null 2>%s", env, HVS_TEST_SIMULATOR, args, log);
    int64_t t0 = hvs_test_now_ms();
    int rc = hvs_test_run(cmd, NULL, 0, NULL, NULL);
    double s = (double)(hvs_test_now_ms() - t0) / 1000.0;
    HVS_REQUIRE(rc == 0, "simulator failed: %s", cmd);
    char *text = NULL, buf[4096];
    FILE *f = fopen(log, "r");
    while (f && fgets(buf, sizeof buf, f))
        if (strstr(buf, "\"summary\""))
            text = strdup(buf);
    if (f)
        fclose(f);
    unlink(log);
    unsigned long long records = 0, values = 0;
    const char *p = text ? strstr(text, "records=") : NULL;
    if (p)
        sscanf(p, "records=%llu values=%llu", &records, &values);
    printf("%s: %llu records (%llu readings) in %.2f s wall = %.0f records/s, %.0f readings/s\n",
           what, records, values, s, (double)records / s, (double)values / s);
    HVS_CHECK(records > 0, "%s: no summary", what);
    free(text);
}

int main(void) {
    hvs_log_init("bench", HVS_LOG_ERROR, NULL);
    in_process();
    process("hvs-simulator --out jsonl, 10 x 20 x 180 days", "",
            "--out jsonl --seed 3 --start 2024-10-01T00:00:00Z --days 180 --buildings 10 "
            "--apartments-per-building 20");
    hvs_test_proc_t broker;
    HVS_REQUIRE(hvs_test_devbroker_start(&broker, NULL) == 0, "devbroker");
    char env[256];
    snprintf(env, sizeof env, "HVS_KAFKA_BROKERS=%s", broker.addr);
    process("hvs-simulator --out kafka (devbroker), 10 x 20 x 30 days", env,
            "--out kafka --seed 3 --start 2024-10-01T00:00:00Z --days 30 --buildings 10 "
            "--apartments-per-building 20");
    hvs_test_proc_stop(&broker);
    return hvs_test_done();
}
