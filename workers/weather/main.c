/*
 * hvs-weather - polls an Open-Meteo-compatible forecast API for every building of `topology`
 * and publishes its observed and forecast hours as Weather records to weather.hourly, keyed by
 * building (docs/design.md section 2; issue 5).
 *
 * The loop: follow topology (new buildings become locations at once) -> poller step (submit
 * what is due this round, drive the transfers, stamp what arrived with the clock, validate,
 * publish what changed, alert outages) -> serve the producer's delivery reports. A lost
 * delivery makes the poller forget what it published, so the next round publishes everything
 * again (a record may repeat, with a later issued_at; none is missing). SIGTERM: queued polls
 * are cancelled, in-flight ones finish (bounded by HVS_WEATHER_DRAIN_TIMEOUT) and are published,
 * the producer is flushed, exit 0.
 *
 * --backfill FROM..TO (backfill.h): instead of polling, the topology is read to its end, each
 * building's days FROM..TO are fetched from the archive API and published as OBSERVED, the
 * producer is flushed; exit 0 when all is delivered, non-zero with the failure otherwise.
 */
#include <curl/curl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backfill.h"
#include "hvs/alert.h"
#include "hvs/app.h"
#include "hvs/log.h"
#include "hvs/serde.h"
#include "hvs/time.h"
#include "hvs/topics.h"
#include "hvs/topology.h"
#include "poller.h"
#include "publish.h"

typedef struct settings {
    char *url, *clock_url, *hourly, *provider;
    int64_t past_days, forecast_days, interval_ms, spread_ms, connect_timeout_ms, timeout_ms;
    int64_t retries, backoff_ms, backoff_max_ms, concurrency, max_body, outage_ms, drain_ms;
    int64_t topology_wait_ms;
    char *backfill, *archive_url, *archive_provider;
    int64_t chunk_days;
} settings_t;

#define S(f) offsetof(settings_t, f)
static const hvs_cfg_entry_t wx_entries[] = {
    {"HVS_WEATHER_URL", HVS_CFG_STRING, "https://api.open-meteo.com", 0, 0, S(url), 0,
     "base URL of the Open-Meteo-compatible API (<base>/v1/forecast is requested)"},
    {"HVS_WEATHER_CLOCK_URL", HVS_CFG_STRING, NULL, 0, 0, S(clock_url), 0,
     "URL answering {\"now\": ISO-8601} (the simulator's /v1/status): \"now\" for stamping and "
     "classification; unset = the wall clock"},
    {"HVS_WEATHER_HOURLY", HVS_CFG_STRING,
     "temperature_2m,relativehumidity_2m,cloudcover,shortwave_radiation,windspeed_10m", 0, 0,
     S(hourly), 0,
     "hourly variables requested (Open-Meteo names; the older spellings are accepted by "
     "Open-Meteo and the simulator alike, the newer ones by Open-Meteo only)"},
    {"HVS_WEATHER_PAST_DAYS", HVS_CFG_INT, "1", 0, 92, S(past_days), 0,
     "past_days of every request: observed hours back to 00:00 UTC that many days ago"},
    {"HVS_WEATHER_FORECAST_DAYS", HVS_CFG_INT, "3", 1, 16, S(forecast_days), 0,
     "forecast_days of every request"},
    {"HVS_WEATHER_POLL_INTERVAL", HVS_CFG_DURATION, "1h", 1000, 7 * 86400000.0, S(interval_ms), 0,
     "each location is polled once per interval"},
    {"HVS_WEATHER_SPREAD", HVS_CFG_DURATION, "10m", 0, 7 * 86400000.0, S(spread_ms), 0,
     "a round's requests are spread over this much of the interval (each building keeps its "
     "slot); 0 = all at once"},
    {"HVS_WEATHER_CONNECT_TIMEOUT", HVS_CFG_DURATION, "3s", 10, 120000, S(connect_timeout_ms), 0,
     "connect timeout per attempt"},
    {"HVS_WEATHER_TIMEOUT", HVS_CFG_DURATION, "10s", 10, 600000, S(timeout_ms), 0,
     "whole-transfer timeout per attempt"},
    {"HVS_WEATHER_RETRIES", HVS_CFG_INT, "3", 0, 20, S(retries), 0,
     "further attempts after a 5xx, 429, timeout or connection error"},
    {"HVS_WEATHER_BACKOFF", HVS_CFG_DURATION, "500ms", 1, 600000, S(backoff_ms), 0,
     "base of the exponential backoff with full jitter between attempts"},
    {"HVS_WEATHER_BACKOFF_MAX", HVS_CFG_DURATION, "30s", 1, 3600000, S(backoff_max_ms), 0,
     "longest single backoff wait"},
    {"HVS_WEATHER_CONCURRENCY", HVS_CFG_INT, "16", 1, 512, S(concurrency), 0,
     "parallel transfers (one curl multi handle)"},
    {"HVS_WEATHER_MAX_BODY", HVS_CFG_INT, "4194304", 1024, 268435456, S(max_body), 0,
     "largest response body accepted, bytes (larger: refused as too_large)"},
    {"HVS_WEATHER_OUTAGE_ALERT", HVS_CFG_DURATION, "3h", 1000, 30 * 86400000.0, S(outage_ms), 0,
     "a building without a good response for this long (on the clock) gets a DATA_QUALITY alert, "
     "repeated at most hourly while it lasts"},
    {"HVS_WEATHER_PROVIDER", HVS_CFG_STRING, "open-meteo", 0, 0, S(provider), 0,
     "the provider field of the records"},
    {"HVS_WEATHER_DRAIN_TIMEOUT", HVS_CFG_DURATION, "15s", 0, 600000, S(drain_ms), 0,
     "at SIGTERM, longest wait for in-flight polls to finish and be published"},
    {"HVS_WEATHER_TOPOLOGY_WAIT", HVS_CFG_DURATION, "30s", 0, 600000, S(topology_wait_ms), 0,
     "at start, longest wait for the topology to be read before the first round"},
    {"HVS_WEATHER_BACKFILL", HVS_CFG_STRING, NULL, 0, 0, S(backfill), 0,
     "FROM..TO (YYYY-MM-DD, UTC days, both included): fetch these days' hourly weather for "
     "every building from the archive API, publish them as OBSERVED, exit (no polling)"},
    {"HVS_WEATHER_ARCHIVE_URL", HVS_CFG_STRING, "https://archive-api.open-meteo.com", 0, 0,
     S(archive_url), 0,
     "base URL of the Open-Meteo-compatible historical API (<base>/v1/archive is requested)"},
    {"HVS_WEATHER_BACKFILL_CHUNK_DAYS", HVS_CFG_INT, "31", 1, 92, S(chunk_days), 0,
     "days per archive request of a backfill"},
    {"HVS_WEATHER_ARCHIVE_PROVIDER", HVS_CFG_STRING, "open-meteo-archive", 0, 0,
     S(archive_provider), 0,
     "the provider field of backfilled records (tells them apart from the live poller's)"},
};
static settings_t settings;
static const hvs_cfg_section_t wx_section = {"weather", wx_entries,
                                             sizeof wx_entries / sizeof wx_entries[0], &settings};

typedef struct worker {
    hvs_app_t *app;
    hvs_serde_t *serde;
    hvs_producer_t *prod;
    hvs_alerter_t *alerter;
    hvs_topology_t *topo;
    wx_publisher_t *pub;
    wx_poller_t *poller;
    atomic_bool topo_ready, kafka_ok;
} worker_t;

static int ready(void *opaque, char *why, size_t whylen) {
    worker_t *w = opaque;
    if (!atomic_load(&w->topo_ready)) {
        snprintf(why, whylen, "topology not read to its end yet");
        return 0;
    }
    if (!atomic_load(&w->kafka_ok)) {
        snprintf(why, whylen, "Kafka brokers not reachable");
        return 0;
    }
    return 1;
}

/* Can the producer reach a broker? (metadata round trip, bounded) */
static bool kafka_reachable(worker_t *w, int timeout_ms) {
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = rd_kafka_metadata(hvs_producer_handle(w->prod), 0, NULL, &md,
                                              timeout_ms);
    bool ok = e == RD_KAFKA_RESP_ERR_NO_ERROR && md && md->broker_cnt > 0;
    if (md)
        rd_kafka_metadata_destroy(md);
    return ok;
}

static int sync_locations(worker_t *w, hvs_err_t *err) {
    size_t n;
    const hvs_building_t *b = hvs_topology_buildings(w->topo, &n);
    return wx_poller_sync(w->poller, b, n, err);
}

static wx_client_conf_t client_conf(const char *ua) {
    return (wx_client_conf_t){.concurrency = (int)settings.concurrency,
                              .connect_timeout_ms = settings.connect_timeout_ms,
                              .timeout_ms = settings.timeout_ms,
                              .retries = (int)settings.retries,
                              .backoff_ms = settings.backoff_ms,
                              .backoff_max_ms = settings.backoff_max_ms,
                              .max_body = (size_t)settings.max_body,
                              .user_agent = ua};
}

/* --backfill: read the whole topology, fetch the range for each building, flush, exit. */
static int run_backfill(hvs_app_t *app, void *state, hvs_err_t *err) {
    worker_t *w = state;
    w->app = app;
    wx_backfill_conf_t bc = {.archive_url = settings.archive_url,
                             .hourly = settings.hourly,
                             .chunk_days = (int)settings.chunk_days};
    int rc = wx_backfill_range(settings.backfill, hvs_time_now_ms(), &bc.from_day, &bc.to_day, err);
    if (rc)
        return rc;
    hvs_kafka_conf_t kc;
    hvs_app_kafka_conf(app, &kc);
    const char *topic = hvs_topic_name("weather.hourly");
    char ua[64];
    snprintf(ua, sizeof ua, "hvs-weather/%s", HVS_VERSION);
    bc.client = client_conf(ua);
    if ((rc = hvs_serde_new(app->cfg.schema_registry_url, &w->serde, err)) ||
        (rc = hvs_producer_new(&kc, &w->prod, err)) ||
        (rc = wx_publisher_new(w->serde, w->prod, topic, settings.archive_provider, &w->pub,
                               err)) ||
        (rc = hvs_topology_new(&kc, w->serde, hvs_topic_name("topology"), &w->topo, err)))
        return rc;
    atomic_store(&w->kafka_ok, true);
    hvs_app_set_ready(app, ready, w);
    /* Every building must be known: a backfill that missed some would look complete. */
    hvs_ms_t t0 = hvs_time_mono_ms();
    while (hvs_app_running() && !hvs_topology_caught_up(w->topo) &&
           hvs_time_mono_ms() - t0 < settings.topology_wait_ms)
        hvs_topology_poll(w->topo, 100);
    if (!hvs_topology_caught_up(w->topo))
        return hvs_err_set(err, HVS_ETIMEOUT, "topology_not_read",
                           "backfill: topology not read to its end within %lld ms "
                           "(HVS_WEATHER_TOPOLOGY_WAIT)",
                           (long long)settings.topology_wait_ms);
    atomic_store(&w->topo_ready, true);
    size_t n;
    const hvs_building_t *b = hvs_topology_buildings(w->topo, &n);
    if (n == 0)
        return hvs_err_set(err, HVS_EINVAL, "no_buildings",
                           "backfill: %s holds no building: nothing to backfill",
                           hvs_topic_name("topology"));
    hvs_log_info("weather", "backfill %s: %zu buildings from %s in chunks of %lld days -> %s",
                 settings.backfill, n, settings.archive_url, (long long)settings.chunk_days, topic);
    wx_backfill_stats_t st;
    rc = wx_backfill_run(&bc, b, n, w->pub, w->prod, topic, app->metrics, &st, err);
    hvs_err_t ferr = {0};
    int frc = hvs_producer_flush(w->prod, 30000, &ferr);
    if (rc == 0 && frc) {
        *err = ferr;
        rc = frc;
    }
    if (rc == 0)
        hvs_log_info("weather",
                     "backfill %s done: %zu buildings, %zu requests, %zu hours published",
                     settings.backfill, st.buildings, st.requests, st.hours);
    return rc;
}

static int run(hvs_app_t *app, void *state, hvs_err_t *err) {
    worker_t *w = state;
    w->app = app;
    hvs_kafka_conf_t kc;
    hvs_app_kafka_conf(app, &kc);
    const char *topic = hvs_topic_name("weather.hourly");
    char ua[64];
    snprintf(ua, sizeof ua, "hvs-weather/%s", HVS_VERSION);
    wx_poller_conf_t pc = {
        .base_url = settings.url,
        .clock_url = settings.clock_url,
        .hourly = settings.hourly,
        .past_days = (int)settings.past_days,
        .forecast_days = (int)settings.forecast_days,
        .interval_ms = settings.interval_ms,
        .spread_ms = settings.spread_ms,
        .outage_ms = settings.outage_ms,
        .client = client_conf(ua),
    };
    int rc;
    if ((rc = hvs_serde_new(app->cfg.schema_registry_url, &w->serde, err)) ||
        (rc = hvs_producer_new(&kc, &w->prod, err)) ||
        (rc = hvs_alerter_new(w->serde, w->prod, &w->alerter, err)) ||
        (rc = wx_publisher_new(w->serde, w->prod, topic, settings.provider, &w->pub, err)) ||
        (rc = wx_poller_new(&pc, w->pub, w->alerter, app->metrics, &w->poller, err)) ||
        (rc = hvs_topology_new(&kc, w->serde, hvs_topic_name("topology"), &w->topo, err)))
        return rc;
    hvs_app_set_ready(app, ready, w);
    hvs_log_info("weather", "polling %s for the buildings of %s -> %s every %lld ms%s%s",
                 settings.url, hvs_topic_name("topology"), topic, (long long)settings.interval_ms,
                 settings.clock_url ? ", clock " : "",
                 settings.clock_url ? settings.clock_url : "");

    /* The first round waits (boundedly) for the whole topology. */
    hvs_ms_t t0 = hvs_time_mono_ms();
    atomic_store(&w->kafka_ok, kafka_reachable(w, 2000));
    while (hvs_app_running() && !hvs_topology_caught_up(w->topo) &&
           hvs_time_mono_ms() - t0 < settings.topology_wait_ms) {
        hvs_topology_poll(w->topo, 100);
        hvs_producer_poll(w->prod);
    }
    if (!hvs_topology_caught_up(w->topo)) {
        size_t known;
        hvs_topology_buildings(w->topo, &known);
        hvs_log_warn("weather",
                     "topology not read to its end within %lld ms: starting with what "
                     "is known (%zu buildings)",
                     (long long)settings.topology_wait_ms, known);
    }
    if ((rc = sync_locations(w, err)))
        return rc;
    uint64_t failed_seen = hvs_producer_failed(w->prod);
    hvs_ms_t last_kafka_check = hvs_time_mono_ms();
    while (hvs_app_running()) {
        if (hvs_topology_poll(w->topo, 0) > 0 && (rc = sync_locations(w, err)))
            return rc;
        atomic_store(&w->topo_ready, hvs_topology_caught_up(w->topo));
        if ((rc = wx_poller_step(w->poller, 100, err)))
            return rc;
        hvs_producer_poll(w->prod);
        uint64_t failed = hvs_producer_failed(w->prod);
        if (failed > failed_seen) {
            hvs_log_error("weather", "%llu Weather/alert deliveries failed",
                          (unsigned long long)(failed - failed_seen));
            failed_seen = failed;
            wx_poller_forget(w->poller);
        }
        hvs_ms_t mono = hvs_time_mono_ms();
        if (mono - last_kafka_check >= 10000) {
            last_kafka_check = mono;
            atomic_store(&w->kafka_ok, kafka_reachable(w, 200));
        }
    }
    hvs_log_info("weather", "stopping: finishing the polls in flight");
    rc = wx_poller_drain(w->poller, (int)settings.drain_ms, err);
    hvs_err_t ferr = {0};
    int frc = hvs_producer_flush(w->prod, 10000, &ferr);
    if (rc == 0 && frc) {
        *err = ferr;
        rc = frc;
    }
    if (rc == 0)
        hvs_log_info("weather", "stopped: %llu records delivered",
                     (unsigned long long)hvs_producer_delivered(w->prod));
    return rc;
}

/* Only http(s) URLs (curl would refuse others at every request). */
static int check_url(const char *name, const char *url, hvs_err_t *err) {
    if (!url || (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0))
        return hvs_err_set(err, HVS_ECONFIG, "bad_value",
                           "%s=\"%.100s\": expected http:// or "
                           "https://",
                           name, url ? url : "");
    return HVS_OK;
}

static void worker_free(void *state) {
    worker_t *w = state;
    wx_poller_destroy(w->poller);
    wx_publisher_destroy(w->pub);
    hvs_alerter_destroy(w->alerter);
    hvs_topology_destroy(w->topo);
    hvs_producer_destroy(w->prod);
    hvs_serde_destroy(w->serde);
}

/* The settings' own checks, then the loop. */
static int run_checked(hvs_app_t *app, void *state, hvs_err_t *err) {
    unsigned want;
    int rc = wx_openmeteo_hourly_mask(settings.hourly, &want, err);
    if (rc == HVS_OK && (rc = check_url("HVS_WEATHER_URL", settings.url, err)) == HVS_OK &&
        settings.clock_url && settings.clock_url[0])
        rc = check_url("HVS_WEATHER_CLOCK_URL", settings.clock_url, err);
    bool backfill = settings.backfill && settings.backfill[0];
    if (rc == HVS_OK && backfill)
        rc = check_url("HVS_WEATHER_ARCHIVE_URL", settings.archive_url, err);
    if (rc == HVS_OK)
        rc = backfill ? run_backfill(app, state, err) : run(app, state, err);
    return rc;
}

int main(int argc, char **argv) {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "hvs-weather: curl_global_init failed\n");
        return 1;
    }
    static worker_t w; /* living for the process */
    hvs_app_spec_t spec = {
        .worker = "weather",
        .summary = "Open-Meteo-compatible weather poller: topology's buildings -> weather.hourly",
        .usage = "Usage: hvs-weather [--url https://api.open-meteo.com] [--clock-url URL] "
                 "[--poll-interval 1h] ... (every HVS_WEATHER_* is a flag)\n"
                 "       hvs-weather --backfill YYYY-MM-DD..YYYY-MM-DD [--archive-url URL] "
                 "[--backfill-chunk-days 31]   (historical OBSERVED hours, then exit)",
        .extra = &wx_section,
        .nextra = 1,
        .flag_prefix = "HVS_WEATHER_",
        .state = &w,
        .cleanup = worker_free,
    };
    int rc = hvs_app_main(&spec, argc, argv, run_checked);
    curl_global_cleanup();
    return rc;
}
