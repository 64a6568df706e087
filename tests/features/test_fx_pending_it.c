/*
 * test_fx_pending_it - the feature worker's waiting and weak vectors through a real
 * redis-server: every entry (weak, settled, missing mask, the entity part kept with it, NaN
 * included) loads back exactly; a save writes only what changed and deletes what was removed
 * (an entry made and released between two saves is neither written nor deleted);
 * an entry stored by the previous version ("<weak> <missing>") still loads; a value that does
 * not parse is refused naming its key.
 */
#include <math.h>

#include "engine.h"
#include "hvs_test.h"

#define HOUR 3600000LL
#define T0 1733011200000LL /* 2024-12-01T00:00:00Z */

static hvs_test_proc_t rs;
static hvs_redis_t *r;
static hvs_redis_batch_t *rb;

static void teardown(void) {
    hvs_redis_batch_destroy(rb);
    hvs_redis_destroy(r);
    hvs_test_proc_stop(&rs);
}

static void setup(void) {
    if (r)
        return;
    HVS_REQUIRE(hvs_test_redis_start(&rs, 0) == 0, "redis");
    hvs_err_t err = {0};
    HVS_REQUIRE(hvs_redis_connect(rs.addr, NULL, &r, &err) == 0 && (rb = hvs_redis_batch_new()),
                "connect: %s", err.msg);
    hvs_test_cleanup(teardown);
}

static fx_config_t conf(void) {
    return (fx_config_t){.weather_wait = 2 * HOUR,
                         .upgrade_window = 48 * HOUR,
                         .default_region = "CH",
                         .dq_limit = 0.05,
                         .dq_min_vectors = 24};
}

static long long command_int(const char *fmt, const char *arg) {
    redisReply *rep = NULL;
    hvs_err_t err = {0};
    long long v = -1;
    if (hvs_redis_command(r, &rep, &err, fmt, arg) == 0 && rep->type == REDIS_REPLY_INTEGER)
        v = rep->integer;
    if (rep)
        freeReplyObject(rep);
    return v;
}

static void save(fx_building_t *b) {
    hvs_err_t err = {0};
    hvs_redis_batch_reset(rb);
    HVS_REQUIRE(fx_save_pending(rb, b, &err) == 0 && hvs_redis_batch_exec(r, rb, &err) == 0 &&
                    hvs_redis_batch_check(rb, &err) == 0,
                "save: %s", err.msg);
}

/* A fresh engine with building id (and its entities' rings empty) loaded from Redis. */
static fx_t *load(const char *id, fx_building_t **out, int *rc) {
    fx_config_t c = conf();
    fx_t *g = fx_new(&c, NULL);
    HVS_REQUIRE(g, "engine");
    fx_building_t *b = fx_building(g, id, 0, true);
    HVS_REQUIRE(b, "building");
    hvs_err_t err = {0};
    *rc = fx_load_pending(r, rb, b, &err);
    *out = b;
    return g;
}

static bool same(double a, double b) { return a == b || (isnan(a) && isnan(b)); }

static void test_round_trip(void) {
    setup();
    fx_config_t c = conf();
    fx_t *g = fx_new(&c, NULL);
    hvs_err_t err = {0};
    fx_sink_t sink = {0};
    /* apt_1 hour 10 waits (no weather), apt_2 hour 10 goes out weak (watermark past the
     * deadline): both with their entity part */
    for (int i = 0; i < 11; i++)
        for (int k = 1; k <= 2; k++) {
            fx_aggregate_t a = {.building = "bp", .entity = "apt_1"};
            a.entity[4] = (char)('0' + k);
            a.hour = (hvs_feat_hour_t){
                T0 + i * HOUR, 0.5 + 0.1 * i + k, NAN, 21, 21.5, 0.5, 0, NAN, NAN, 0, 0};
            hvs_ms_t wm = k == 2 && i == 10 ? T0 + 14 * HOUR : T0 + (i + 1) * HOUR;
            HVS_REQUIRE(fx_on_aggregate(g, 0, &a, wm, false, &sink, &err) == 0, "%s", err.msg);
        }
    fx_building_t *b = fx_building(g, "bp", 0, false);
    HVS_CHECK(b && b->npend >= 2, "entries waiting: %zu", b ? b->npend : 0);
    save(b);
    long long stored = command_int("HLEN %s", "hvs:{bp}:fs:pend");
    HVS_CHECK(stored == (long long)b->npend, "one field per entry: %lld", stored);
    int rc;
    fx_building_t *lb;
    fx_t *g2 = load("bp", &lb, &rc);
    size_t eq = 0;
    for (size_t i = 0; rc == 0 && i < b->npend; i++) {
        const fx_pending_t *p = &b->pend[i];
        for (size_t k = 0; k < lb->npend; k++) {
            const fx_pending_t *q = &lb->pend[k];
            if (q->hour != p->hour || strcmp(q->entity, p->entity) != 0)
                continue;
            bool ok = q->weak == p->weak && q->settled == p->settled && q->missing == p->missing &&
                      q->has_snap && q->snap.revision == p->snap.revision &&
                      q->snap.flags == p->snap.flags && same(q->snap.target, p->snap.target);
            for (int j = 0; j < HVS_FEATURES_ENTITY_COUNT; j++)
                ok = ok && same(q->snap.x[j], p->snap.x[j]);
            eq += ok;
        }
    }
    HVS_CHECK(rc == 0 && lb->npend == b->npend && eq == b->npend,
              "loaded back equal: %zu of %zu entries (rc %d)", eq, b->npend, rc);
    const fx_pending_t *w = NULL;
    for (size_t i = 0; i < lb->npend; i++)
        if (lb->pend[i].weak)
            w = &lb->pend[i];
    HVS_CHECK(w && strcmp(w->entity, "apt_2") == 0 && w->hour == T0 + 10 * HOUR &&
                  same(w->snap.target, 0.5 + 1.0 + 2) && isnan(w->snap.x[0]) &&
                  (w->snap.flags & HVS_FEAT_F_LAG_24_MISSING) &&
                  fabs(w->snap.x[3] - 3.3) < 1e-12 /* hours 7-9: 3.2 3.3 3.4 */,
              "the weak entry's kept part: target, use_lag_24 NaN and flagged, use_roll_3_mean");
    fx_destroy(g2);
    /* the observation of hour 10 releases both: the next save deletes their fields only */
    size_t before = b->npend;
    fx_weather_t ob = {.building = "bp",
                       .hour = T0 + 10 * HOUR,
                       .rec = {T0 + 11 * HOUR + 300000, true, 1.5, 70, 40, 100, 3}};
    HVS_REQUIRE(fx_on_weather(g, 0, &ob, T0 + 11 * HOUR, false, &sink, &err) == 0, "%s", err.msg);
    HVS_CHECK(b->npend == before - 2 && b->ngone == 2, "released: %zu left, %zu to delete",
              b->npend, b->ngone);
    save(b);
    HVS_CHECK(command_int("HLEN %s", "hvs:{bp}:fs:pend") == (long long)b->npend && b->ngone == 0,
              "deleted in Redis");
    /* an entry made and released between two saves never reaches Redis: nothing to delete */
    long long fields = command_int("HLEN %s", "hvs:{bp}:fs:pend");
    fx_aggregate_t a = {.building = "bp", .entity = "apt_1"};
    a.hour = (hvs_feat_hour_t){T0 + 11 * HOUR, 1.9, NAN, 21, 21.5, 0.5, 0, NAN, NAN, 0, 0};
    HVS_REQUIRE(fx_on_aggregate(g, 0, &a, T0 + 12 * HOUR, false, &sink, &err) == 0, "%s", err.msg);
    HVS_CHECK(b->npend == before - 1, "hour 11 waits: %zu entries", b->npend);
    ob.hour = T0 + 11 * HOUR;
    ob.rec.issued_at = T0 + 12 * HOUR + 300000;
    HVS_REQUIRE(fx_on_weather(g, 0, &ob, T0 + 12 * HOUR, false, &sink, &err) == 0, "%s", err.msg);
    HVS_CHECK(b->npend == before - 2 && b->ngone == 0, "released unsaved: %zu left, %zu to delete",
              b->npend, b->ngone);
    save(b);
    HVS_CHECK(command_int("HLEN %s", "hvs:{bp}:fs:pend") == fields, "no field written or left");
    fx_destroy(g);
}

static void test_old_and_bad_values(void) {
    setup();
    redisReply *rep = NULL;
    hvs_err_t err = {0};
    HVS_REQUIRE(hvs_redis_command(r, &rep, &err, "HSET hvs:{bo}:fs:pend apt_1\x1f%lld %s",
                                  (long long)T0, "1 1") == 0,
                "hset");
    freeReplyObject(rep);
    int rc;
    fx_building_t *b;
    fx_t *g = load("bo", &b, &rc);
    HVS_CHECK(rc == 0 && b->npend == 1 && b->pend[0].weak && b->pend[0].missing == 1 &&
                  !b->pend[0].has_snap,
              "an entry of the previous version loads (without its entity part)");
    fx_destroy(g);
    HVS_REQUIRE(hvs_redis_command(r, &rep, &err, "HSET hvs:{bq}:fs:pend apt_1\x1f%lld %s",
                                  (long long)T0, "1 0 0 3 x") == 0,
                "hset");
    freeReplyObject(rep);
    g = load("bq", &b, &rc);
    fx_destroy(g);
    hvs_err_t e2 = {0};
    fx_config_t c = conf();
    g = fx_new(&c, NULL);
    b = fx_building(g, "bq", 0, true);
    rc = fx_load_pending(r, rb, b, &e2);
    HVS_CHECK(rc == HVS_ESERDE && strstr(e2.msg, "hvs:{bq}:fs:pend"),
              "a value that does not parse is refused naming its key: %s", e2.msg);
    fx_destroy(g);
}

static const hvs_test_case_t cases[] = {
    {"round_trip", test_round_trip},
    {"old_and_bad_values", test_old_and_bad_values},
    HVS_TEST_CASES_END,
};

int main(int argc, char **argv) { return hvs_test_main(cases, argc, argv); }
