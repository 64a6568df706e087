/*
 * hvs-simulator - a fleet of buildings whose telemetry behaves like the real thing, with
 * faults and messy delivery whose ground truth is written alongside. Feeds `readings.raw`
 * (or stdout as the seeds' JSON lines), `topology`, optionally `weather.hourly`, and serves its
 * weather over HTTP in the Open-Meteo format.
 *
 * The loop: every 15 simulated minutes, step the fleet (sim.c), push the measured records into
 * the delivery queue (delivery.c), write out what is due; the first --history-days go as fast
 * as possible, the rest at --speed.
 */
#include <errno.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "delivery.h"
#include "fleet.h"
#include "hvs/app.h"
#include "hvs/calendar.h"
#include "hvs/log.h"
#include "hvs/serde.h"
#include "hvs/topics.h"
#include "output.h"
#include "sim.h"
#include "weather.h"
#include "weather_server.h"

#define HOUR_MS (3600LL * 1000)
#define DAY_MS (24 * HOUR_MS)

typedef struct settings {
    char *start, *speed, *out, *labels_out, *weather_out, *topology_out, *labels_topic, *regions;
    double days, history_days;
    int64_t buildings, apartments, seed, serve_weather, teams;
    bool clean, publish_topology, publish_weather, valve_sensors;
    double new_building_fraction, fault_rate, vacation_rate, guest_rate, override_rate,
        night_shift_fraction;
    double dup_rate, ooo_rate, late_batch_rate, gap_rate, skew_fraction, meter_replacement_rate,
        malformed_rate;
    double shock_rate, forecast_error_scale, elevation, temp_deadband, valve_deadband, variability;
    double weather_fail_rate, weather_garbage_rate;
    int64_t heartbeat_ms;
} settings_t;

#define S(f) offsetof(settings_t, f)
static const hvs_cfg_entry_t sim_entries[] = {
    {"HVS_SIM_START", HVS_CFG_STRING, NULL, 0, 0, S(start), 0,
     "first simulated instant, ISO 8601 (default: now minus --history-days)"},
    {"HVS_SIM_DAYS", HVS_CFG_DOUBLE, "7", 0, 36600, S(days), 0,
     "simulated days in all, history included (0 = run until stopped)"},
    {"HVS_SIM_HISTORY_DAYS", HVS_CFG_DOUBLE, "0", 0, 36600, S(history_days), 0,
     "the first days are a backfill written as fast as possible, then --speed applies"},
    {"HVS_SIM_BUILDINGS", HVS_CFG_INT, "10", 1, 1000, S(buildings), 0, "buildings in the fleet"},
    {"HVS_SIM_APARTMENTS_PER_BUILDING", HVS_CFG_INT, "0", 0, 500, S(apartments), 0,
     "apartments in every building (0 = by archetype: 12-66)"},
    {"HVS_SIM_SEED", HVS_CFG_INT, "1", 0, 9.0e15, S(seed), 0,
     "everything is drawn from this: same seed and flags, same output"},
    {"HVS_SIM_SPEED", HVS_CFG_STRING, "max", 0, 0, S(speed), 0,
     "max (as fast as possible), realtime, or N simulated seconds per wall second"},
    {"HVS_SIM_OUT", HVS_CFG_STRING, "kafka", 0, 0, S(out), 0,
     "kafka (Avro to readings.raw) or jsonl (the seeds' JSON lines on stdout)"},
    {"HVS_SIM_LABELS_OUT", HVS_CFG_STRING, NULL, 0, 0, S(labels_out), 0,
     "file for ground-truth labels (faults, benign look-alikes, delivery, weather shocks)"},
    {"HVS_SIM_LABELS_TOPIC", HVS_CFG_STRING, NULL, 0, 0, S(labels_topic), 0,
     "also publish the labels (JSON values) to this topic"},
    {"HVS_SIM_WEATHER_OUT", HVS_CFG_STRING, NULL, 0, 0, S(weather_out), 0,
     "file for observed hourly weather per building (JSON lines)"},
    {"HVS_SIM_TOPOLOGY_OUT", HVS_CFG_STRING, NULL, 0, 0, S(topology_out), 0,
     "file for the Building records (JSON lines)"},
    {"HVS_SIM_PUBLISH_TOPOLOGY", HVS_CFG_BOOL, "true", 0, 0, S(publish_topology), 0,
     "with --out kafka: publish the Building records to the topology topic first"},
    {"HVS_SIM_PUBLISH_WEATHER", HVS_CFG_BOOL, "false", 0, 0, S(publish_weather), 0,
     "publish observed hours and 72 h forecasts to weather.hourly (instead of the weather "
     "worker)"},
    {"HVS_SIM_SERVE_WEATHER", HVS_CFG_INT, "-1", -1, 65535, S(serve_weather), 0,
     "serve the weather over HTTP (Open-Meteo format) on this port; 0 = any, -1 = off; the "
     "process then stays up after the run until SIGTERM"},
    {"HVS_SIM_WEATHER_FAIL_RATE", HVS_CFG_DOUBLE, "0", 0, 1, S(weather_fail_rate), 0,
     "share of weather requests answered 503"},
    {"HVS_SIM_WEATHER_GARBAGE_RATE", HVS_CFG_DOUBLE, "0", 0, 1, S(weather_garbage_rate), 0,
     "share of weather requests answered with cut-short JSON"},
    {"HVS_SIM_REGIONS", HVS_CFG_STRING, "CH-ZH,CH-BE,CH-BS,CH-LU,CH-VD,CH-GE", 0, 0, S(regions), 0,
     "holiday regions (cantons) the buildings are placed in"},
    {"HVS_SIM_TEAMS", HVS_CFG_INT, "2", 0, 26, S(teams), 0,
     "maintenance teams on the Building records: building i gets team-<letter i % teams> "
     "(team-a, team-b, ...); 0 = no team field"},
    {"HVS_SIM_NEW_BUILDING_FRACTION", HVS_CFG_DOUBLE, "0.2", 0, 1, S(new_building_fraction), 0,
     "buildings commissioned during the run, with gradual move-ins (cold start)"},
    {"HVS_SIM_FAULT_RATE", HVS_CFG_DOUBLE, "0.6", 0, 100, S(fault_rate), 0,
     "faults per apartment-year (stuck valve, no heat response, sensor failures, efficiency "
     "loss)"},
    {"HVS_SIM_VACATION_RATE", HVS_CFG_DOUBLE, "3", 0, 100, S(vacation_rate), 0,
     "vacations per apartment-year (plus Christmas trips)"},
    {"HVS_SIM_GUEST_RATE", HVS_CFG_DOUBLE, "4", 0, 100, S(guest_rate), 0,
     "guest visits per apartment-year"},
    {"HVS_SIM_OVERRIDE_RATE", HVS_CFG_DOUBLE, "3", 0, 100, S(override_rate), 0,
     "manual setpoint overrides per apartment-year"},
    {"HVS_SIM_NIGHT_SHIFT_FRACTION", HVS_CFG_DOUBLE, "0.05", 0, 1, S(night_shift_fraction), 0,
     "households working night shifts"},
    {"HVS_SIM_CLEAN", HVS_CFG_BOOL, "false", 0, 0, S(clean), 0,
     "no messy delivery at all (every rate below is 0)"},
    {"HVS_SIM_DUP_RATE", HVS_CFG_DOUBLE, "0.005", 0, 1, S(dup_rate), 0, "records delivered twice"},
    {"HVS_SIM_OOO_RATE", HVS_CFG_DOUBLE, "0.01", 0, 1, S(ooo_rate), 0,
     "records delayed up to 90 min (out of order)"},
    {"HVS_SIM_LATE_BATCH_RATE", HVS_CFG_DOUBLE, "0.01", 0, 10, S(late_batch_rate), 0,
     "tablet outages per apartment-day, delivered late in one batch (hours to days)"},
    {"HVS_SIM_GAP_RATE", HVS_CFG_DOUBLE, "0.003", 0, 10, S(gap_rate), 0,
     "gaps (never delivered) per apartment-day"},
    {"HVS_SIM_SKEW_FRACTION", HVS_CFG_DOUBLE, "0.02", 0, 1, S(skew_fraction), 0,
     "apartments whose tablet clock is off"},
    {"HVS_SIM_METER_REPLACEMENT_RATE", HVS_CFG_DOUBLE, "0.05", 0, 100, S(meter_replacement_rate), 0,
     "meter replacements (counter back to 0) per apartment-year"},
    {"HVS_SIM_MALFORMED_RATE", HVS_CFG_DOUBLE, "0.0005", 0, 1, S(malformed_rate), 0,
     "records broken on purpose (NaN, negative counter, unknown sensor, bad JSON/Avro)"},
    {"HVS_SIM_SHOCK_RATE", HVS_CFG_DOUBLE, "0.05", 0, 1, S(shock_rate), 0,
     "intra-day weather shocks (storms, cold fronts) per day"},
    {"HVS_SIM_FORECAST_ERROR_SCALE", HVS_CFG_DOUBLE, "1", 0, 10, S(forecast_error_scale), 0,
     "scales the weather forecasts' error"},
    {"HVS_SIM_ELEVATION", HVS_CFG_DOUBLE, "430", -100, 3000, S(elevation), 0,
     "elevation of every building, m (the weather server uses it too)"},
    {"HVS_SIM_TEMP_DEADBAND", HVS_CFG_DOUBLE, "0.2", 0, 10, S(temp_deadband), 0,
     "room temperatures are sent when they moved this much (degC)"},
    {"HVS_SIM_VALVE_DEADBAND", HVS_CFG_DOUBLE, "10", 0, 100, S(valve_deadband), 0,
     "valve positions are sent when they moved this much (%)"},
    {"HVS_SIM_HEARTBEAT", HVS_CFG_DURATION, "6h", 0, 30 * 86400000.0, S(heartbeat_ms), 0,
     "every value is sent at least this often (0 = only on change)"},
    {"HVS_SIM_VALVE_SENSORS", HVS_CFG_BOOL, "true", 0, 0, S(valve_sensors), 0,
     "send valve_position_pct per room"},
    {"HVS_SIM_VARIABILITY", HVS_CFG_DOUBLE, "1", 0, 5, S(variability), 0,
     "scales occupant-driven noise (gains, window airing)"},
};
#undef S

static settings_t g_set;
static const hvs_cfg_section_t sim_section = {"simulator", sim_entries,
                                              sizeof sim_entries / sizeof sim_entries[0], &g_set};

/* Labels go to a file and/or a topic. */
typedef struct label_out {
    const sim_fleet_t *fleet;
    FILE *file;
    hvs_producer_t *producer;
    const char *topic;
    int failed;
    uint64_t n;
} label_out_t;

static void write_label(void *opaque, const sim_label_t *l) {
    label_out_t *o = opaque;
    char buf[1024];
    size_t n = sim_format_label(o->fleet, l, buf, sizeof buf);
    if (n == 0)
        return;
    o->n++;
    if (o->file && fwrite(buf, 1, n, o->file) != n)
        o->failed = 1;
    if (o->producer && o->topic) {
        hvs_err_t err = {0};
        const char *key = l->building >= 0 ? o->fleet->buildings[l->building].id : "";
        if (hvs_producer_send(o->producer, o->topic, RD_KAFKA_PARTITION_UA, key, strlen(key), buf,
                              n - 1, &err) != HVS_OK) {
            hvs_log_error("labels", "label to %s: %s", o->topic, err.msg);
            o->failed = 1;
        }
    }
}

static FILE *open_out(const char *path, const char *what) {
    if (!path || !path[0])
        return NULL;
    FILE *f = fopen(path, "w");
    if (!f)
        hvs_log_error("config", "cannot write %s to %s: %s", what, path, strerror(errno));
    return f;
}

/* --speed: 0 = max, else simulated seconds per wall second. */
static int parse_speed(const char *s, double *speed) {
    if (strcmp(s, "max") == 0)
        return *speed = 0, 0;
    if (strcmp(s, "realtime") == 0)
        return *speed = 1, 0;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v > 0) || v > 1e9)
        return -1;
    *speed = v;
    return 0;
}

static void sleep_ms(int64_t ms) {
    if (ms <= 0)
        return;
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* One Weather message (natural JSON through the serde, so the schema stays the one truth). */
static int publish_weather(hvs_producer_t *p, hvs_serde_t *serde, hvs_encoder_t *enc,
                           const sim_building_t *b, const sim_weather_t *w, hvs_ms_t hour,
                           hvs_ms_t issued, bool forecast, hvs_err_t *err) {
    char json[768];
    int n = snprintf(json, sizeof json,
                     "{\"building_id\":\"%s\",\"latitude\":%.4f,\"longitude\":%.4f,\"hour\":%lld,"
                     "\"issued_at\":%lld,\"kind\":\"%s\",\"temperature_c\":%.2f,"
                     "\"relative_humidity_pct\":%.1f,\"cloud_cover_pct\":%.1f,"
                     "\"shortwave_radiation_wm2\":%.1f,\"wind_speed_ms\":%.1f,"
                     "\"provider\":\"hvs-simulator\"}",
                     b->id, b->latitude, b->longitude, (long long)hour, (long long)issued,
                     forecast ? "FORECAST" : "OBSERVED", w->temperature_c, w->relative_humidity_pct,
                     w->cloud_cover_pct, w->shortwave_radiation_wm2, w->wind_speed_ms);
    const void *buf;
    size_t len;
    int rc = hvs_serde_value_from_json(serde, hvs_encoder_value(enc), json, (size_t)n, err);
    if (rc == HVS_OK)
        rc = hvs_encoder_encode(enc, &buf, &len, err);
    if (rc == HVS_OK)
        rc = hvs_producer_send(p, hvs_topic_name("weather.hourly"), RD_KAFKA_PARTITION_UA, b->id,
                               strlen(b->id), buf, len, err);
    return rc;
}

typedef struct run {
    sim_fleet_t *fleet;
    sim_t *sim;
    sim_delivery_t *delivery;
    sim_output_t *out;
    hvs_producer_t *producer;
    hvs_serde_t *serde;
    hvs_encoder_t *weather_enc;
    FILE *weather_file;
    sim_conf_t conf;
    _Atomic int64_t now;
} run_t;

/* The hour that ended at t: observed weather lines/messages; forecasts when an issue becomes
 * available. */
static int hourly_weather(run_t *r, hvs_ms_t t, hvs_err_t *err) {
    hvs_ms_t hour = t - HOUR_MS;
    bool issue_ready = g_set.publish_weather && r->producer &&
                       sim_weather_latest_issue(t) != sim_weather_latest_issue(t - HOUR_MS);
    hvs_ms_t issued = sim_weather_latest_issue(t);
    for (uint32_t i = 0; i < r->fleet->nbuildings; i++) {
        const sim_building_t *b = &r->fleet->buildings[i];
        sim_weather_t w;
        sim_weather_observed(&r->conf.weather, b->latitude, b->longitude, r->conf.elevation_m,
                             hour + HOUR_MS / 2, &w);
        w.time = hour;
        if (r->weather_file) {
            char line[512];
            size_t n = sim_format_weather(b, &w, line, sizeof line);
            if (n && fwrite(line, 1, n, r->weather_file) != n)
                return hvs_err_set(err, HVS_EIO, "write", "writing weather: %s", strerror(errno));
        }
        if (g_set.publish_weather && r->producer) {
            int rc = publish_weather(r->producer, r->serde, r->weather_enc, b, &w, hour, t, false,
                                     err);
            if (rc != HVS_OK)
                return rc;
        }
        if (issue_ready) {
            for (int h = 0; h < 72; h++) {
                hvs_ms_t fh = issued - issued % HOUR_MS + (hvs_ms_t)h * HOUR_MS;
                sim_weather_forecast(&r->conf.weather, b->latitude, b->longitude,
                                     r->conf.elevation_m, issued, fh + HOUR_MS / 2, &w);
                int rc = publish_weather(r->producer, r->serde, r->weather_enc, b, &w, fh, issued,
                                         true, err);
                if (rc != HVS_OK)
                    return rc;
            }
        }
    }
    return HVS_OK;
}

static int write_due(run_t *r, hvs_ms_t now, bool drain, hvs_err_t *err) {
    sim_record_t rec;
    while (drain ? sim_delivery_drain(r->delivery, &rec)
                 : sim_delivery_pop(r->delivery, now, &rec)) {
        int rc = sim_output_write(r->out, &rec, err);
        if (rc != HVS_OK)
            return rc;
    }
    return HVS_OK;
}

static void log_summary(const run_t *r, double wall_s) {
    const sim_stats_t *st = sim_get_stats(r->sim);
    sim_delivery_stats_t ds;
    sim_delivery_get_stats(r->delivery, &ds);
    char intensity[256];
    int off = 0;
    for (int k = 0; k < SIM_ARCH_COUNT; k++)
        if (st->area_years[k] > 0)
            off += snprintf(intensity + off, sizeof intensity - (size_t)off, "%s%s=%.1f",
                            off ? " " : "", sim_archetype((sim_archetype_kind_t)k)->name,
                            st->heat_kwh[k] / st->area_years[k]);
    if (off == 0)
        snprintf(intensity, sizeof intensity, "none");
    hvs_log_info("summary",
                 "steps=%llu records=%llu values=%llu change_rate=%.3f delivered=%llu "
                 "duplicated=%llu reordered=%llu late=%llu dropped_in_gaps=%llu malformed=%llu "
                 "meter_replacements=%llu labels=%llu wall_s=%.2f records_per_s=%.0f "
                 "values_per_s=%.0f heating_kwh_per_m2_year: %s",
                 (unsigned long long)st->steps, (unsigned long long)st->records,
                 (unsigned long long)st->values_sent,
                 st->values_sampled ? (double)st->values_sent / (double)st->values_sampled : 0.0,
                 (unsigned long long)sim_output_written(r->out), (unsigned long long)ds.duplicated,
                 (unsigned long long)ds.reordered, (unsigned long long)ds.late,
                 (unsigned long long)ds.dropped_in_gaps, (unsigned long long)ds.malformed,
                 (unsigned long long)ds.meter_replacements, (unsigned long long)st->labels, wall_s,
                 wall_s > 0 ? (double)sim_output_written(r->out) / wall_s : 0.0,
                 wall_s > 0 ? (double)st->values_sent / wall_s : 0.0, intensity);
}

static int run(hvs_app_t *app, void *state, hvs_err_t *err) {
    run_t r;
    memset(&r, 0, sizeof r);
    int rc = HVS_OK;
    double speed;
    if (parse_speed(g_set.speed, &speed) != 0)
        return hvs_err_set(err, HVS_ECONFIG, "bad_value",
                           "HVS_SIM_SPEED=\"%.40s\": expected max, realtime or a positive number",
                           g_set.speed);
    bool jsonl = strcmp(g_set.out, "jsonl") == 0;
    if (!jsonl && strcmp(g_set.out, "kafka") != 0)
        return hvs_err_set(err, HVS_ECONFIG, "bad_value",
                           "HVS_SIM_OUT=\"%.40s\": expected kafka or jsonl", g_set.out);
    if (g_set.days > 0 && g_set.history_days > g_set.days)
        return hvs_err_set(err, HVS_ECONFIG, "bad_value",
                           "--history-days %.1f is more than --days %.1f", g_set.history_days,
                           g_set.days);

    hvs_ms_t start;
    if (g_set.start && g_set.start[0]) {
        rc = hvs_time_parse_iso8601(g_set.start, &start, err);
        if (rc != HVS_OK)
            return hvs_err_set(err, HVS_ECONFIG, "bad_value", "HVS_SIM_START=\"%.40s\": %s",
                               g_set.start, err->msg);
    } else {
        start = hvs_time_now_ms() - (hvs_ms_t)(g_set.history_days * (double)DAY_MS);
    }
    start -= ((start % SIM_STEP_MS) + SIM_STEP_MS) % SIM_STEP_MS;
    hvs_ms_t live_start = start + (hvs_ms_t)(g_set.history_days * (double)DAY_MS);
    /* "Forever" still needs a planning horizon for episodes: 10 years. */
    hvs_ms_t end = g_set.days > 0 ? start + (hvs_ms_t)(g_set.days * (double)DAY_MS)
                                  : start + 3653 * DAY_MS;

    sim_fleet_params_t fp;
    sim_fleet_params_default(&fp);
    fp.seed = (uint64_t)g_set.seed;
    fp.start = start;
    fp.end = end;
    fp.buildings = (int)g_set.buildings;
    fp.apartments_per_building = (int)g_set.apartments;
    fp.new_building_fraction = g_set.new_building_fraction;
    fp.fault_rate = g_set.fault_rate;
    fp.vacation_rate = g_set.vacation_rate;
    fp.guest_rate = g_set.guest_rate;
    fp.override_rate = g_set.override_rate;
    fp.night_shift_fraction = g_set.night_shift_fraction;
    fp.regions = g_set.regions;
    fp.teams = (int)g_set.teams;
    rc = hvs_calendar_load(app->cfg.calendar_file, err);
    if (rc == HVS_OK)
        rc = sim_fleet_new(&fp, &r.fleet, err);
    if (rc != HVS_OK)
        return rc;

    sim_conf_default(&r.conf, (uint64_t)g_set.seed);
    r.conf.weather.shock_rate_per_day = g_set.shock_rate;
    r.conf.weather.forecast_error_scale = g_set.forecast_error_scale;
    r.conf.elevation_m = g_set.elevation;
    r.conf.temp_deadband_c = g_set.temp_deadband;
    r.conf.valve_deadband_pct = g_set.valve_deadband;
    r.conf.heartbeat_ms = g_set.heartbeat_ms;
    r.conf.valve_sensors = g_set.valve_sensors;
    r.conf.variability = g_set.variability;

    sim_delivery_conf_t dc;
    sim_delivery_conf_default(&dc);
    dc.dup_rate = g_set.dup_rate;
    dc.ooo_rate = g_set.ooo_rate;
    dc.late_batch_rate = g_set.late_batch_rate;
    dc.gap_rate = g_set.gap_rate;
    dc.skew_fraction = g_set.skew_fraction;
    dc.meter_replacement_rate = g_set.meter_replacement_rate;
    dc.malformed_rate = g_set.malformed_rate;
    if (g_set.clean)
        sim_delivery_conf_clean(&dc);

    label_out_t labels = {.fleet = r.fleet};
    sim_label_sink_t sink = {write_label, &labels};
    FILE *topo_file = NULL;
    sim_weather_server_t *server = NULL;
    uint32_t *apts = NULL;

    labels.file = open_out(g_set.labels_out, "labels");
    r.weather_file = open_out(g_set.weather_out, "weather");
    topo_file = open_out(g_set.topology_out, "topology");
    if ((g_set.labels_out && g_set.labels_out[0] && !labels.file) ||
        (g_set.weather_out && g_set.weather_out[0] && !r.weather_file) ||
        (g_set.topology_out && g_set.topology_out[0] && !topo_file)) {
        rc = hvs_err_set(err, HVS_EIO, "open", "cannot open an output file (see above)");
        goto done;
    }

    bool need_kafka = !jsonl || (g_set.labels_topic && g_set.labels_topic[0]) ||
                      g_set.publish_weather;
    rc = hvs_serde_new(app->cfg.schema_registry_url, &r.serde, err);
    if (rc != HVS_OK)
        goto done;
    if (need_kafka) {
        hvs_kafka_conf_t kc;
        hvs_app_kafka_conf(app, &kc);
        rc = hvs_producer_new(&kc, &r.producer, err);
        if (rc != HVS_OK)
            goto done;
        labels.producer = r.producer;
        labels.topic = g_set.labels_topic && g_set.labels_topic[0] ? g_set.labels_topic : NULL;
        if (g_set.publish_weather) {
            rc = hvs_encoder_new(r.serde, HVS_SCHEMA_WEATHER, hvs_topic_name("weather.hourly"),
                                 &r.weather_enc, err);
            if (rc != HVS_OK)
                goto done;
        }
    }
    rc = jsonl ? sim_output_jsonl_new(stdout, r.fleet, &r.out, err)
               : sim_output_kafka_new(r.producer, r.serde, hvs_topic_name("readings.raw"), r.fleet,
                                      &r.out, err);
    if (rc != HVS_OK)
        goto done;

    apts = calloc(r.fleet->nbuildings, sizeof *apts);
    if (!apts) {
        rc = hvs_err_set(err, HVS_ENOMEM, NULL, "out of memory");
        goto done;
    }
    for (uint32_t i = 0; i < r.fleet->nbuildings; i++)
        apts[i] = r.fleet->buildings[i].napartments;
    rc = sim_delivery_new(&dc, (uint64_t)g_set.seed, r.fleet->nbuildings, apts, &sink, &r.delivery,
                          err);
    if (rc != HVS_OK)
        goto done;
    rc = sim_new(r.fleet, &r.conf, r.delivery, &sink, &r.sim, err);
    if (rc != HVS_OK)
        goto done;

    atomic_store(&r.now, start);
    if (g_set.serve_weather >= 0) {
        sim_weather_server_conf_t wsc = {.weather = &r.conf.weather,
                                         .now_ms = &r.now,
                                         .elevation_m = r.conf.elevation_m,
                                         .fail_rate = g_set.weather_fail_rate,
                                         .garbage_rate = g_set.weather_garbage_rate,
                                         .bind_any = app->cfg.http_bind_any};
        rc = sim_weather_server_start((uint16_t)g_set.serve_weather, &wsc, &server, err);
        if (rc != HVS_OK)
            goto done;
        /* The port on stderr for scripts and tests that asked for any free one. */
        hvs_log_info("weather", "serving weather on 127.0.0.1:%u", sim_weather_server_port(server));
    }

    rc = sim_output_topology(r.fleet, start, topo_file,
                             !jsonl && g_set.publish_topology ? r.producer : NULL, r.serde, err);
    if (rc != HVS_OK)
        goto done;

    char t0[40], t1[40];
    hvs_log_info("run", "simulating %u buildings, %llu apartments from %s to %s (%s), speed %s",
                 r.fleet->nbuildings, (unsigned long long)r.fleet->napartments,
                 hvs_time_format_iso8601(start, t0, sizeof t0),
                 g_set.days > 0 ? hvs_time_format_iso8601(end, t1, sizeof t1) : "stopped",
                 jsonl ? "jsonl" : "kafka", g_set.speed);
    hvs_ms_t wall0 = hvs_time_mono_ms();
    hvs_ms_t live_wall0 = 0;
    for (hvs_ms_t t = start + SIM_STEP_MS; t <= end && hvs_app_running(); t += SIM_STEP_MS) {
        if (speed > 0 && t > live_start) {
            if (live_wall0 == 0)
                live_wall0 = hvs_time_mono_ms();
            /* Sleep until this step is due, in slices so SIGTERM is noticed. */
            hvs_ms_t due = live_wall0 + (hvs_ms_t)((double)(t - live_start) / speed);
            while (hvs_app_running() && hvs_time_mono_ms() < due) {
                if (r.producer)
                    hvs_producer_poll(r.producer);
                sleep_ms(due - hvs_time_mono_ms() > 200 ? 200 : due - hvs_time_mono_ms());
            }
        }
        rc = sim_step(r.sim, t, err);
        if (rc == HVS_OK && t % HOUR_MS == 0)
            rc = hourly_weather(&r, t, err);
        if (rc == HVS_OK)
            rc = write_due(&r, t, false, err);
        if (rc != HVS_OK)
            goto done;
        atomic_store(&r.now, t);
        if (r.producer)
            hvs_producer_poll(r.producer);
        if (labels.failed) {
            rc = hvs_err_set(err, HVS_EIO, "write", "writing labels failed");
            goto done;
        }
    }
    rc = write_due(&r, 0, true, err);
    if (rc == HVS_OK && jsonl && fflush(stdout) != 0)
        rc = hvs_err_set(err, HVS_EIO, "write", "stdout: %s", strerror(errno));
    if (rc == HVS_OK && r.producer)
        rc = hvs_producer_flush(r.producer, 60000, err);
    if (rc != HVS_OK)
        goto done;
    log_summary(&r, (double)(hvs_time_mono_ms() - wall0) / 1000.0);

    if (server) {
        hvs_log_info("weather", "run finished; still serving weather until SIGTERM");
        while (hvs_app_running())
            sleep_ms(100);
    }

done:
    sim_weather_server_stop(server);
    sim_destroy(r.sim);
    sim_delivery_destroy(r.delivery);
    sim_output_destroy(r.out);
    hvs_encoder_destroy(r.weather_enc);
    hvs_producer_destroy(r.producer);
    hvs_serde_destroy(r.serde);
    if (labels.file && fclose(labels.file) != 0 && rc == HVS_OK)
        rc = hvs_err_set(err, HVS_EIO, "write", "closing labels: %s", strerror(errno));
    if (r.weather_file && fclose(r.weather_file) != 0 && rc == HVS_OK)
        rc = hvs_err_set(err, HVS_EIO, "write", "closing weather: %s", strerror(errno));
    if (topo_file && fclose(topo_file) != 0 && rc == HVS_OK)
        rc = hvs_err_set(err, HVS_EIO, "write", "closing topology: %s", strerror(errno));
    free(apts);
    sim_fleet_destroy(r.fleet);
    return rc;
}

int main(int argc, char **argv) {
    hvs_app_spec_t spec = {
        .worker = "simulator",
        .summary = "a fleet of simulated buildings: meter readings, weather, faults, ground truth",
        .usage = "Usage: hvs-simulator [--out kafka|jsonl] [--start ISO] [--days N] "
                 "[--buildings N] [--seed N] [--speed max|realtime|N] [--labels-out F] ...\n"
                 "Example: hvs-simulator --out jsonl --clean --start 2024-10-01T00:00:00Z "
                 "--days 30 --buildings 3 > readings.jsonl",
        .extra = &sim_section,
        .nextra = 1,
        .log_stderr = true,
        .flag_prefix = "HVS_SIM_",
    };
    return hvs_app_main(&spec, argc, argv, run);
}
