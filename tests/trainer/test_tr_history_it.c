/*
 * test_tr_history_it - the trainer's window in Redis (history.h) through a real redis-server:
 *   - a series' hours are stored as day fields "d<day>": after a save Redis holds exactly the
 *     days the ring holds hours of (a day whose hours were all evicted by the ring's wrap is
 *     deleted, one that lost some is rewritten without them), and the rings load back equal,
 *     slot for slot, numbers bit for bit (NaN, -0, hours off the hour and before 1970);
 *   - a window shortened between a save and a load keeps the newest hours, and its next save
 *     leaves Redis with the days of the shorter ring only;
 *   - text fields of one slot each (the format before days) load, and the series' next save
 *     replaces them with day fields in the same transaction;
 *   - the building's weather the same way: "d<day>" fields exactly as the weather ring holds
 *     days, loaded back bit for bit (before 1970, off the hour, -0, NaN), shortened with the
 *     window, text fields migrated;
 *   - a day field that does not parse is refused, naming its key;
 *   - Redis bytes per metered hour, text against days, printed.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "history.h"
#include "hvs/featstore.h"
#include "hvs/redis.h"
#include "hvs_test.h"

#define HOUR 3600000LL
#define T0 1730419200000LL /* 2024-11-01T00:00:00Z */

static hvs_test_proc_t rs;
static hvs_redis_t *r;

static bool same(double a, double b) { return memcmp(&a, &b, sizeof a) == 0; }

static bool hour_eq(const hvs_feat_hour_t *a, const hvs_feat_hour_t *b) {
    return a->hour == b->hour &&
           (a->hour == HVS_MS_NONE ||
            (a->revision == b->revision && same(a->use, b->use) && same(a->water, b->water) &&
             same(a->room_temp, b->room_temp) && same(a->setpoint, b->setpoint) &&
             same(a->comfort_gap, b->comfort_gap) && same(a->valve, b->valve) &&
             same(a->temp_std, b->temp_std) && a->rooms == b->rooms && a->flat == b->flat));
}

/* Hour k (from t0) of a metered apartment, numbers that are no short decimals included. */
static hvs_feat_hour_t metered(hvs_ms_t t0, int k) {
    return (hvs_feat_hour_t){.hour = t0 + (hvs_ms_t)k * HOUR,
                             .revision = (uint32_t)(k % 3),
                             .use = 0.3 + 0.011 * k / 7.0,
                             .water = k % 5 ? 0.02 : -0.0,
                             .room_temp = 20.283333333333335 + 0.01 * k,
                             .setpoint = 21.0,
                             .comfort_gap = k % 4 ? 0.7166666666666650 : NAN,
                             .valve = 35.5,
                             .temp_std = 0.123456789,
                             .rooms = 3,
                             .flat = 1};
}

static void save(tr_history_t *h) {
    hvs_redis_batch_t *b = hvs_redis_batch_new();
    hvs_err_t err = {0};
    HVS_REQUIRE(tr_history_save(h, b, &err) == 0, "save: %s", err.msg);
    if (hvs_redis_batch_size(b))
        HVS_REQUIRE(hvs_redis_batch_exec_atomic(r, b, &err) == 0 &&
                        hvs_redis_batch_check(b, &err) == 0,
                    "exec: %s", err.msg);
    hvs_redis_batch_destroy(b);
}

static tr_history_t *load(size_t ring, size_t apt_ring) {
    tr_history_t *h = tr_history_new(ring, 100);
    tr_history_set_apartment_hours(h, apt_ring);
    hvs_redis_batch_t *b = hvs_redis_batch_new();
    hvs_err_t err = {0};
    HVS_REQUIRE(tr_history_load(h, r, b, &err) == 0, "load: %s", err.msg);
    hvs_redis_batch_destroy(b);
    return h;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The sorted field names of key, space-separated, into out. */
static void fields_of(const char *key, char *out, size_t cap) {
    redisReply *rep = NULL;
    hvs_err_t err = {0};
    HVS_REQUIRE(hvs_redis_command(r, &rep, &err, "HKEYS %s", key) == 0 && rep, "HKEYS");
    const char **names = calloc(rep->elements + 1, sizeof *names);
    for (size_t i = 0; i < rep->elements; i++)
        names[i] = rep->element[i]->str;
    qsort(names, rep->elements, sizeof *names, cmp_str);
    out[0] = '\0';
    for (size_t i = 0; i < rep->elements; i++)
        snprintf(out + strlen(out), cap - strlen(out), "%s%s", i ? " " : "", names[i]);
    free(names);
    freeReplyObject(rep);
}

/* The field names a ring's held hours call for ("d<day>", sorted as strings): ring slots of
 * `stride` bytes, each starting with its hour (hvs_feat_hour_t, hvs_feat_wx_hour_t). */
static void days_of_ring(const void *slots, size_t ring, size_t stride, char *out, size_t cap) {
    char names[256][24];
    const char *p[256];
    size_t n = 0;
    for (size_t i = 0; i < ring; i++) {
        hvs_ms_t hour;
        memcpy(&hour, (const char *)slots + i * stride, sizeof hour);
        if (hour == HVS_MS_NONE)
            continue;
        char d[24];
        snprintf(d, sizeof d, "d%lld", (long long)hvs_fs_day_of(hour));
        bool seen = false;
        for (size_t k = 0; k < n; k++)
            seen |= strcmp(names[k], d) == 0;
        if (!seen && n < 256) {
            snprintf(names[n], sizeof names[n], "%s", d);
            p[n] = names[n];
            n++;
        }
    }
    qsort(p, n, sizeof *p, cmp_str);
    out[0] = '\0';
    for (size_t i = 0; i < n; i++)
        snprintf(out + strlen(out), cap - strlen(out), "%s%s", i ? " " : "", p[i]);
}

static void days_held(const tr_series_t *s, char *out, size_t cap) {
    days_of_ring(s->hours, s->ring, sizeof *s->hours, out, cap);
}

static void wx_days_held(const tr_building_t *b, size_t ring, char *out, size_t cap) {
    days_of_ring(b->wx, ring, sizeof *b->wx, out, cap);
}

static bool wx_eq(const hvs_feat_wx_hour_t *a, const hvs_feat_wx_hour_t *b) {
    if (a->hour != b->hour || a->n != b->n)
        return false;
    for (int i = 0; i < a->n; i++) {
        const hvs_feat_wx_t *x = &a->v[i], *y = &b->v[i];
        if (x->issued_at != y->issued_at || x->observed != y->observed || !same(x->temp, y->temp) ||
            !same(x->rh, y->rh) || !same(x->cloud, y->cloud) || !same(x->ghi, y->ghi) ||
            !same(x->wind, y->wind))
            return false;
    }
    return true;
}

/* The weather rings of two loads of building id, slot for slot. */
static bool same_weather(const tr_history_t *a, const tr_history_t *b, const char *id) {
    const tr_building_t *x = tr_history_building((tr_history_t *)a, id, false),
                        *y = tr_history_building((tr_history_t *)b, id, false);
    if (!x || !y || a->ring != b->ring)
        return false;
    for (size_t i = 0; i < a->ring; i++)
        if (!wx_eq(&x->wx[i], &y->wx[i]))
            return false;
    return true;
}

/* Weather of hour t as the weather worker sends it: a forecast issued 6 h before (one decimal),
 * an observation issued after the hour with a reading unknown. */
static void put_weather(tr_history_t *h, const char *b, hvs_ms_t t, int k) {
    hvs_feat_wx_t f = {t - 6 * HOUR, false, 0.1 * (k % 90) - 3, 80, 50, 100.5 * (k % 7), 3.5};
    hvs_feat_wx_t o = {t + HOUR + 60000, true, 0.1 * (k % 90) - 2.9, NAN, 40, 99, -0.0};
    HVS_REQUIRE(tr_history_put_weather(h, b, t, &f) >= 0 &&
                    tr_history_put_weather(h, b, t, &o) >= 0,
                "put weather");
}

static bool same_series(const tr_series_t *a, const tr_series_t *b) {
    if (!a || !b || a->ring != b->ring)
        return false;
    for (size_t i = 0; i < a->ring; i++)
        if (!hour_eq(&a->hours[i], &b->hours[i]))
            return false;
    return true;
}

static long long memory_of(const char *key) {
    redisReply *rep = NULL;
    hvs_err_t err = {0};
    long long n = -1;
    if (hvs_redis_command(r, &rep, &err, "MEMORY USAGE %s SAMPLES 0", key) == 0 && rep &&
        rep->type == REDIS_REPLY_INTEGER)
        n = rep->integer;
    if (rep)
        freeReplyObject(rep);
    return n;
}

static void test_days(void) {
    /* building ring 72 h, apartments 48 h; 100 hours (the rings wrap), starting mid-day */
    tr_history_t *h = tr_history_new(72, 100);
    tr_history_set_apartment_hours(h, 48);
    const hvs_ms_t t0 = T0 + 7 * HOUR;
    for (int k = 0; k < 100; k++) {
        hvs_feat_hour_t x = metered(t0, k);
        HVS_REQUIRE(tr_history_put_hour(h, "b1", "a1", &x) >= 0, "put");
        x.use *= 10;
        HVS_REQUIRE(tr_history_put_hour(h, "b1", HVS_FS_BUILDING, &x) >= 0, "put");
        put_weather(h, "b1", t0 + k * HOUR, k);
        if (k == 50) /* a save mid-way: later evictions must rewrite days already stored */
            save(h);
    }
    hvs_feat_hour_t odd = metered(-30 * HOUR, 0), late = metered(-30 * HOUR, 0);
    odd.hour = -30 * HOUR + 1234; /* before 1970, off the hour: a series of its own */
    late.hour = -29 * HOUR;
    tr_history_put_hour(h, "b1", "a9", &odd);
    tr_history_put_hour(h, "b1", "a9", &late);
    hvs_feat_wx_t wodd = {odd.hour - 1, true, -12.5, 90, 100, 0, 1}; /* its weather, odd too */
    tr_history_put_weather(h, "b2", odd.hour, &wodd);
    save(h);
    tr_building_t *b = tr_history_building(h, "b1", false);
    const char *ents[] = {HVS_FS_BUILDING, "a1", "a9"};
    for (int e = 0; e < 3; e++) {
        tr_series_t *s = tr_history_series(h, b, ents[e], false);
        char key[64], got[1024], want[1024];
        snprintf(key, sizeof key, "hvs:{b1}:tr:h:%s", ents[e]);
        fields_of(key, got, sizeof got);
        days_held(s, want, sizeof want);
        HVS_CHECK(strcmp(got, want) == 0, "%s: Redis holds the ring's days: %s, want %s", key, got,
                  want);
    }
    const char *wb[] = {"b1", "b2"};
    for (int k = 0; k < 2; k++) {
        char key[64], got[1024], want[1024];
        snprintf(key, sizeof key, "hvs:{%s}:tr:wx", wb[k]);
        fields_of(key, got, sizeof got);
        wx_days_held(tr_history_building(h, wb[k], false), h->ring, want, sizeof want);
        HVS_CHECK(strcmp(got, want) == 0 && want[0],
                  "%s: Redis holds the weather ring's days: %s, want %s", key, got, want);
    }
    tr_history_t *h2 = load(72, 48);
    tr_building_t *b2 = tr_history_building(h2, "b1", false);
    HVS_REQUIRE(b2, "loaded");
    HVS_CHECK(same_weather(h, h2, "b1") && same_weather(h, h2, "b2"),
              "the weather loads back the same, bit for bit");
    for (int e = 0; e < 3; e++)
        HVS_CHECK(same_series(tr_history_series(h, b, ents[e], false),
                              tr_history_series(h2, b2, ents[e], false)),
                  "%s: the same ring, bit for bit", ents[e]);
    HVS_CHECK(b2->first == b->first && b2->last == b->last, "first and last hour");

    /* the window shortened to 36 h: the newest 36 hours stay, Redis follows at the next save */
    tr_history_t *h3 = load(36, 36);
    tr_building_t *b3 = tr_history_building(h3, "b1", false);
    tr_series_t *s3 = tr_history_series(h3, b3, HVS_FS_BUILDING, false);
    int newest = 0;
    for (int k = 64; k < 100; k++) {
        const hvs_feat_hour_t *x = &s3->hours[hvs_feat_slot(t0 + k * HOUR, 36)];
        newest += x->hour == t0 + k * HOUR;
    }
    HVS_CHECK_EQ_INT(newest, 36);
    save(h3);
    char got[1024], want[1024];
    fields_of("hvs:{b1}:tr:h:-", got, sizeof got);
    days_held(s3, want, sizeof want);
    HVS_CHECK(strcmp(got, want) == 0, "shortened: Redis holds %s, want %s", got, want);
    fields_of("hvs:{b1}:tr:wx", got, sizeof got);
    wx_days_held(b3, 36, want, sizeof want);
    HVS_CHECK(strcmp(got, want) == 0, "shortened: the weather's days %s, want %s", got, want);
    tr_history_t *h4 = load(36, 36);
    HVS_CHECK(same_weather(h3, h4, "b1"), "the shortened weather loads back equal");
    HVS_CHECK(same_series(s3, tr_history_series(h4, tr_history_building(h4, "b1", false),
                                                HVS_FS_BUILDING, false)),
              "the shortened ring loads back equal");
    tr_history_destroy(h), tr_history_destroy(h2), tr_history_destroy(h3), tr_history_destroy(h4);
}

static void test_text_fields_migrate(void) {
    char got0[2048], want0[2048];
    /* a series stored as the format before days: one text field per slot */
    tr_history_t *ref = tr_history_new(72, 100);
    for (int k = 0; k < 72; k++) {
        hvs_feat_hour_t x = metered(T0, k);
        x.comfort_gap = 0.5; /* text keeps NaN's sign, not its payload: keep it out */
        tr_history_put_hour(ref, "b2", "a1", &x);
    }
    tr_series_t *rs_ = tr_history_series(ref, tr_history_building(ref, "b2", false), "a1", false);
    redisReply *rep = NULL;
    hvs_err_t err = {0};
    for (size_t i = 0; i < rs_->ring; i++) {
        char v[256], f[24];
        size_t n = hvs_fs_encode_hour(&rs_->hours[i], v, sizeof v);
        snprintf(f, sizeof f, "%zu", i);
        HVS_REQUIRE(hvs_redis_command(r, &rep, &err, "HSET hvs:{b2}:tr:h:a1 %s %b", f, v, n) == 0,
                    "HSET");
        freeReplyObject(rep);
    }
    for (int k = 0; k < 72; k++) /* and its weather as text, a field per slot */
        put_weather(ref, "b2", T0 + k * HOUR, k);
    tr_building_t *rb = tr_history_building(ref, "b2", false);
    for (size_t i = 0; i < ref->ring; i++) {
        char v[1024], f[24];
        size_t n = hvs_fs_encode_wx(&rb->wx[i], v, sizeof v);
        snprintf(f, sizeof f, "%zu", i);
        HVS_REQUIRE(hvs_redis_command(r, &rep, &err, "HSET hvs:{b2}:tr:wx %s %b", f, v, n) == 0,
                    "HSET");
        freeReplyObject(rep);
    }
    long long wx_text_bytes = memory_of("hvs:{b2}:tr:wx");
    HVS_REQUIRE(hvs_redis_command(r, &rep, &err, "SADD hvs:{b2}:tr:ents a1") == 0, "SADD");
    freeReplyObject(rep);
    HVS_REQUIRE(hvs_redis_command(r, &rep, &err, "SADD hvs:tr:buildings b2") == 0, "SADD");
    freeReplyObject(rep);
    long long text_bytes = memory_of("hvs:{b2}:tr:h:a1");
    tr_history_t *h = load(72, 72);
    tr_series_t *s = tr_history_series(h, tr_history_building(h, "b2", false), "a1", false);
    HVS_CHECK(same_series(rs_, s), "the text fields load to the same ring");
    HVS_CHECK(s && s->legacy, "marked for rewriting");
    HVS_CHECK(same_weather(ref, h, "b2") && tr_history_building(h, "b2", false)->wx_legacy,
              "the text weather loads the same, marked for rewriting");
    save(h);
    fields_of("hvs:{b2}:tr:wx", got0, sizeof got0);
    wx_days_held(tr_history_building(h, "b2", false), 72, want0, sizeof want0);
    HVS_CHECK(strcmp(got0, want0) == 0, "weather day fields only: %s, want %s", got0, want0);
    long long wx_day_bytes = memory_of("hvs:{b2}:tr:wx");
    printf("72 hours of weather (a forecast and an observation each): %lld bytes as text fields, "
           "%lld as day fields\n",
           wx_text_bytes, wx_day_bytes);
    HVS_CHECK(wx_day_bytes > 0 && wx_day_bytes * 3 < wx_text_bytes,
              "weather days at least 3x smaller");
    char got[1024], want[1024];
    fields_of("hvs:{b2}:tr:h:a1", got, sizeof got);
    days_held(s, want, sizeof want);
    HVS_CHECK(strcmp(got, want) == 0, "day fields only: %s, want %s", got, want);
    long long day_bytes = memory_of("hvs:{b2}:tr:h:a1");
    printf("a metered apartment's 72 hours: %lld bytes as text fields (%.0f an hour), %lld as "
           "day fields (%.0f an hour)\n",
           text_bytes, text_bytes / 72.0, day_bytes, day_bytes / 72.0);
    HVS_CHECK(day_bytes > 0 && day_bytes * 3 < text_bytes, "days at least 3x smaller");
    tr_history_t *h2 = load(72, 72);
    HVS_CHECK(
        same_series(rs_, tr_history_series(h2, tr_history_building(h2, "b2", false), "a1", false)),
        "the day fields load to the same ring");
    HVS_CHECK(same_weather(ref, h2, "b2"), "the weather's day fields load the same");

    /* a day field that does not parse: refused, naming the key */
    HVS_REQUIRE(hvs_redis_command(r, &rep, &err, "HSET hvs:{b2}:tr:h:a1 d20000 junk") == 0, "HSET");
    freeReplyObject(rep);
    tr_history_t *h3 = tr_history_new(72, 100);
    hvs_redis_batch_t *b = hvs_redis_batch_new();
    hvs_err_t lerr = {0};
    HVS_CHECK(tr_history_load(h3, r, b, &lerr) == HVS_ESERDE &&
                  strstr(lerr.msg, "hvs:{b2}:tr:h:a1") && strstr(lerr.msg, "d20000"),
              "bad day refused: %s", lerr.msg);
    hvs_redis_batch_destroy(b);
    tr_history_destroy(ref), tr_history_destroy(h), tr_history_destroy(h2), tr_history_destroy(h3);
}

/* What live weather costs: every 6-hourly run of 72 h issued for an hour (12) and the
 * observation, one-decimal temperatures and winds, whole percents and W/m2, for 7 days: loads
 * back the same, and the Redis bytes per building-year are printed (README "The window"). */
static void test_live_weather_cost(void) {
    tr_history_t *h = tr_history_new(7 * 24, 10);
    int records = 0;
    for (int k = 0; k < 7 * 24; k++) {
        hvs_ms_t t = T0 + k * HOUR;
        for (int run = 12; run >= 1; run--) {
            hvs_ms_t issued = (t - run * 6 * HOUR) / (6 * HOUR) * (6 * HOUR);
            hvs_feat_wx_t f = {
                issued,          false,           0.1 * ((k * 7 + run) % 200) - 5, (k + run) % 100,
                (k * run) % 101, 10.0 * (k % 60), 0.1 * ((k + run) % 120)};
            records += tr_history_put_weather(h, "b3", t, &f) == 1;
        }
        hvs_feat_wx_t o = {t + HOUR, true, 0.1 * (k % 200) - 5, k % 100, NAN, 10.0 * (k % 60), 2.5};
        records += tr_history_put_weather(h, "b3", t, &o) == 1;
    }
    size_t text = 0; /* the values alone as the text fields before days were */
    tr_building_t *b = tr_history_building(h, "b3", false);
    for (size_t i = 0; i < h->ring; i++)
        text += hvs_fs_encode_wx(&b->wx[i], NULL, 0);
    save(h);
    long long bytes = memory_of("hvs:{b3}:tr:wx");
    printf("live weather, %d records in %d hours: %lld bytes in Redis, %.0f an hour, %.2f MB per "
           "building-year (as text: %.0f bytes an hour of values alone)\n",
           records, 7 * 24, bytes, bytes / (7.0 * 24), bytes / (7.0 * 24) * 8760 / 1e6,
           text / (7.0 * 24));
    HVS_CHECK(records >= 12 * 7 * 24 && bytes > 0 && bytes / (7.0 * 24) < 300,
              "%d records, %lld bytes", records, bytes);
    tr_history_t *h2 = load(7 * 24, 7 * 24);
    HVS_CHECK(same_weather(h, h2, "b3"), "loads back the same");
    tr_history_destroy(h), tr_history_destroy(h2);
}

static void setup(void) {
    HVS_REQUIRE(hvs_test_redis_start(&rs, 0) == 0, "redis");
    hvs_err_t err = {0};
    HVS_REQUIRE(hvs_redis_connect(rs.addr, NULL, &r, &err) == 0, "connect: %s", err.msg);
}

static void teardown(void) {
    hvs_redis_destroy(r);
    hvs_test_proc_stop(&rs);
}

static void run_days(void) { setup(), test_days(), teardown(); }
static void run_text(void) { setup(), test_text_fields_migrate(), teardown(); }
static void run_live_weather(void) { setup(), test_live_weather_cost(), teardown(); }

static const hvs_test_case_t cases[] = {
    {"day_fields_follow_the_ring", run_days},
    {"text_fields_migrate_to_days", run_text},
    {"live_weather_costs_little", run_live_weather},
    HVS_TEST_CASES_END,
};

int main(int argc, char **argv) { return hvs_test_main(cases, argc, argv); }
