/*
 * test_sc_state_it - the scorer's state (state.h) through a real redis-server:
 *   - state of the earlier format (a text field per slot, "0".."71") loads to the same ring,
 *     and the next save deletes those fields and writes the ring in blocks "b0".."b2" in one
 *     step; the blocks load back to the same ring again (compared block bytes, which carry
 *     every field bit for bit);
 *   - a save after the migration writes only the blocks with a changed slot (a block left alone
 *     keeps what Redis holds), and nothing for an unchanged apartment;
 *   - a stored block that does not parse is skipped loudly: the apartment keeps its other
 *     blocks and the load succeeds;
 *   - the bytes per apartment a full 72-hour ring takes, printed.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "hvs/redis.h"
#include "hvs_test.h"
#include "state.h"

#define HOUR HVS_MS_HOUR
#define T0 (1733011200000LL / HOUR * HOUR)
#define BLOCK_CAP 16384

static hvs_test_proc_t rs;
static hvs_redis_t *r;

static redisReply *cmd(const char *fmt, const char *a, const char *b) {
    redisReply *rep = NULL;
    hvs_err_t err = {0};
    HVS_REQUIRE(hvs_redis_command(r, &rep, &err, fmt, a, b) == 0 && rep, "%s: %s", fmt, err.msg);
    return rep;
}

/* Hour k of apartment a, both halves, values that are not short decimals included. */
static void fill_hour(sc_state_t *s, sc_apartment_t *a, int k) {
    hvs_ms_t h = T0 + (hvs_ms_t)k * HOUR;
    sc_agg_t *g = sc_agg_take(a, h);
    g->rev = k % 3;
    g->heat_kwh = (float)(0.35 + 0.0137 * k);
    g->rule_score = k % 5 ? 0 : 0.6f;
    g->nrooms = 2;
    for (int i = 0; i < 2; i++)
        g->rooms[i] = (sc_room_t){.name = (uint8_t)sc_room_intern(a, i ? "bed room" : "living"),
                                  .temp_mean = (float)(20.283333 + 0.1 * i - 0.01 * k),
                                  .setpoint = 21.0f,
                                  .valve = i ? NAN : (float)(35 + k % 40),
                                  .changes = (uint16_t)(k % 4),
                                  .seen = 4};
    if (k % 5 == 0) {
        g->nfired = 1;
        g->fired[0] = (sc_fired_t){.rule = 1,
                                   .room = 0,
                                   .hours = 6,
                                   .strength = 0.6f,
                                   .a = 100,
                                   .b = 6,
                                   .c = 16.2f,
                                   .d = 21};
    }
    sc_model_t *m = sc_model_take(a, h);
    m->rev = k % 3;
    m->observed = g->heat_kwh;
    m->expected = (float)(0.3 + 0.011 * k);
    m->residual_z = (float)(0.5 - 0.07 * k);
    m->prob = (float)(0.01 * (k % 50));
    m->outdoor_c = (float)(-2.5 + 0.3 * k);
    m->e_res = 0.2f;
    m->res_ident = sc_ident_intern(&s->idents, "anomaly-residual/global:3");
    m->cls_ident = sc_ident_intern(&s->idents, "anomaly-classifier/global:1");
    m->ncontrib = 2;
    m->contrib[0] = (sc_contrib_t){4, 1.7f, 0.031f};
    m->contrib[1] = (sc_contrib_t){12, -3.3f, -0.0123f};
}

/* Every block of a in bytes. */
static void blocks_of(const sc_state_t *s, const sc_apartment_t *a, char out[][BLOCK_CAP],
                      size_t *len) {
    for (size_t k = 0; k < SC_BLOCKS; k++) {
        len[k] = sc_block_encode(a, &s->idents, k, out[k], BLOCK_CAP);
        HVS_REQUIRE(len[k] <= BLOCK_CAP, "block fits");
    }
}

static bool same_ring(const sc_state_t *s1, const sc_apartment_t *a, const sc_state_t *s2,
                      const sc_apartment_t *b) {
    static char x[SC_BLOCKS][BLOCK_CAP], y[SC_BLOCKS][BLOCK_CAP];
    size_t lx[SC_BLOCKS], ly[SC_BLOCKS];
    blocks_of(s1, a, x, lx);
    blocks_of(s2, b, y, ly);
    for (size_t k = 0; k < SC_BLOCKS; k++)
        if (lx[k] != ly[k] || memcmp(x[k], y[k], lx[k]) != 0)
            return false;
    return true;
}

static sc_state_t *load(size_t *nbuildings) {
    sc_state_t *s = sc_state_new();
    hvs_redis_batch_t *rb = hvs_redis_batch_new();
    hvs_err_t err = {0};
    HVS_REQUIRE(s && rb, "state");
    HVS_REQUIRE(sc_state_load_partition(s, r, rb, 0, nbuildings, &err) == 0, "load: %s", err.msg);
    hvs_redis_batch_destroy(rb);
    return s;
}

/* Save s in one transaction; the number of commands it took. */
static size_t save(sc_state_t *s) {
    hvs_redis_batch_t *b = hvs_redis_batch_new();
    hvs_err_t err = {0};
    HVS_REQUIRE(sc_state_save(s, b, &err) == 0, "save: %s", err.msg);
    size_t n = hvs_redis_batch_size(b);
    if (n)
        HVS_REQUIRE(hvs_redis_batch_exec_atomic(r, b, &err) == 0 &&
                        hvs_redis_batch_check(b, &err) == 0,
                    "exec: %s", err.msg);
    hvs_redis_batch_destroy(b);
    return n;
}

static long long memory_of(const char *key) {
    redisReply *rep = cmd("MEMORY USAGE %s SAMPLES 0", key, NULL);
    long long n = rep->type == REDIS_REPLY_INTEGER ? rep->integer : -1;
    freeReplyObject(rep);
    return n;
}

static bool fields_are(const char *key, const char *want) {
    redisReply *rep = cmd("HKEYS %s", key, NULL);
    char got[256] = "";
    /* sorted, so Redis's order does not matter */
    const char *names[SC_RING + 8];
    size_t n = rep->elements < SC_RING + 8 ? rep->elements : SC_RING + 8;
    for (size_t i = 0; i < n; i++)
        names[i] = rep->element[i]->str;
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
            const char *t = names[j];
            names[j] = names[j - 1], names[j - 1] = t;
        }
    for (size_t i = 0; i < n; i++)
        snprintf(got + strlen(got), sizeof got - strlen(got), "%s%s", i ? " " : "", names[i]);
    bool ok = strcmp(got, want) == 0;
    if (!ok)
        printf("fields of %s: %s, want %s\n", key, got, want);
    freeReplyObject(rep);
    return ok;
}

static void test_text_state_migrates_to_blocks(void) {
    /* the reference ring, written in the earlier format: a text field per slot */
    sc_state_t *ref = sc_state_new();
    sc_building_t *b = sc_state_building(ref, "b1", 0, true);
    sc_apartment_t *full = sc_state_apartment(b, "apt_1", true);
    sc_apartment_t *part = sc_state_apartment(b, "apt_2", true);
    for (int k = 0; k < SC_RING; k++)
        fill_hour(ref, full, k);
    for (int k = 0; k < 10; k++)
        fill_hour(ref, part, k);
    freeReplyObject(cmd("SADD hvs:sc:part:0 %s", "b1", NULL));
    freeReplyObject(cmd("SADD hvs:{b1}:sc:apts %s %s", "apt_1", "apt_2"));
    int written = 0;
    for (size_t i = 0; i < b->napts; i++)
        for (size_t s = 0; s < SC_RING; s++) {
            sc_apartment_t *a = b->apts[i];
            if (a->slots[s].agg.hour == HVS_MS_NONE)
                continue;
            char text[4096], key[64], field[8];
            size_t n = sc_slot_encode(a, &ref->idents, &a->slots[s], text, sizeof text);
            HVS_REQUIRE(n > 0, "text");
            snprintf(key, sizeof key, "hvs:{b1}:sc:a:%s", a->id);
            snprintf(field, sizeof field, "%zu", s);
            redisReply *rep = NULL;
            hvs_err_t err = {0};
            HVS_REQUIRE(
                hvs_redis_command(r, &rep, &err, "HSET %s %s %b", key, field, text, n) == 0 && rep,
                "HSET");
            freeReplyObject(rep);
            written++;
        }
    HVS_CHECK_EQ_INT(written, SC_RING + 10);
    /* a stray field: skipped at load, gone with the rewrite */
    freeReplyObject(cmd("HSET hvs:{b1}:sc:a:apt_2 stray %s", "x", NULL));
    long long text_bytes = memory_of("hvs:{b1}:sc:a:apt_1");

    size_t nb = 0;
    sc_state_t *s1 = load(&nb);
    HVS_CHECK_EQ_INT((int)nb, 1);
    sc_building_t *b1 = sc_state_building(s1, "b1", 0, false);
    HVS_REQUIRE(b1 && b1->napts == 2, "both apartments loaded");
    HVS_CHECK(same_ring(ref, full, s1, b1->apts[0]) && same_ring(ref, part, s1, b1->apts[1]),
              "the text state loads to the same rings");
    HVS_CHECK(b1->apts[0]->legacy && b1->apts[1]->legacy, "marked for rewriting");
    HVS_CHECK(save(s1) == 4, "a DEL and an HSET per apartment, in one transaction");
    HVS_CHECK(fields_are("hvs:{b1}:sc:a:apt_1", "b0 b1 b2"), "apt_1: three blocks, no text");
    /* apt_2's ten hours: slots of T0 .. T0 + 9 h */
    char want[32] = "";
    for (size_t k = 0; k < SC_BLOCKS; k++) {
        bool any = false;
        for (size_t s = k * SC_BLOCK_HOURS; s < (k + 1) * SC_BLOCK_HOURS; s++)
            any |= part->slots[s].agg.hour != HVS_MS_NONE;
        if (any)
            snprintf(want + strlen(want), sizeof want - strlen(want), "%sb%zu", *want ? " " : "",
                     k);
    }
    HVS_CHECK(fields_are("hvs:{b1}:sc:a:apt_2", want),
              "apt_2: only its filled blocks (%s), the stray field gone", want);
    HVS_CHECK(save(s1) == 0, "nothing changed: nothing written");
    long long block_bytes = memory_of("hvs:{b1}:sc:a:apt_1");
    printf("a full 72-hour ring with two rooms: %lld bytes as text fields, %lld in blocks\n",
           text_bytes, block_bytes);
    HVS_CHECK(block_bytes > 0 && block_bytes * 3 < text_bytes, "blocks at least 3x smaller");

    sc_state_t *s2 = load(&nb);
    sc_building_t *b2 = sc_state_building(s2, "b1", 0, false);
    HVS_REQUIRE(b2 && b2->napts == 2, "reloaded");
    HVS_CHECK(same_ring(ref, full, s2, b2->apts[0]) && same_ring(ref, part, s2, b2->apts[1]),
              "the blocks load to the same rings");
    HVS_CHECK(!b2->apts[0]->legacy && save(s2) == 0, "loaded from blocks: nothing to rewrite");

    /* one hour changed in block 2: only b2 is written (b0 keeps a sentinel) */
    freeReplyObject(cmd("HSET hvs:{b1}:sc:a:apt_1 b0 %s", "sentinel", NULL));
    sc_apartment_t *a2 = b2->apts[0];
    sc_model_t *m = sc_model_take(a2, T0 + (hvs_ms_t)(SC_RING + 60) * HOUR);
    HVS_REQUIRE(m && sc_slot_index(T0 + (hvs_ms_t)(SC_RING + 60) * HOUR) / SC_BLOCK_HOURS == 2,
                "an hour in block 2 (%zu)",
                sc_slot_index(T0 + (hvs_ms_t)(SC_RING + 60) * HOUR) / SC_BLOCK_HOURS);
    m->rev = 0;
    m->observed = 1.25f;
    HVS_CHECK(save(s2) == 1, "one HSET");
    redisReply *rep = cmd("HGET hvs:{b1}:sc:a:apt_1 %s", "b0", NULL);
    HVS_CHECK(rep->type == REDIS_REPLY_STRING && strcmp(rep->str, "sentinel") == 0,
              "b0 not rewritten");
    freeReplyObject(rep);

    /* the sentinel does not parse: skipped, the other blocks load */
    sc_state_t *s3 = load(&nb);
    sc_building_t *b3 = sc_state_building(s3, "b1", 0, false);
    HVS_REQUIRE(b3 && b3->napts == 2, "loaded despite a bad block");
    sc_apartment_t *a3 = b3->apts[0];
    int held = 0;
    for (size_t s = 0; s < SC_RING; s++)
        held += a3->slots[s].agg.hour != HVS_MS_NONE;
    HVS_CHECK_EQ_INT(held, SC_RING - SC_BLOCK_HOURS);
    const sc_model_t *got = sc_model_get(a3, T0 + (hvs_ms_t)(SC_RING + 60) * HOUR);
    HVS_CHECK(got && got->observed == 1.25f, "block 2's new hour read back");
    HVS_CHECK(same_ring(ref, part, s3, b3->apts[1]), "apt_2 untouched");
    sc_state_destroy(ref), sc_state_destroy(s1), sc_state_destroy(s2), sc_state_destroy(s3);
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

static void run(void) {
    setup();
    test_text_state_migrates_to_blocks();
    teardown();
}

static const hvs_test_case_t cases[] = {
    {"text_state_migrates_to_blocks", run},
    HVS_TEST_CASES_END,
};

int main(int argc, char **argv) { return hvs_test_main(cases, argc, argv); }
