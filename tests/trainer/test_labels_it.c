/*
 * test_labels_it - the trainer's label set: alert ids to days, the latest verdict per alert winning
 * (UNSURE retracting), the same alert id in two buildings kept apart, an apartment-day positive
 * when any of its alerts was confirmed, partial vs complete sets, the counts, pruning before the
 * window, and the Redis round trip (a real redis-server) that a restart relies on, a corrupt
 * stored value skipped.
 */
#include "hvs_test.h"
#include "labels.h"

#define DAY 86400000LL
#define D20241001 1727740800000LL

/* Alert ids to their day. */
static void test_alert_day(void) {
    HVS_CHECK(tr_labels_alert_day("apt_1#2024-10-01#ANOMALY") == D20241001, "alert id day");
    HVS_CHECK(tr_labels_alert_day("bldg_A#2024-10-02#DATA_QUALITY") == D20241001 + DAY,
              "building-level id");
    HVS_CHECK(tr_labels_alert_day("apt_1#2024-13-01#ANOMALY") == HVS_MS_NONE, "month 13 refused");
    HVS_CHECK(tr_labels_alert_day("apt_1#2024-10-1#ANOMALY") == HVS_MS_NONE, "short date refused");
    HVS_CHECK(tr_labels_alert_day("apt_1-2024-10-01") == HVS_MS_NONE, "no '#' refused");
    HVS_CHECK(tr_labels_alert_day(NULL) == HVS_MS_NONE, "NULL refused");
}

/* A partial set (technicians' verdicts): the latest verdict wins; then through a real
 * redis-server what a restart reads back, and pruning. */
static void test_partial_set(void) {
    tr_labels_t l;
    tr_labels_init(&l);
    hvs_ms_t d = D20241001;
    HVS_CHECK(tr_labels_put(&l, "a1#2024-10-01#ANOMALY", "B", "a1", d, TR_LABEL_NEGATIVE, 100) == 1,
              "put");
    HVS_CHECK(tr_labels_get(&l, "B", "a1", d) == 0, "a false alarm is negative");
    HVS_CHECK(tr_labels_put(&l, "a1#2024-10-01#ANOMALY", "B", "a1", d, TR_LABEL_POSITIVE, 50) ==
                      0 &&
                  tr_labels_get(&l, "B", "a1", d) == 0,
              "an older verdict does not overwrite a newer one");
    HVS_CHECK(tr_labels_put(&l, "a1#2024-10-01#ANOMALY", "B", "a1", d, TR_LABEL_POSITIVE, 200) ==
                      1 &&
                  tr_labels_get(&l, "B", "a1", d) == 1,
              "a newer verdict does");
    /* another alert type on the same apartment-day: still positive (any confirmed alert) */
    HVS_CHECK(tr_labels_put(&l, "a1#2024-10-01#RULE_STUCK_VALVE", "B", "a1", d, TR_LABEL_NEGATIVE,
                            300) == 1 &&
                  tr_labels_get(&l, "B", "a1", d) == 1,
              "positive when any alert of the day was confirmed");
    HVS_CHECK(
        tr_labels_put(&l, "a2#2024-10-02#ANOMALY", "B", "a2", d + DAY, TR_LABEL_NEGATIVE, 10) == 1,
        "put a2");
    /* the same alert id in another building (apartment ids repeat across buildings) */
    HVS_CHECK(
        tr_labels_put(&l, "a2#2024-10-02#ANOMALY", "C", "a2", d + DAY, TR_LABEL_POSITIVE, 5) == 1 &&
            tr_labels_get(&l, "C", "a2", d + DAY) == 1 &&
            tr_labels_get(&l, "B", "a2", d + DAY) == 0,
        "buildings kept apart");
    HVS_CHECK(tr_labels_put(&l, "a2#2024-10-02#ANOMALY", "C", "a2", d + DAY, TR_LABEL_NONE, 6) ==
                      1 &&
                  tr_labels_get(&l, "C", "a2", d + DAY) == -1,
              "a later UNSURE retracts the label");
    HVS_CHECK(tr_labels_put(&l, "a9#2024-10-02#ANOMALY", "C", "a9", d + DAY, TR_LABEL_NONE, 6) ==
                      0 &&
                  l.n == 4,
              "an UNSURE on an unlabelled alert adds nothing");
    HVS_CHECK(
        tr_labels_put(&l, "a2#2024-10-02#ANOMALY", "B", "a2", d + DAY, TR_LABEL_NEGATIVE, 10) == 0,
        "the same verdict again is no change");
    HVS_CHECK(tr_labels_get(&l, "B", "a2", d) == -1 && tr_labels_get(&l, "B", "a3", d) == -1 &&
                  tr_labels_get(&l, "C", "a1", d) == -1,
              "unlabelled days are unknown in a partial set");
    size_t pos, neg;
    tr_labels_count(&l, d, d + 2 * DAY, &pos, &neg);
    HVS_CHECK(pos == 1 && neg == 1, "counts: %zu positive, %zu negative apartment-days", pos, neg);
    tr_labels_count(&l, d + DAY, d + 2 * DAY, &pos, &neg);
    HVS_CHECK(pos == 0 && neg == 1, "counts in a range: %zu / %zu", pos, neg);
    char longid[TR_LABEL_ID_MAX + 2];
    memset(longid, 'x', sizeof longid - 1);
    longid[sizeof longid - 1] = 0;
    HVS_CHECK(tr_labels_put(&l, "x", longid, "a1", d, TR_LABEL_POSITIVE, 1) == HVS_EINVAL &&
                  tr_labels_put(&l, "x", "B|C", "a1", d, TR_LABEL_POSITIVE, 1) == HVS_EINVAL &&
                  tr_labels_put(&l, "x", "B", "", d, TR_LABEL_POSITIVE, 1) == HVS_EINVAL &&
                  tr_labels_put(&l, "x", "B", "a1", HVS_MS_NONE, TR_LABEL_POSITIVE, 1) ==
                      HVS_EINVAL,
              "ids with the separator, empty ids and no day are refused");

    /* Redis round trip: what a restart reads back */
    hvs_test_proc_t redis;
    HVS_REQUIRE(hvs_test_redis_start(&redis, 0) == 0, "redis");
    hvs_err_t err = {0};
    hvs_redis_t *r;
    hvs_redis_batch_t *b = hvs_redis_batch_new();
    HVS_REQUIRE(b && hvs_redis_connect(redis.addr, NULL, &r, &err) == 0, "connect: %s", err.msg);
    HVS_CHECK(tr_labels_save(&l, b, HVS_MS_NONE, &err) == 0 && hvs_redis_batch_size(b) == 4 &&
                  hvs_redis_batch_exec(r, b, &err) == 0 && hvs_redis_batch_errors(b) == 0,
              "saved: %s", err.msg);
    hvs_redis_batch_reset(b);
    HVS_CHECK(tr_labels_save(&l, b, HVS_MS_NONE, &err) == 0 && hvs_redis_batch_size(b) == 0,
              "nothing dirty after a save");
    HVS_CHECK(hvs_redis_command(r, NULL, &err, "HSET hvs:tr:labels broken %s", "no-separators") ==
                  0,
              "corrupt");
    tr_labels_t back;
    tr_labels_init(&back);
    size_t skipped = 0;
    HVS_CHECK(tr_labels_load(&back, r, &skipped, &err) == 0 && back.n == 4 && skipped == 1,
              "loaded %zu, skipped %zu: %s", back.n, skipped, err.msg);
    HVS_CHECK(tr_labels_get(&back, "B", "a1", d) == 1 &&
                  tr_labels_get(&back, "B", "a2", d + DAY) == 0 &&
                  tr_labels_get(&back, "C", "a2", d + DAY) == -1,
              "the verdicts came back, the retraction too");
    hvs_redis_batch_reset(b);
    HVS_CHECK(tr_labels_save(&back, b, HVS_MS_NONE, &err) == 0 && hvs_redis_batch_size(b) == 0,
              "loaded labels are not dirty");
    /* labels of days before the window leave memory and Redis */
    HVS_CHECK(tr_labels_save(&back, b, d + DAY, &err) == 0 && hvs_redis_batch_size(b) == 2 &&
                  hvs_redis_batch_exec(r, b, &err) == 0 && back.n == 2 &&
                  tr_labels_get(&back, "B", "a1", d) == -1,
              "pruned: %zu left, %zu commands", back.n, hvs_redis_batch_size(b));
    redisReply *len = NULL;
    HVS_CHECK(hvs_redis_command(r, &len, &err, "HLEN hvs:tr:labels") == 0 && len &&
                  len->integer == 3,
              "Redis holds the 2 kept and the corrupt one: %lld", len ? len->integer : -1);
    if (len)
        freeReplyObject(len);
    tr_labels_fini(&back);
    tr_labels_fini(&l);
    hvs_redis_batch_destroy(b);
    hvs_redis_destroy(r);
    hvs_test_proc_stop(&redis);
}

/* a complete set (the simulator's ground truth): unlisted days are negative */
static void test_complete_set(void) {
    hvs_ms_t d = D20241001;
    size_t pos, neg;
    tr_labels_t c;
    tr_labels_init(&c);
    c.complete = true;
    HVS_CHECK(tr_labels_put(&c, "B/a1#1", "B", "a1", d, TR_LABEL_POSITIVE, 0) == 1, "put");
    HVS_CHECK(tr_labels_get(&c, "B", "a1", d) == 1 && tr_labels_get(&c, "B", "a1", d + DAY) == 0 &&
                  tr_labels_get(&c, "Z", "q", d) == 0,
              "complete: unlisted is negative");
    tr_labels_count(&c, d, d + DAY, &pos, &neg);
    HVS_CHECK(pos == 1 && neg == 0, "complete counts only its positives: %zu / %zu", pos, neg);
    tr_labels_fini(&c);
}

static const hvs_test_case_t cases[] = {
    {"alert_day", test_alert_day},
    {"partial_set", test_partial_set},
    {"complete_set", test_complete_set},
    HVS_TEST_CASES_END,
};

int main(int argc, char **argv) { return hvs_test_main(cases, argc, argv); }
