/*
 * test_fx_pending_it - the feature worker's waiting and weak vectors through a real
 * redis-server: every entry (weak, settled, missing mask, the entity part kept with it, NaN
 * included) loads back exactly; a save writes only what changed and deletes what was removed
 * (an entry made and released between two saves is neither written nor deleted);
 * a value is the binary layout of engine.c (checked against bytes built here by hand); entries
 * stored as text by earlier versions ("<weak> <missing>", and the full text entry with its
 * entity part) still load; a value that does not parse (text or a truncated binary one) is
 * refused naming its key.
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
    /* the text entry of the version before the binary one: "<weak> <missing> <settled>
     * <revision> <flags> <target>" and the entity part, "nan" for missing */
    char text[1024];
    int n = snprintf(text, sizeof text, "0 0 1 2 %u 3.25", (unsigned)HVS_FEAT_F_LAG_24_MISSING);
    for (int i = 0; i < HVS_FEATURES_ENTITY_COUNT; i++)
        n += snprintf(text + n, sizeof text - (size_t)n, i == 0 ? " nan" : " %d.5", i);
    HVS_REQUIRE(hvs_redis_command(r, &rep, &err, "HSET hvs:{bt}:fs:pend apt_1\x1f%lld %s",
                                  (long long)T0, text) == 0,
                "hset");
    freeReplyObject(rep);
    g = load("bt", &b, &rc);
    bool part = rc == 0 && b->npend == 1 && b->pend[0].has_snap && !b->pend[0].weak &&
                b->pend[0].settled && b->pend[0].snap.revision == 2 &&
                b->pend[0].snap.flags == HVS_FEAT_F_LAG_24_MISSING &&
                b->pend[0].snap.target == 3.25 && isnan(b->pend[0].snap.x[0]);
    for (int i = 1; part && i < HVS_FEATURES_ENTITY_COUNT; i++)
        part = b->pend[0].snap.x[i] == i + 0.5;
    HVS_CHECK(part, "a text entry with its entity part (the version before) loads with it");
    fx_destroy(g);
    struct {
        const char *id, *key, *why;
        const char *v;
        size_t len;
    } bad[] = {{"bq", "hvs:{bq}:fs:pend", "text", "1 0 0 3 x", 9},
               {"bz", "hvs:{bz}:fs:pend", "a truncated binary value", "B\x00\x00\x00\x04", 5}};
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        char field[64];
        snprintf(field, sizeof field, "apt_1\x1f%lld", (long long)T0);
        HVS_REQUIRE(hvs_redis_command(r, &rep, &err, "HSET %s %s %b", bad[k].key, field, bad[k].v,
                                      bad[k].len) == 0,
                    "hset");
        freeReplyObject(rep);
        hvs_err_t e2 = {0};
        fx_config_t c = conf();
        g = fx_new(&c, NULL);
        b = fx_building(g, bad[k].id, 0, true);
        rc = fx_load_pending(r, rb, b, &e2);
        HVS_CHECK(rc == HVS_ESERDE && strstr(e2.msg, bad[k].key),
                  "%s that does not parse is refused naming its key: %s", bad[k].why, e2.msg);
        fx_destroy(g);
    }
}

/* The stored value, byte for byte: 'B', six zigzag longs, then the target and the entity part as
 * 8-byte little-endian doubles, built here from the layout (not with the engine's writer). */
static void test_binary_layout(void) {
    setup();
    fx_config_t c = conf();
    fx_t *g = fx_new(&c, NULL);
    hvs_err_t err = {0};
    fx_sink_t sink = {0};
    for (int i = 0; i < 4; i++) {
        fx_aggregate_t a = {.building = "bl", .entity = "apt_7"};
        a.hour = (hvs_feat_hour_t){
            T0 + i * HOUR, 0.25 * (i + 1), NAN, 21, 21.5, 0.5, 0, NAN, NAN, 0, 0};
        HVS_REQUIRE(fx_on_aggregate(g, 0, &a, T0 + (i + 1) * HOUR, false, &sink, &err) == 0, "%s",
                    err.msg);
    }
    fx_building_t *b = fx_building(g, "bl", 0, false);
    HVS_REQUIRE(b && b->npend == 4, "four entries wait");
    save(b);
    const fx_pending_t *p = NULL;
    for (size_t i = 0; i < b->npend; i++)
        if (b->pend[i].hour == T0 + 3 * HOUR)
            p = &b->pend[i];
    HVS_REQUIRE(p, "hour 3 waits");
    unsigned char want[512];
    size_t n = 0;
    want[n++] = 'B';
    /* weak 0, settled 0, missing 0 (zigzag 0), revision 0, flags (small: one byte each) */
    int64_t longs[6] = {0, 0, 0, p->snap.revision, p->snap.flags, HVS_FEATURES_ENTITY_COUNT};
    for (int i = 0; i < 6; i++) {
        uint64_t z = (uint64_t)longs[i] << 1;
        while (z > 0x7f) {
            want[n++] = (unsigned char)(z | 0x80);
            z >>= 7;
        }
        want[n++] = (unsigned char)z;
    }
    double d[1 + HVS_FEATURES_ENTITY_COUNT];
    d[0] = p->snap.target;
    memcpy(d + 1, p->snap.x, sizeof p->snap.x);
    for (int i = 0; i <= HVS_FEATURES_ENTITY_COUNT; i++) {
        uint64_t bits;
        memcpy(&bits, &d[i], 8);
        for (int k = 0; k < 8; k++)
            want[n++] = (unsigned char)(bits >> (8 * k));
    }
    HVS_CHECK(p->snap.target == 1.0 && fabs(p->snap.x[3] - 0.5) < 1e-12,
              "hour 3's kept part: target 1.0, use_roll_3_mean 0.5 (hours 0-2)");
    redisReply *rep = NULL;
    char field[64];
    snprintf(field, sizeof field, "apt_7\x1f%lld", (long long)(T0 + 3 * HOUR));
    HVS_REQUIRE(hvs_redis_command(r, &rep, &err, "HGET hvs:{bl}:fs:pend %s", field) == 0, "hget");
    HVS_CHECK(rep->type == REDIS_REPLY_STRING && rep->len == n && memcmp(rep->str, want, n) == 0,
              "the value is the documented layout (%zu bytes, want %zu)",
              rep->type == REDIS_REPLY_STRING ? rep->len : 0, n);
    freeReplyObject(rep);
    fx_destroy(g);
}


static const hvs_test_case_t cases[] = {
    {"round_trip", test_round_trip},
    {"old_and_bad_values", test_old_and_bad_values},
    {"binary_layout", test_binary_layout},
    HVS_TEST_CASES_END,
};

int main(int argc, char **argv) { return hvs_test_main(cases, argc, argv); }
