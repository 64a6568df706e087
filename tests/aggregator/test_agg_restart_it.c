/*
 * test_agg_restart_it - crashes and restarts of the aggregator, deterministic: the simulator's
 * messy stream (late batches, gaps, duplicates, reordering, clock skew, meter replacements) is
 * fed through the aggregator's own state machine the way hvs-aggregator's consume loop does it
 * (accept, thresholds after every reading, revisions and a state save to a real redis-server at
 * every batch end), and at chosen batch ends the process "dies": the state is dropped and loaded
 * back from Redis into a fresh aggregator, and the input resumes at the last committed reading.
 * Three ways to die — after the commit, between the Redis write and the commit (the batch is
 * replayed onto state that already holds it), and before the Redis write (outputs published,
 * state not saved: the batch is replayed onto the previous state) — at every batch end and at
 * random ones. The final windows (highest revision of each, as downstream keeps them) must
 * equal those of an uninterrupted run with big batches, bit for bit, and, unless the process
 * died before saving what it had published, no revision may go backwards.
 *
 * The kill -9 test of the real process (test_aggregator_it) shows the same end to end, with
 * real offsets; this one covers every crash point, which timing-based kills cannot.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agg_sink.h"
#include "aggregate.h"
#include "hvs/reading.h"
#include "hvs/redis.h"
#include "hvs/time.h"
#include "hvs_test.h"
#include "persist.h"

#define MIN (60 * 1000LL)
#define HOUR (60 * MIN)
#define NPART 8
#define BATCH 20
#define REF_BATCH 5000

static const char *SIM_ARGS =
    "--out jsonl --buildings 4 --apartments-per-building 8 --start 2024-11-25T00:00:00Z --days 6 "
    "--seed 5 --late-batch-rate 0.05 --gap-rate 0.02 --meter-replacement-rate 2";

typedef struct stream {
    hvs_reading_t *r;
    int32_t *part;
    size_t n;
} stream_t;

/* The worker's per-process state: what a crash loses. */
typedef struct proc {
    agg_t *g;
    hvs_ms_t wm[NPART];
    hvs_ms_t th[NPART][3];
} proc_t;

static const agg_config_t CONF = {
    .params = {15 * MIN, 375 * MIN, 24 * HOUR, 48 * HOUR, {20.0, 600.0}},
    .grace = {5 * MIN, 15 * MIN},
    .lateness = 48 * HOUR,
};

static hvs_redis_t *redis;
static hvs_redis_batch_t *rb;

static void load_stream(stream_t *s) {
    char cmd[1024], *out = NULL;
    size_t len = 0;
    snprintf(cmd, sizeof cmd, "%s %s 2>/dev/null", HVS_TEST_SIMULATOR, SIM_ARGS);
    HVS_REQUIRE(hvs_test_run(cmd, NULL, 0, &out, &len) == 0 && len > 0, "simulator: %s", cmd);
    size_t cap = 1024;
    s->r = malloc(cap * sizeof *s->r);
    s->part = malloc(cap * sizeof *s->part);
    char ids[NPART][sizeof s->r->building_id] = {{0}};
    int nids = 0;
    hvs_ms_t now = hvs_time_now_ms();
    for (char *line = out, *nl; line < out + len; line = nl + 1) {
        nl = memchr(line, '\n', (size_t)(out + len - line));
        if (!nl)
            nl = out + len;
        if (s->n == cap) {
            cap *= 2;
            s->r = realloc(s->r, cap * sizeof *s->r);
            s->part = realloc(s->part, cap * sizeof *s->part);
        }
        hvs_err_t err = {0};
        hvs_reading_t *r = &s->r[s->n];
        /* broken records are the dead-letter tests' business */
        if (hvs_reading_parse_json(line, (size_t)(nl - line), r, &err) ||
            hvs_reading_validate(r, now, 24 * HOUR, &err))
            continue;
        int p = 0;
        while (p < nids && strcmp(ids[p], r->building_id) != 0)
            p++;
        if (p == nids) {
            HVS_REQUIRE(nids < NPART, "more buildings than partitions");
            snprintf(ids[nids++], sizeof ids[0], "%s", r->building_id);
        }
        s->part[s->n++] = p;
    }
    free(out);
}

static void proc_start(proc_t *w) {
    w->g = agg_new(&CONF);
    HVS_REQUIRE(w->g, "agg_new");
    for (int p = 0; p < NPART; p++) {
        w->wm[p] = HVS_MS_NONE;
        agg_thresholds(w->g, HVS_MS_NONE, w->th[p]);
    }
}

/* What hvs-aggregator's on_assigned does for every partition. */
static void proc_restart(proc_t *w) {
    agg_destroy(w->g);
    proc_start(w);
    for (int p = 0; p < NPART; p++) {
        hvs_err_t err = {0};
        hvs_ms_t wm;
        HVS_REQUIRE(agg_persist_load(redis, rb, w->g, p, &wm, &err) == 0, "load: %s", err.msg);
        w->wm[p] = wm;
        agg_partition_loaded(w->g, p, wm);
        agg_thresholds(w->g, wm, w->th[p]);
    }
}

static void advance(proc_t *w, int32_t p, agg_sink_t *out) {
    hvs_ms_t th[3];
    agg_thresholds(w->g, w->wm[p], th);
    if (memcmp(th, w->th[p], sizeof th) == 0)
        return;
    memcpy(w->th[p], th, sizeof th);
    size_t n;
    agg_building_t **bs = agg_buildings(w->g, &n);
    hvs_err_t err = {0};
    for (size_t i = 0; i < n; i++)
        if (bs[i]->partition == p)
            HVS_REQUIRE(agg_advance(w->g, bs[i], w->wm[p], agg_sink_collect, out, &err) == 0,
                        "advance: %s", err.msg);
}

static void handle(proc_t *w, const hvs_reading_t *r, int32_t p, agg_sink_t *out) {
    hvs_err_t err = {0};
    int rc = agg_accept(w->g, r, p, w->wm[p], &err);
    if (rc == HVS_EINVAL)
        return; /* too late: dead-lettered */
    HVS_REQUIRE(rc >= 0, "accept: %s", err.msg);
    if (r->timestamp > w->wm[p])
        w->wm[p] = r->timestamp;
    advance(w, p, out);
}

static void batch_end(proc_t *w, agg_sink_t *out, bool save) {
    size_t n;
    agg_building_t **bs = agg_buildings(w->g, &n);
    hvs_err_t err = {0};
    for (size_t i = 0; i < n; i++)
        HVS_REQUIRE(agg_revise(w->g, bs[i], agg_sink_collect, out, &err) == 0, "revise: %s",
                    err.msg);
    if (!save)
        return;
    int32_t parts[NPART];
    for (int p = 0; p < NPART; p++)
        parts[p] = p;
    HVS_REQUIRE(agg_persist_save(redis, rb, w->g, parts, w->wm, NPART, &err) == 0, "save: %s",
                err.msg);
}

/* The stream ends: every partition's watermark moves on (idle advance) and closes the rest. */
static void finish(proc_t *w, agg_sink_t *out) {
    for (int p = 0; p < NPART; p++)
        if (w->wm[p] != HVS_MS_NONE) {
            w->wm[p] += 3 * HOUR;
            advance(w, p, out);
        }
    batch_end(w, out, true);
}

enum death { AFTER_COMMIT, BEFORE_COMMIT, BEFORE_SAVE, NDEATHS };
static const char *death_name[] = {"after the commit", "between save and commit",
                                   "before the save"};

/* Runs the stream; dies the given way at every `every`-th attempt to finish a batch (so with 2
 * each batch dies once and then goes through), or, every = 0, at random attempts. */
static void run(const stream_t *s, agg_sink_t *out, enum death how, int every, uint64_t seed,
                int *deaths) {
    hvs_err_t err = {0};
    HVS_REQUIRE(hvs_redis_command(redis, NULL, &err, "FLUSHDB") == 0, "flush: %s", err.msg);
    proc_t w;
    proc_start(&w);
    size_t committed = 0, batch = 0;
    uint64_t x = seed ? seed : 1;
    *deaths = 0;
    while (committed < s->n) {
        size_t end = committed + BATCH < s->n ? committed + BATCH : s->n;
        for (size_t i = committed; i < end; i++)
            handle(&w, &s->r[i], s->part[i], out);
        bool die;
        if (every > 0) {
            die = batch % (size_t)every == 0;
        } else {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            die = x % 9 == 0;
        }
        batch++;
        if (!die || end == s->n) {
            batch_end(&w, out, true);
            committed = end;
            continue;
        }
        (*deaths)++;
        switch (how) {
        case AFTER_COMMIT:
            batch_end(&w, out, true);
            committed = end;
            break;
        case BEFORE_COMMIT:
            batch_end(&w, out, true); /* saved, not committed: replayed after the restart */
            break;
        case BEFORE_SAVE:
            batch_end(&w, out, false); /* published, not saved, not committed */
            break;
        default: break;
        }
        proc_restart(&w);
    }
    finish(&w, out);
    agg_destroy(w.g);
    agg_sink_sort(out);
}

/* An apartment that falls silent for good is forgotten in the same batch that published its
 * last windows: the state write must not follow references to it (a use after free found by
 * the demo, where a 2024 sample file meets 2026 simulator data in one partition). */
static void need_redis(void);

static void test_forgotten_in_batch(void) {
    need_redis();
    hvs_err_t err = {0};
    HVS_REQUIRE(hvs_redis_command(redis, NULL, &err, "FLUSHDB") == 0, "flush");
    agg_t *g = agg_new(&CONF);
    agg_sink_t out = {0};
    hvs_reading_t r = {0};
    snprintf(r.building_id, sizeof r.building_id, "bldg");
    snprintf(r.v[0].sensor_type, sizeof r.v[0].sensor_type, "heating_energy_kwh");
    r.n = 1;
    hvs_ms_t t0 = 1733011200000LL;
    snprintf(r.apartment_id, sizeof r.apartment_id, "old");
    for (int i = 0; i < 8; i++) {
        r.timestamp = t0 + i * 15 * MIN;
        r.v[0].value = 100 + i;
        HVS_REQUIRE(agg_accept(g, &r, 0, i ? r.timestamp - 15 * MIN : HVS_MS_NONE, &err) >= 0,
                    "accept");
        size_t n0;
        agg_building_t **b0 = agg_buildings(g, &n0);
        HVS_REQUIRE(agg_advance(g, b0[0], r.timestamp, agg_sink_collect, &out, &err) == 0,
                    "advance");
    }
    size_t before = out.n;
    /* another apartment, 30 days later: the watermark leaps, "old" is published and forgotten */
    snprintf(r.apartment_id, sizeof r.apartment_id, "new");
    r.timestamp = t0 + 30 * 24 * HOUR;
    r.v[0].value = 5;
    HVS_REQUIRE(agg_accept(g, &r, 0, t0 + 2 * HOUR, &err) >= 0, "accept");
    size_t nb;
    agg_building_t **bs = agg_buildings(g, &nb);
    HVS_REQUIRE(agg_advance(g, bs[0], r.timestamp, agg_sink_collect, &out, &err) == 0, "advance");
    HVS_CHECK(agg_apartment(bs[0], "old", false) == NULL, "the silent apartment is forgotten");
    /* the 30 silent days in between publish nothing: only the windows up to the silence
     * threshold after the last reading (hourly + 15-minute, apartment + building) */
    HVS_CHECK(before > 0 && out.n > before && out.n - before < 100,
              "%zu windows published across a 30-day leap (%zu before it)", out.n - before, before);
    int32_t part = 0;
    hvs_ms_t wm = r.timestamp;
    HVS_CHECK(agg_persist_save(redis, rb, g, &part, &wm, 1, &err) == 0, "state written: %s",
              err.msg);
    redisReply *rep = NULL;
    hvs_redis_command(redis, &rep, &err, "HKEYS hvs:{bldg}:agg:mk");
    size_t stale = 0;
    for (size_t i = 0; rep && i < rep->elements; i++)
        stale += strstr(rep->element[i]->str, ":old") != NULL;
    HVS_CHECK(rep && stale == 0, "no marker of the forgotten apartment left in Redis: %zu", stale);
    if (rep)
        freeReplyObject(rep);
    agg_sink_fini(&out);
    agg_destroy(g);
}

/* State written before format 1 (text: hour buckets, a marker per window, text day accounts)
 * loads, and the next save replaces the apartment's samples and the building's markers by
 * format 1 (no text field left) that loads back to the same samples and markers. */
static void test_text_state_upgrades(void) {
    need_redis();
    hvs_err_t err = {0};
    HVS_REQUIRE(hvs_redis_command(redis, NULL, &err, "FLUSHDB") == 0, "flush");
    const hvs_ms_t h0 = 1733011200000LL; /* 2024-12-01T00:00Z */
    HVS_REQUIRE(hvs_redis_command(redis, NULL, &err, "SADD hvs:agg:part:0 bldg") == 0 &&
                    hvs_redis_command(redis, NULL, &err, "SADD hvs:{bldg}:agg:apts apt") == 0 &&
                    hvs_redis_command(redis, NULL, &err,
                                      "HSET hvs:{bldg}:agg:meta t15 %lld t60 %lld",
                                      (long long)(h0 + 8 * HOUR), (long long)(h0 + 7 * HOUR)) == 0,
                "meta");
    /* two text hour buckets 7 hours apart: two format-1 blocks */
    HVS_REQUIRE(hvs_redis_command(redis, NULL, &err, "HSET hvs:{bldg}:agg:s:apt %lld %s %lld %s",
                                  (long long)h0,
                                  "1733011200000+\x1fh\x1d"
                                  "100.5\x1ftkitchen\x1d"
                                  "21.25\x1e"
                                  "1733012100000+\x1fh\x1d"
                                  "100.6\x1e"
                                  "1733013000000\x1ftkitchen\x1d"
                                  "21.900000000000002",
                                  (long long)(h0 + 7 * HOUR),
                                  "1733036400000+\x1fh\x1d"
                                  "101") == 0,
                "text buckets");
    HVS_REQUIRE(
        hvs_redis_command(redis, NULL, &err,
                          "HSET hvs:{bldg}:agg:mk 60:%lld:apt %s 60:%lld:apt %s 15:%lld: %s",
                          (long long)h0, "3 18446744073709551615", (long long)(h0 + HOUR), "1 42",
                          (long long)(h0 + 15 * MIN), "2 7") == 0,
        "text markers");
    HVS_REQUIRE(hvs_redis_command(redis, NULL, &err, "HSET hvs:{bldg}:agg:dq %lld:apt %s",
                                  (long long)h0, "1 0:0.10000000000000001:0 1:2.5:0.5") == 0,
                "text day account");
    agg_t *g = agg_new(&CONF), *g2 = agg_new(&CONF);
    hvs_ms_t wm;
    HVS_REQUIRE(agg_persist_load(redis, rb, g, 0, &wm, &err) == 0, "load text: %s", err.msg);
    agg_building_t *b = agg_building(g, "bldg", 0, false);
    agg_apartment_t *a = b ? agg_apartment(b, "apt", false) : NULL;
    HVS_REQUIRE(a, "apartment loaded");
    const agg_series_t *t = agg_samples_find(&a->samples, AGG_TEMP, "kitchen");
    const agg_series_t *h = agg_samples_find(&a->samples, AGG_HEAT, "");
    HVS_CHECK(a->samples.ninst == 3 && h && h->n == 3 && t && t->n == 2 &&
                  t->p[1].v == 21.900000000000002 && h->p[2].v == 101,
              "samples from text: %zu instants", a->samples.ninst);
    agg_marker_t *m = agg_markers_find(&a->marks, h0);
    HVS_CHECK(m && m->rev == 3 && m->hash == UINT64_MAX && b->marks[AGG_W15].n == 1,
              "markers from text");
    HVS_CHECK(a->account.n == 1 && a->account.d[0].alerted && a->account.d[0].uncounted[1] == 0.5,
              "day account from text");
    int32_t part = 0;
    HVS_CHECK(agg_persist_save(redis, rb, g, &part, &wm, 1, &err) == 0, "save: %s", err.msg);
    /* no text left in the apartment's samples or the markers */
    static const char *const keys[] = {"hvs:{bldg}:agg:s:apt", "hvs:{bldg}:agg:mk"};
    size_t want[] = {3, 2}; /* directory + 2 blocks; the apartment's and the building's block */
    for (int k = 0; k < 2; k++) {
        redisReply *rep = NULL;
        HVS_REQUIRE(hvs_redis_command(redis, &rep, &err, "HGETALL %s", keys[k]) == 0, "hgetall");
        size_t bin = 0;
        for (size_t i = 0; i + 1 < rep->elements; i += 2)
            bin += rep->element[i + 1]->len > 0 && rep->element[i + 1]->str[0] == 1;
        HVS_CHECK(rep->elements == 2 * want[k] && bin == want[k], "%s: %zu fields, %zu format 1",
                  keys[k], rep->elements / 2, bin);
        freeReplyObject(rep);
    }
    HVS_REQUIRE(agg_persist_load(redis, rb, g2, 0, &wm, &err) == 0, "load format 1: %s", err.msg);
    agg_building_t *b2 = agg_building(g2, "bldg", 0, false);
    agg_apartment_t *a2 = b2 ? agg_apartment(b2, "apt", false) : NULL;
    HVS_REQUIRE(a2 && a2->samples.ns == a->samples.ns && a2->samples.ninst == a->samples.ninst,
                "apartment loaded again");
    for (size_t i = 0; i < a->samples.ninst; i++)
        HVS_CHECK(a2->samples.inst[i] == a->samples.inst[i], "instant %zu", i);
    for (size_t k = 0; k < a->samples.ns; k++) {
        const agg_series_t *x = &a->samples.s[k];
        const agg_series_t *y = agg_samples_find(&a2->samples, x->kind, x->room);
        HVS_CHECK(y && y->n == x->n, "series %s", x->room);
        for (size_t j = 0; y && j < x->n; j++)
            HVS_CHECK(memcmp(&x->p[j], &y->p[j], sizeof x->p[j]) == 0, "point %zu of %s", j,
                      x->room);
    }
    HVS_CHECK(a2->marks.n == 2 && b2->marks[AGG_W15].n == 1 &&
                  memcmp(a2->marks.m, a->marks.m, 2 * sizeof *a->marks.m) == 0 &&
                  b2->marks[AGG_W15].m[0].ws == h0 + 15 * MIN && b2->marks[AGG_W15].m[0].rev == 2 &&
                  b2->marks[AGG_W15].m[0].hash == 7,
              "markers in format 1 read back the same");
    agg_destroy(g);
    agg_destroy(g2);
}

/* ---- fixtures, started on first use ------------------------------------------------------ */

static hvs_test_proc_t rs;
static stream_t stream;
static agg_sink_t ref;
static bool have_ref;

static void teardown(void) {
    agg_sink_fini(&ref);
    free(stream.r);
    free(stream.part);
    hvs_redis_batch_destroy(rb);
    hvs_redis_destroy(redis);
    hvs_test_proc_stop(&rs);
}

static void need_redis(void) {
    if (redis)
        return;
    HVS_REQUIRE(hvs_test_redis_start(&rs, 0) == 0, "redis-server");
    hvs_err_t err = {0};
    HVS_REQUIRE(hvs_redis_connect(rs.addr, NULL, &redis, &err) == 0, "connect: %s", err.msg);
    rb = hvs_redis_batch_new();
    hvs_test_cleanup(teardown);
}

/* The simulator's stream and the reference run over it (never dies). */
static void need_reference(void) {
    if (have_ref)
        return;
    need_redis();
    load_stream(&stream);
    HVS_CHECK(stream.n > 5000, "%zu readings", stream.n);
    hvs_err_t err = {0};
    hvs_redis_command(redis, NULL, &err, "FLUSHDB");
    proc_t w;
    proc_start(&w);
    for (size_t i = 0; i < stream.n; i++) {
        handle(&w, &stream.r[i], stream.part[i], &ref);
        if ((i + 1) % REF_BATCH == 0) /* batch size does not matter either */
            batch_end(&w, &ref, true);
    }
    finish(&w, &ref);
    agg_destroy(w.g);
    agg_sink_sort(&ref);
    have_ref = true;
}

static void test_reference(void) {
    need_reference();
    size_t revised = 0;
    for (size_t i = 0; i < ref.n; i++)
        revised += ref.v[i].rev > 0;
    HVS_CHECK(ref.n > 4 * 7 * 24 * 4 && revised > 50, "reference: %zu windows, %zu revised", ref.n,
              revised);
    HVS_CHECK(ref.out_of_order == 0, "reference: %zu revisions out of order", ref.out_of_order);
}

/* Dies `how` at every batch (once) and at random batch ends (two seeds): the same windows. */
static void dying(enum death how) {
    need_reference();
    int deaths;
    int plans[][2] = {{2, 0}, {0, 12345}, {0, 777}};
    for (size_t k = 0; k < sizeof plans / sizeof plans[0]; k++) {
        agg_sink_t got = {0};
        run(&stream, &got, how, plans[k][0], (uint64_t)plans[k][1], &deaths);
        size_t same = agg_sink_equal(&ref, &got, 5);
        HVS_CHECK(got.n == ref.n && same == ref.n,
                  "dying %s %s (%d deaths): %zu windows, %zu of %zu equal", death_name[how],
                  plans[k][0] ? "at every batch (once)" : "at random batch ends", deaths, got.n,
                  same, ref.n);
        /* Dying before the save re-sends what the lost batch had published, from the
         * last durable revision on (at-least-once); otherwise revisions only go up. */
        if (how != BEFORE_SAVE)
            HVS_CHECK(got.out_of_order == 0, "dying %s: %zu revisions out of order",
                      death_name[how], got.out_of_order);
        agg_sink_fini(&got);
    }
}

static void test_dying_after_commit(void) { dying(AFTER_COMMIT); }
static void test_dying_before_commit(void) { dying(BEFORE_COMMIT); }
static void test_dying_before_save(void) { dying(BEFORE_SAVE); }

static const hvs_test_case_t cases[] = {
    {"forgotten_in_batch", test_forgotten_in_batch},
    {"text_state_upgrades", test_text_state_upgrades},
    {"reference_run", test_reference},
    {"dying_after_commit", test_dying_after_commit},
    {"dying_between_save_and_commit", test_dying_before_commit},
    {"dying_before_save", test_dying_before_save},
    HVS_TEST_CASES_END,
};

int main(int argc, char **argv) { return hvs_test_main(cases, argc, argv); }
