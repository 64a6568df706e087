/*
 * test_featstore_it - feature state through a real redis-server: hour and weather slots, and
 * blocks of an entity's ring, round-trip exactly (NaN, -0, infinities, numbers that are no short
 * decimal, hours before 1970 and not on the hour included); a block's bytes are the documented
 * layout; a saved building loads back equal, slot for slot, its rings in blocks of 24 slots;
 * only dirty blocks are written; state in the format before blocks (a field per slot) loads and
 * is rewritten in blocks at the next save; revision rules (older revisions and hours older
 * than the ring are ignored); partition membership and the epoch marker; unparsable stored
 * state is refused naming its key.
 */
#include <math.h>

#include "hvs/featstore.h"
#include "hvs/pack.h"
#include "hvs/redis.h"
#include "hvs_test.h"

#define HOUR 3600000LL
#define T0 1730419200000LL /* 2024-11-01T00:00:00Z */

static bool same(double a, double b) { return a == b || (isnan(a) && isnan(b)); }

static bool hour_eq(const hvs_feat_hour_t *a, const hvs_feat_hour_t *b) {
    return a->hour == b->hour && a->revision == b->revision && same(a->use, b->use) &&
           same(a->water, b->water) && same(a->room_temp, b->room_temp) &&
           same(a->setpoint, b->setpoint) && same(a->comfort_gap, b->comfort_gap) &&
           same(a->valve, b->valve) && same(a->temp_std, b->temp_std) && a->rooms == b->rooms &&
           a->flat == b->flat;
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

/* A redis-server of its own and a client of it. */
static hvs_redis_t *redis_up(hvs_test_proc_t *rs) {
    HVS_REQUIRE(hvs_test_redis_start(rs, 0) == 0, "redis");
    hvs_redis_t *r;
    hvs_err_t err = {0};
    HVS_REQUIRE(hvs_redis_connect(rs->addr, NULL, &r, &err) == 0, "connect: %s", err.msg);
    return r;
}

static long long hlen(hvs_redis_t *r, const char *key) {
    redisReply *rep = NULL;
    hvs_err_t err;
    long long n = -1;
    if (hvs_redis_command(r, &rep, &err, "HLEN %s", key) == 0 && rep->type == REDIS_REPLY_INTEGER)
        n = rep->integer;
    if (rep)
        freeReplyObject(rep);
    return n;
}

/* Encodings of an hour slot and a weather slot round-trip exactly, NaN included. */
static void test_encodings(void) {
    hvs_feat_hour_t h = {T0, 1.25, NAN, 20.4, 21.0, 0.6000000000000014, 3, 37.5, 0.25, 3, 2};
    char buf[4096];
    size_t n = hvs_fs_encode_hour(&h, buf, sizeof buf);
    hvs_feat_hour_t h2;
    HVS_CHECK(n < sizeof buf && hvs_fs_decode_hour(buf, n, &h2) == 0 && hour_eq(&h, &h2),
              "hour round trip: %.*s", (int)n, buf);
    HVS_CHECK(hvs_fs_decode_hour("1 2 3", 5, &h2) != 0 &&
                  hvs_fs_decode_hour("x 0 1 1 1 1 1", 13, &h2) != 0,
              "malformed hour refused");
    /* an hour saved by feature set 1 (no rooms) reads with the rooms unknown */
    HVS_CHECK(hvs_fs_decode_hour("1000 2 1.5 nan 20 21 1", 22, &h2) == 0 && h2.use == 1.5 &&
                  isnan(h2.valve) && isnan(h2.temp_std) && h2.rooms == 0 && h2.flat == 0,
              "a feature-set-1 hour loads without rooms");
    HVS_CHECK(hvs_fs_decode_hour("1000 2 1.5 nan 20 21 1 3 0.1 -1 0", 33, &h2) != 0,
              "a negative room set refused");
    hvs_feat_wx_hour_t w = {.hour = HVS_MS_NONE}, w2;
    for (int i = 0; i < 3; i++) {
        hvs_feat_wx_t r = {T0 - (10 - i) * HOUR, i == 2, 4.5 + i, 80, NAN, 120.25, 3};
        hvs_feat_wx_add(&w, T0, &r);
    }
    n = hvs_fs_encode_wx(&w, buf, sizeof buf);
    HVS_CHECK(hvs_fs_decode_wx(buf, n, &w2) == 0 && wx_eq(&w, &w2), "weather round trip: %.*s",
              (int)n, buf);
    HVS_CHECK(hvs_fs_decode_wx("123|1 2 3", 9, &w2) != 0, "malformed weather refused");
}

/* Building bldg_1 (partition 5) with an apartment and the building entity, 400 hours each and
 * weather for each hour. */
static hvs_fs_building_t *filled_building(hvs_fs_entity_t **e, hvs_fs_entity_t **be) {
    hvs_fs_building_t *b = hvs_fs_building_new("bldg_1", 5);
    *e = hvs_fs_entity(b, "apt_2", true);
    *be = hvs_fs_entity(b, HVS_FS_BUILDING, true);
    HVS_REQUIRE(*e && *be && b->nents == 2 && strcmp(b->ents[0]->id, "-") == 0, "entities sorted");
    for (int i = 0; i < 400; i++) { /* more than the ring: the newest 336 stay */
        hvs_feat_hour_t x = {T0 + i * HOUR, 0.5 + 0.1 * i, 10, 20, 21, 1, 0, NAN, NAN, 0, 0};
        hvs_fs_put_hour(*e, &x);
        hvs_fs_put_hour(*be, &x);
        hvs_feat_wx_t r = {T0 + i * HOUR + HOUR, true, 1.0 * i, 50, 50, 0, 2};
        hvs_fs_put_weather(b, T0 + i * HOUR, &r);
    }
    return b;
}

/* In memory: the ring keeps the newest hours; older revisions, replays and hours older than the
 * ring are ignored. */
static void test_ring_and_revisions(void) {
    hvs_fs_entity_t *e, *be;
    hvs_fs_building_t *b = filled_building(&e, &be);
    hvs_feat_hour_t old = {T0 + 10 * HOUR, 99, 0, 0, 0, 0, 5, NAN, NAN, 0, 0};
    HVS_CHECK(hvs_fs_put_hour(e, &old) == 0, "an hour older than the ring is ignored");
    hvs_feat_hour_t rev1 = {T0 + 399 * HOUR, 7.5, 10, 20, 21, 1, 1, NAN, NAN, 0, 0};
    HVS_CHECK(hvs_fs_put_hour(e, &rev1) == 1, "revision 1 replaces 0");
    hvs_feat_hour_t rev0 = {T0 + 399 * HOUR, 1.0, 10, 20, 21, 1, 0, NAN, NAN, 0, 0};
    HVS_CHECK(hvs_fs_put_hour(e, &rev0) == 0 && hvs_fs_put_hour(e, &rev1) == 0,
              "older revision and a replay are ignored");
    hvs_feat_history_t view;
    hvs_fs_view(b, e, T0, &view);
    const hvs_feat_hour_t *got = hvs_feat_hour_get(&view, T0 + 399 * HOUR);
    HVS_CHECK(got && got->use == 7.5 && !hvs_feat_hour_get(&view, T0 + 63 * HOUR) &&
                  hvs_feat_hour_get(&view, T0 + 64 * HOUR),
              "ring keeps the newest %d hours", HVS_FS_HOURS);
    hvs_fs_building_destroy(b);
}

/* Through a real redis-server: partition membership and the epoch marker, only dirty slots
 * written, a saved building loads back equal slot for slot, unparsable state refused naming its
 * key. */
static void test_redis_round_trip(void) {
    hvs_fs_entity_t *e, *be;
    hvs_fs_building_t *b = filled_building(&e, &be);
    hvs_feat_hour_t rev1 = {
        T0 + 399 * HOUR, 7.5, 10, 20, 21, 1, 1, NAN, NAN, 0, 0}; /* a revised slot saved too */
    hvs_fs_put_hour(e, &rev1);
    hvs_test_proc_t rs;
    hvs_redis_t *r = redis_up(&rs);
    hvs_err_t err = {0};
    hvs_redis_batch_t *batch = hvs_redis_batch_new();
    char **ids;
    size_t nids;
    bool epoch;
    HVS_CHECK(hvs_fs_partition(r, batch, 5, &ids, &nids, &epoch, &err) == 0 && nids == 0 && !epoch,
              "empty partition, no epoch");
    hvs_fs_ids_free(ids, nids);
    hvs_redis_batch_reset(batch);
    HVS_CHECK(hvs_fs_save(batch, b, &err) == 0 && hvs_redis_batch_exec(r, batch, &err) == 0 &&
                  hvs_redis_batch_errors(batch) == 0,
              "save: %s", err.msg);
    HVS_CHECK(hlen(r, "hvs:{bldg_1}:fs:h:apt_2") == HVS_FS_BLOCKS &&
                  hlen(r, "hvs:{bldg_1}:fs:wx") == HVS_FS_BLOCKS,
              "an entity's ring and the weather in %d blocks each", HVS_FS_BLOCKS);
    /* nothing dirty: a second save writes nothing */
    hvs_redis_batch_reset(batch);
    hvs_fs_save(batch, b, &err);
    HVS_CHECK(hvs_redis_batch_size(batch) == 0, "clean building writes nothing: %zu commands",
              hvs_redis_batch_size(batch));
    hvs_feat_hour_t one = {T0 + 400 * HOUR, 1, 1, 1, 1, 0, 0, NAN, NAN, 0, 0};
    hvs_fs_put_hour(e, &one);
    hvs_redis_batch_reset(batch);
    hvs_fs_save(batch, b, &err);
    HVS_CHECK(hvs_redis_batch_size(batch) == 1, "one dirty slot, one command (its block)");
    hvs_redis_batch_exec(r, batch, &err);

    HVS_CHECK(hvs_fs_partition(r, batch, 5, &ids, &nids, &epoch, &err) == 0 && nids == 1 &&
                  strcmp(ids[0], "bldg_1") == 0 && epoch,
              "partition lists the building, epoch set");
    hvs_fs_ids_free(ids, nids);
    hvs_fs_building_t *l;
    HVS_REQUIRE(hvs_fs_load(r, batch, "bldg_1", 5, &l, &err) == 0 && l, "load: %s", err.msg);
    int eq = 0;
    for (size_t i = 0; i < HVS_FS_HOURS; i++) {
        eq += hour_eq(&l->ents[1]->hours[i], &e->hours[i]) &&
              hour_eq(&l->ents[0]->hours[i], &be->hours[i]);
        eq += wx_eq(&l->wx[i], &b->wx[i]);
    }
    HVS_CHECK(l->nents == 2 && eq == 2 * HVS_FS_HOURS, "loaded equal: %d of %d slots", eq,
              2 * HVS_FS_HOURS);
    hvs_fs_building_destroy(l);
    HVS_CHECK(hvs_fs_load(r, batch, "nobody", 0, &l, &err) == 0 && l == NULL, "absent building");
    /* a block whose hours belong to another block's slots */
    redisReply *rep = NULL;
    HVS_REQUIRE(hvs_redis_command(r, &rep, &err, "HGET hvs:{bldg_1}:fs:h:apt_2 b3") == 0 &&
                    rep->type == REDIS_REPLY_STRING,
                "b3");
    hvs_redis_command(r, NULL, &err, "HSET hvs:{bldg_1}:fs:h:apt_2 b4 %b", rep->str, rep->len);
    freeReplyObject(rep);
    HVS_CHECK(hvs_fs_load(r, batch, "bldg_1", 5, &l, &err) == HVS_ESERDE && !l &&
                  strstr(err.msg, "hvs:{bldg_1}:fs:h:apt_2"),
              "a block of other slots refused: %s", err.msg);
    hvs_redis_command(r, NULL, &err, "HDEL hvs:{bldg_1}:fs:h:apt_2 b4");
    /* a block under a name the save never writes ("b03" for b3): refused, not kept forever */
    HVS_REQUIRE(hvs_redis_command(r, &rep, &err, "HGET hvs:{bldg_1}:fs:wx b3") == 0 &&
                    rep->type == REDIS_REPLY_STRING,
                "weather b3");
    hvs_redis_command(r, NULL, &err, "HSET hvs:{bldg_1}:fs:wx b03 %b", rep->str, rep->len);
    freeReplyObject(rep);
    HVS_CHECK(hvs_fs_load(r, batch, "bldg_1", 5, &l, &err) == HVS_ESERDE && !l &&
                  strstr(err.msg, "hvs:{bldg_1}:fs:wx") && strstr(err.msg, "b03"),
              "a block under another name refused: %s", err.msg);
    hvs_redis_command(r, NULL, &err, "HDEL hvs:{bldg_1}:fs:wx b03");
    hvs_redis_command(r, NULL, &err, "HSET hvs:{bldg_1}:fs:h:apt_2 3 garbage");
    HVS_CHECK(hvs_fs_load(r, batch, "bldg_1", 5, &l, &err) == HVS_ESERDE && !l &&
                  strstr(err.msg, "hvs:{bldg_1}:fs:h:apt_2"),
              "unparsable state refused: %s", err.msg);
    hvs_fs_building_destroy(b);
    hvs_redis_batch_destroy(batch);
    hvs_redis_destroy(r);
    hvs_test_proc_stop(&rs);
}


/* A block round-trips exactly whatever its numbers and hours; truncated or foreign bytes are
 * refused; its bytes are the layout of featstore.c, built here by hand for one slot. */
static void test_blocks(void) {
    hvs_feat_hour_t ring[HVS_FS_HOURS];
    for (size_t s = 0; s < HVS_FS_HOURS; s++)
        ring[s] = (hvs_feat_hour_t){.hour = HVS_MS_NONE};
    const double odd[] = {0.1 + 0.2, -0.0,  INFINITY, -INFINITY, 1e15,
                          2.5e-7,    -3.25, 0.0,      123456.789};
    /* block 2 (slots 48..71): whole hours after and before 1970, one not on the hour */
    for (int i = 0; i < 9; i++) {
        hvs_ms_t hour = (i % 2 ? -1 : 1) * (hvs_ms_t)(400 + i) * HVS_FS_HOURS * HOUR;
        hour += (hvs_ms_t)(48 + 2 * i) * HOUR; /* slot 48 + 2i (floor modulo, also below 0) */
        hvs_feat_hour_t h = {hour,  odd[i],           i % 3 ? NAN : odd[8 - i], 20.5,
                             NAN,   odd[(i + 4) % 9], (uint32_t)(i * 1000003u), i == 4 ? NAN : 37.5,
                             0.125, (uint32_t)i,      (uint32_t)(i % 2)};
        ring[hvs_feat_slot(hour, HVS_FS_HOURS)] = h;
    }
    hvs_feat_hour_t odd_hour = {(hvs_ms_t)1000 * HVS_FS_HOURS * HOUR + 51 * HOUR + 1234,
                                1.5,
                                NAN,
                                NAN,
                                NAN,
                                NAN,
                                0,
                                NAN,
                                NAN,
                                0,
                                0}; /* slot 51, not on the hour */
    ring[hvs_feat_slot(odd_hour.hour, HVS_FS_HOURS)] = odd_hour;
    HVS_REQUIRE(hvs_feat_slot(odd_hour.hour, HVS_FS_HOURS) / 24 == 2, "odd hour in block 2");
    char w[8192];
    size_t wn = hvs_fs_encode_block(ring, 2, w, sizeof w);
    hvs_feat_hour_t back[HVS_FS_BLOCK_HOURS];
    HVS_REQUIRE(wn <= sizeof w && hvs_fs_decode_block(w, wn, 2, back) == 0, "decode block 2");
    int eq = 0, signs = 0;
    for (int i = 0; i < HVS_FS_BLOCK_HOURS; i++) {
        eq += hour_eq(&back[i], &ring[48 + i]);
        signs += signbit(back[i].use) == signbit(ring[48 + i].use);
    }
    HVS_CHECK(eq == HVS_FS_BLOCK_HOURS && signs == HVS_FS_BLOCK_HOURS,
              "block round trip: %d of %d slots equal (signs %d), %zu bytes", eq,
              HVS_FS_BLOCK_HOURS, signs, wn);
    HVS_CHECK(hvs_fs_decode_block(w, wn, 3, back) != 0,
              "decoded as another block: refused (its hours are not that block's slots)");
    int truncated = 0;
    for (size_t n = 0; n < wn; n++)
        truncated += hvs_fs_decode_block(w, n, 2, back) != 0;
    HVS_CHECK(truncated == (int)wn, "every truncation refused: %d of %zu", truncated, wn);
    HVS_CHECK(hvs_fs_encode_block(ring, 2, w, 10) == wn, "a short buffer: the length needed");
    /* the bytes of a block with one slot, by hand: format 1, block 1; slot 24's mask
     * PRESENT|USE|WATER = 13, cycle 5 (zigzag 10), revision 2, use 0.347 (pack.h: m 347, k 3:
     * zigzag 694 << 3 | 3 = 5555 = 0xb3 0x2b), water 10 (zigzag 20 << 3 = 160 = 0xa0 0x01);
     * then 23 empty slots (0) */
    for (size_t s = 0; s < HVS_FS_HOURS; s++)
        ring[s] = (hvs_feat_hour_t){.hour = HVS_MS_NONE};
    hvs_ms_t h0 = (hvs_ms_t)(5 * HVS_FS_HOURS + 24) * HOUR; /* cycle 5, slot 24: block 1 */
    ring[24] = (hvs_feat_hour_t){h0, 0.347, 10, NAN, NAN, NAN, 2, NAN, NAN, 0, 0};
    unsigned char want[64] = {1, 1, 13, 10, 2, 0xb3, 0x2b, 0xa0, 0x01};
    size_t nwant = 9 + 23;
    wn = hvs_fs_encode_block(ring, 1, w, sizeof w);
    HVS_CHECK(wn == nwant && memcmp(w, want, nwant) == 0, "the documented bytes (%zu, want %zu)",
              wn, nwant);
}

/* A weather block round-trips exactly: records of every kind of issue time (whole hours, whole
 * seconds, milliseconds, a difference that overflows), NaN, -0 and odd numbers, hours before 1970
 * and off the hour, a full hour of HVS_FEAT_WX_KEEP records; other blocks' names, truncations,
 * and records out of order are refused; one slot's bytes as documented in featstore.c. */
static void test_wx_blocks(void) {
    static hvs_feat_wx_hour_t ring[HVS_FS_HOURS];
    for (size_t s = 0; s < HVS_FS_HOURS; s++)
        ring[s] = (hvs_feat_wx_hour_t){.hour = HVS_MS_NONE};
    const double odd[] = {0.1 + 0.2, -0.0, INFINITY, NAN, 1e15, 2.5e-7, -3.25, 0.0, 123456.789};
    for (int i = 0; i < 9; i++) { /* block 3: slots 72.. */
        hvs_ms_t hour = (i % 2 ? -1 : 1) * (hvs_ms_t)(300 + i) * HVS_FS_HOURS * HOUR;
        hour += (hvs_ms_t)(72 + 2 * i) * HOUR;
        hvs_feat_wx_hour_t *w = &ring[hvs_feat_slot(hour, HVS_FS_HOURS)];
        w->hour = hour;
        int n = i == 4 ? HVS_FEAT_WX_KEEP : i + 1;
        for (int k = 0; k < n; k++) {
            hvs_ms_t at = hour - (hvs_ms_t)(n - k) * 6 * HOUR; /* forecasts: whole hours */
            if (k == 1)
                at = hour - 7 * HOUR + 1000 * k; /* whole seconds */
            if (k == 2)
                at = hour - 5 * HOUR + 17; /* milliseconds */
            if (i >= 7 && k == n - 1) /* i = 7: an hour before 1970, the subtraction overflows; */
                at = INT64_MAX;       /* i = 8: the difference is too large for its varint */
            w->v[w->n++] = (hvs_feat_wx_t){
                at,         k == n - 1, odd[(i + k) % 9], odd[(i + 2 * k) % 9], k % 2 ? NAN : 50,
                odd[k % 9], 3.5};
        }
        /* issue times ascending, as hvs_feat_wx_add keeps them */
        for (int a = 1; a < w->n; a++)
            for (int c = a; c > 0 && w->v[c].issued_at < w->v[c - 1].issued_at; c--) {
                hvs_feat_wx_t t = w->v[c];
                w->v[c] = w->v[c - 1], w->v[c - 1] = t;
            }
    }
    hvs_ms_t oh = (hvs_ms_t)700 * HVS_FS_HOURS * HOUR + 93 * HOUR +
                  4321; /* slot 93, off the hour */
    ring[93] = (hvs_feat_wx_hour_t){.hour = oh, .n = 1};
    ring[93].v[0] = (hvs_feat_wx_t){oh + 1, true, -12.5, 99, 100, 0, 0.1};
    static char w[65536];
    size_t wn = hvs_fs_encode_wx_block(ring, 3, w, sizeof w);
    hvs_feat_wx_hour_t back[HVS_FS_BLOCK_HOURS];
    HVS_REQUIRE(wn <= sizeof w && hvs_fs_decode_wx_block(w, wn, 3, back) == 0, "decode block 3");
    int eq = 0, signs = 0;
    for (int i = 0; i < HVS_FS_BLOCK_HOURS; i++) {
        eq += wx_eq(&back[i], &ring[72 + i]);
        for (int k = 0; k < back[i].n; k++)
            signs += signbit(back[i].v[k].temp) != signbit(ring[72 + i].v[k].temp);
    }
    HVS_CHECK(eq == HVS_FS_BLOCK_HOURS && signs == 0,
              "weather block round trip: %d of %d slots equal (%d signs differ), %zu bytes", eq,
              HVS_FS_BLOCK_HOURS, signs, wn);
    HVS_CHECK(hvs_fs_decode_wx_block(w, wn, 4, back) != 0, "decoded as another block: refused");
    int truncated = 0;
    for (size_t n = 0; n < wn; n++)
        truncated += hvs_fs_decode_wx_block(w, n, 3, back) != 0;
    HVS_CHECK(truncated == (int)wn, "every truncation refused: %d of %zu", truncated, wn);
    HVS_CHECK(hvs_fs_encode_wx_block(ring, 3, w, 10) == wn, "a short buffer: the length needed");

    /* one slot by hand: format 3, block 1; slot 24 present (1), cycle 5 (zigzag 10), 1 record:
     * a forecast issued 6 h before (unit 2, zigzag(-6) = 11: 11 << 3 | 2 << 1 = 92), mask temp
     * and ghi (9), temp 4.5 (m 45, k 1: zigzag 90 << 3 | 1 = 721 = 0xd1 0x05), ghi 0 (0); then 23
     * empty slots */
    for (size_t s = 0; s < HVS_FS_HOURS; s++)
        ring[s] = (hvs_feat_wx_hour_t){.hour = HVS_MS_NONE};
    hvs_ms_t h0 = (hvs_ms_t)(5 * HVS_FS_HOURS + 24) * HOUR;
    ring[24] = (hvs_feat_wx_hour_t){.hour = h0, .n = 1};
    ring[24].v[0] = (hvs_feat_wx_t){h0 - 6 * HOUR, false, 4.5, NAN, NAN, 0, NAN};
    unsigned char want[64] = {3, 1, 1, 10, 1, 92, 9, 0xd1, 0x05, 0x00};
    size_t nwant = 10 + 23;
    wn = hvs_fs_encode_wx_block(ring, 1, w, sizeof w);
    HVS_CHECK(wn == nwant && memcmp(w, want, nwant) == 0,
              "the documented weather bytes (%zu, want %zu)", wn, nwant);
    /* two records out of order: the second issued 1 h before the first */
    unsigned char swapped[64] = {3, 1, 1, 10, 2, 92, 0, 108, 0};
    memset(swapped + 9, 0, 23); /* 11 + 2 = 13 (-7 h): 13 << 3 | 4 = 108 */
    HVS_CHECK(hvs_fs_decode_wx_block((const char *)swapped, 9 + 23, 1, back) != 0,
              "records out of issue order refused");
    swapped[7] = 92 - 16; /* -5 h: after the first, accepted */
    HVS_CHECK(hvs_fs_decode_wx_block((const char *)swapped, 9 + 23, 1, back) == 0 &&
                  back[0].n == 2 && back[0].v[1].issued_at == h0 - 5 * HOUR,
              "records in issue order read");
    /* one instant twice: a forecast before an observation (92, then 93) is the order kept;
     * the reverse, or the same kind twice, hvs_feat_wx_add never keeps */
    const unsigned char pairs[3][2] = {{92, 93}, {93, 92}, {92, 92}};
    for (int k = 0; k < 3; k++) {
        swapped[5] = pairs[k][0], swapped[7] = pairs[k][1];
        int rc = hvs_fs_decode_wx_block((const char *)swapped, 9 + 23, 1, back);
        HVS_CHECK(k == 0
                      ? rc == 0 && back[0].n == 2 && !back[0].v[0].observed && back[0].v[1].observed
                      : rc != 0,
                  "same instant, records %d then %d: %s", pairs[k][0], pairs[k][1],
                  rc ? "refused" : "read");
    }
    /* an hour off the hour so early it has no slot (hvs_feat_slot needs an hour to spare) */
    char early[64];
    size_t en = 0;
    hvs_pack_put_bytes(early, sizeof early, &en, (const char[]){3, 0, 3}, 3);
    hvs_pack_put_varint(early, sizeof early, &en, UINT64_MAX - 2); /* zigzag(INT64_MIN + 1) */
    HVS_CHECK(hvs_fs_decode_wx_block(early, en, 0, back) != 0, "an hour without a slot refused");
}

/* A ring's weather by UTC day (the trainer's window, any length) round-trips exactly; another
 * day's name, truncations refused; a day the ring holds no hour of encodes to nothing. */
static void test_wx_days(void) {
    enum { N = 50 }; /* not a multiple of 24: a day's hours wrap around the ring */
    static hvs_feat_wx_hour_t ring[N];
    for (size_t s = 0; s < N; s++)
        ring[s] = (hvs_feat_wx_hour_t){.hour = HVS_MS_NONE};
    const int64_t day = -400; /* before 1970 */
    for (int i = 0; i < 24; i += 3) {
        hvs_ms_t hour = (day * 24 + i) * HOUR + (i == 9 ? 777 : 0); /* hour 9 off the hour */
        hvs_feat_wx_hour_t *w = &ring[hvs_feat_slot(hour, N)];
        *w = (hvs_feat_wx_hour_t){.hour = hour, .n = 2};
        w->v[0] = (hvs_feat_wx_t){hour - 12 * HOUR, false, -0.0, NAN, 0.1 + 0.2, 250, 4};
        w->v[1] = (hvs_feat_wx_t){hour + 61000, true, 1.5 * i, 60, NAN, 0, NAN};
    }
    static char v[HVS_FS_WX_DAY_MAX];
    size_t n = hvs_fs_encode_wx_day(ring, N, day, v, sizeof v);
    hvs_feat_wx_hour_t back[24];
    HVS_REQUIRE(n > 0 && n <= sizeof v && hvs_fs_decode_wx_day(v, n, day, back) == 0, "decode day");
    int eq = 0;
    for (int i = 0; i < 24; i++) {
        const hvs_feat_wx_hour_t *w = &ring[hvs_feat_slot((day * 24 + i) * HOUR, N)];
        eq += i % 3 ? back[i].hour == HVS_MS_NONE : wx_eq(&back[i], w);
    }
    HVS_CHECK(eq == 24 && signbit(back[0].v[0].temp),
              "weather day round trip: %d of 24 (%zu bytes)", eq, n);
    HVS_CHECK(hvs_fs_decode_wx_day(v, n, day + 1, back) != 0, "read as another day: refused");
    int truncated = 0;
    for (size_t k = 0; k < n; k++)
        truncated += hvs_fs_decode_wx_day(v, k, day, back) != 0;
    HVS_CHECK(truncated == (int)n, "every truncation refused: %d of %zu", truncated, n);
    HVS_CHECK(hvs_fs_encode_wx_day(ring, N, day + 3, v, sizeof v) == 0,
              "a day without hours in the ring: nothing to store");
}

/* State written before blocks (a text field per slot) loads as it was; the next save replaces
 * those fields by blocks, and what loads then is the same ring. */
static void test_state_before_blocks(void) {
    hvs_fs_entity_t *e, *be;
    hvs_fs_building_t *b = filled_building(&e, &be);
    hvs_test_proc_t rs;
    hvs_redis_t *r = redis_up(&rs);
    hvs_err_t err = {0};
    hvs_redis_batch_t *batch = hvs_redis_batch_new();
    /* the meta keys and weather through the store, the rings as the format before wrote them */
    e->hours[7].rooms = 3, e->hours[7].flat = 1, e->hours[7].valve = 12.5;
    HVS_REQUIRE(hvs_fs_save(batch, b, &err) == 0, "save");
    hvs_redis_batch_exec(r, batch, &err);
    hvs_redis_command(r, NULL, &err,
                      "DEL hvs:{bldg_1}:fs:h:apt_2 hvs:{bldg_1}:fs:h:- hvs:{bldg_1}:fs:wx");
    for (size_t s = 0; s < HVS_FS_HOURS; s++) {
        char v[2048];
        if (s % 2 == 0) /* the weather as text too, every other slot */
            hvs_redis_command(r, NULL, &err, "HSET hvs:{bldg_1}:fs:wx %d %b", (int)s, v,
                              hvs_fs_encode_wx(&b->wx[s], v, sizeof v));
        size_t n = hvs_fs_encode_hour(&e->hours[s], v, sizeof v);
        hvs_redis_command(r, NULL, &err, "HSET hvs:{bldg_1}:fs:h:apt_2 %d %b", (int)s, v, n);
        if (s < 100) /* the building's ring partly */
            hvs_redis_command(r, NULL, &err, "HSET hvs:{bldg_1}:fs:h:- %d %b", (int)s, v,
                              hvs_fs_encode_hour(&be->hours[s], v, sizeof v));
    }
    hvs_fs_building_t *l;
    HVS_REQUIRE(hvs_fs_load(r, batch, "bldg_1", 5, &l, &err) == 0 && l, "load: %s", err.msg);
    int eq = 0;
    for (size_t i = 0; i < HVS_FS_HOURS; i++)
        eq += hour_eq(&l->ents[1]->hours[i], &e->hours[i]) &&
              (i >= 100 ? l->ents[0]->hours[i].hour == HVS_MS_NONE
                        : hour_eq(&l->ents[0]->hours[i], &be->hours[i]));
    HVS_CHECK(eq == HVS_FS_HOURS, "the slot-per-field state loads: %d of %d slots", eq,
              HVS_FS_HOURS);
    int weq = 0;
    for (size_t i = 0; i < HVS_FS_HOURS; i++)
        weq += i % 2 ? l->wx[i].hour == HVS_MS_NONE : wx_eq(&l->wx[i], &b->wx[i]);
    HVS_CHECK(weq == HVS_FS_HOURS, "the text weather loads: %d of %d slots", weq, HVS_FS_HOURS);
    hvs_redis_batch_reset(batch);
    HVS_REQUIRE(hvs_fs_save(batch, l, &err) == 0 && hvs_redis_batch_exec(r, batch, &err) == 0 &&
                    hvs_redis_batch_errors(batch) == 0,
                "save: %s", err.msg);
    HVS_CHECK(hlen(r, "hvs:{bldg_1}:fs:h:apt_2") == HVS_FS_BLOCKS &&
                  hlen(r, "hvs:{bldg_1}:fs:h:-") == 5 /* slots 0..99: blocks 0..4 */,
              "rewritten in blocks, the slot fields gone: %lld and %lld fields",
              hlen(r, "hvs:{bldg_1}:fs:h:apt_2"), hlen(r, "hvs:{bldg_1}:fs:h:-"));
    HVS_CHECK(hlen(r, "hvs:{bldg_1}:fs:wx") == HVS_FS_BLOCKS,
              "the weather replaced by its blocks: %lld fields", hlen(r, "hvs:{bldg_1}:fs:wx"));
    hvs_redis_batch_reset(batch);
    hvs_fs_save(batch, l, &err);
    HVS_CHECK(hvs_redis_batch_size(batch) == 0, "then clean: %zu commands",
              hvs_redis_batch_size(batch));
    hvs_fs_building_t *l2;
    HVS_REQUIRE(hvs_fs_load(r, batch, "bldg_1", 5, &l2, &err) == 0 && l2, "load: %s", err.msg);
    eq = 0;
    for (size_t i = 0; i < HVS_FS_HOURS; i++)
        eq += hour_eq(&l2->ents[1]->hours[i], &e->hours[i]) &&
              hour_eq(&l2->ents[0]->hours[i], &l->ents[0]->hours[i]) &&
              wx_eq(&l2->wx[i], &l->wx[i]);
    HVS_CHECK(eq == HVS_FS_HOURS, "the blocks load the same ring: %d of %d", eq, HVS_FS_HOURS);
    hvs_fs_building_destroy(l2);
    hvs_fs_building_destroy(l);
    hvs_fs_building_destroy(b);
    hvs_redis_batch_destroy(batch);
    hvs_redis_destroy(r);
    hvs_test_proc_stop(&rs);
}

static const hvs_test_case_t cases[] = {
    {"hour_and_weather_slots_round_trip", test_encodings},
    {"ring_keeps_newest_hours_and_revision_rules", test_ring_and_revisions},
    {"saved_building_loads_back_equal_only_dirty_written", test_redis_round_trip},
    {"blocks_round_trip_exactly", test_blocks},
    {"weather_blocks_round_trip_exactly", test_wx_blocks},
    {"weather_days_round_trip_exactly", test_wx_days},
    {"state_before_blocks_loads_and_is_rewritten", test_state_before_blocks},
    HVS_TEST_CASES_END,
};

int main(int argc, char **argv) { return hvs_test_main(cases, argc, argv); }
