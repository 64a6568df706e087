/*
 * test_wx_history - change detection per (location, hour): a first response publishes every
 * hour that carries a value (not the all-null ones, not those before the retention cut); the
 * same response again publishes nothing; a changed value, a changed kind, a value that comes
 * back to an earlier one are published; an unchanged answer replayed at a later clock publishes
 * only the hours that became OBSERVED; hours before the cut are forgotten (and not published
 * again when an answer still holds them); what was not published (a send that failed) is
 * published by the next response.
 */
#include <math.h>

#include "history.h"
#include "hvs/log.h"
#include "hvs_test.h"
#include "openmeteo.h"

#define H (3600 * 1000LL)
#define T0 1736467200000LL /* 2025-01-10T00:00:00Z */

static wx_hour_t hr(int i, double temp, hvs_ms_t now) {
    wx_hour_t h = {.hour = T0 + i * H, .present = WX_ALL_VARS};
    h.kind = h.hour + H <= now ? WX_OBSERVED : WX_FORECAST;
    h.v[WX_TEMP] = temp;
    h.v[WX_RH] = 80;
    h.v[WX_CLOUD] = 50;
    h.v[WX_GHI] = i % 24 >= 8 && i % 24 <= 16 ? 200 : 0;
    h.v[WX_WIND] = 3;
    return h;
}

static size_t changed[256];

/* Diff and apply everything (as publish does when every send succeeds): the published
 * hours' indexes in changed[], their count returned. */
static size_t publish_all(wx_history_t *hs, const wx_hour_t *h, size_t n, hvs_ms_t cut) {
    size_t k = 0;
    wx_history_diff(hs, h, n, cut, changed, &k);
    HVS_REQUIRE(wx_history_apply(hs, h, n, changed, k, cut) == 0, "apply");
    return k;
}

/* One history through a sequence of answers: each step builds on the state the last left. */
static void test_history(void) {
    wx_history_t hs = {0};
    wx_hour_t resp[48];
    hvs_ms_t now = T0 + 26 * H + 15 * 60000; /* 02:15 on day 2 */
    hvs_ms_t cut = now - 2 * 24 * H;         /* past_days 1 + 1 day */
    for (int i = 0; i < 48; i++)
        resp[i] = hr(i, (double)i / 4.0, now);
    resp[5].present = 0;                          /* a hole of the provider */
    resp[7].present &= (uint8_t) ~(1u << WX_GHI); /* one null value: still published */

    size_t k = publish_all(&hs, resp, 48, cut);
    HVS_CHECK_EQ_INT(k, 47);
    bool has5 = false;
    for (size_t i = 0; i < k; i++)
        has5 |= changed[i] == 5;
    HVS_CHECK(!has5, "the all-null hour is not published");
    HVS_CHECK_EQ_INT(wx_history_size(&hs), 47);

    /* the same answer: nothing */
    HVS_CHECK_EQ_INT(publish_all(&hs, resp, 48, cut), 0);

    /* one value changes (a new forecast run for hour 40) */
    resp[40].v[WX_TEMP] += 0.1;
    k = publish_all(&hs, resp, 48, cut);
    HVS_CHECK(k == 1 && changed[0] == 40, "only hour 40: %zu", k);
    /* and back to the earlier value: published again (it changed since the last publication) */
    resp[40].v[WX_TEMP] -= 0.1;
    k = publish_all(&hs, resp, 48, cut);
    HVS_CHECK(k == 1 && changed[0] == 40, "hour 40 again: %zu", k);
    /* a null that becomes a value, a value that becomes null */
    resp[7].present |= 1u << WX_GHI;
    resp[7].v[WX_GHI] = 0;
    resp[8].present &= (uint8_t) ~(1u << WX_WIND);
    k = publish_all(&hs, resp, 48, cut);
    HVS_CHECK(k == 2 && changed[0] == 7 && changed[1] == 8, "nulls: %zu", k);

    /* replayed at 04:00 (a 304): hours 26 and 27 are over now, nothing else changed */
    wx_hours_t replay = {0};
    hvs_ms_t later = T0 + 28 * H;
    HVS_REQUIRE(wx_history_last_response(&hs, later, &replay) == 0, "replay");
    HVS_CHECK_EQ_INT(replay.n, 47);
    k = publish_all(&hs, replay.h, replay.n, later - 2 * 24 * H);
    HVS_CHECK(k == 2 && replay.h[changed[0]].hour == T0 + 26 * H &&
                  replay.h[changed[1]].hour == T0 + 27 * H &&
                  replay.h[changed[0]].kind == WX_OBSERVED,
              "26 and 27 became OBSERVED: %zu", k);
    /* the same values from the provider as OBSERVED: nothing new */
    for (int i = 0; i < 48; i++)
        resp[i].kind = resp[i].hour + H <= later ? WX_OBSERVED : WX_FORECAST;
    HVS_CHECK_EQ_INT(publish_all(&hs, resp, 48, later - 2 * 24 * H), 0);

    /* a day later the first day's hours fall before the cut: forgotten, not published again
     * although the answer still holds them */
    hvs_ms_t day3 = T0 + 50 * H;
    hvs_ms_t cut3 = day3 - 2 * 24 * H; /* = T0 + 2 h */
    for (int i = 0; i < 48; i++)
        resp[i].kind = resp[i].hour + H <= day3 ? WX_OBSERVED : WX_FORECAST;
    k = publish_all(&hs, resp, 48, cut3);
    /* hours 28..47 became observed (20; 40 and the rest unchanged in value) */
    HVS_CHECK_EQ_INT(k, 20);
    for (size_t i = 0; i < k; i++)
        HVS_CHECK(resp[changed[i]].hour >= cut3, "nothing before the cut published");
    HVS_CHECK_EQ_INT(wx_history_size(&hs), 47 - 2); /* hours 0 and 1 forgotten */
    HVS_CHECK_EQ_INT(publish_all(&hs, resp, 48, cut3), 0);

    /* a failed send: diff says 3, only the first was queued; the rest come next time */
    for (int i = 44; i < 47; i++)
        resp[i].v[WX_CLOUD] = 90;
    wx_history_diff(&hs, resp, 48, cut3, changed, &k);
    HVS_CHECK_EQ_INT(k, 3);
    HVS_REQUIRE(wx_history_apply(&hs, resp, 48, changed, 1, cut3) == 0, "apply");
    k = publish_all(&hs, resp, 48, cut3);
    HVS_CHECK(k == 2 && changed[0] == 45 && changed[1] == 46, "the two unsent: %zu", k);
    /* the replay holds only what the last answer held */
    HVS_REQUIRE(wx_history_last_response(&hs, day3, &replay) == 0, "replay");
    HVS_CHECK_EQ_INT(replay.n, 48 - 2 - 1); /* without the cut ones and the hole */

    /* an answer that skips some hours (gaps are allowed): those are kept, not in the replay */
    wx_hour_t part[3] = {resp[30], resp[31], resp[47]};
    HVS_CHECK_EQ_INT(publish_all(&hs, part, 3, cut3), 0);
    HVS_REQUIRE(wx_history_last_response(&hs, day3, &replay) == 0, "replay");
    HVS_CHECK(replay.n == 3 && replay.h[2].hour == T0 + 47 * H, "replay of the gapped answer");
    HVS_CHECK_EQ_INT(wx_history_size(&hs), 45);

    wx_history_clear(&hs);
    HVS_CHECK_EQ_INT(publish_all(&hs, resp, 48, cut3), 48 - 2 - 1);
    wx_hours_fini(&replay);
    wx_history_fini(&hs);
}

static const hvs_test_case_t cases[] = {
    {"history", test_history},
    HVS_TEST_CASES_END,
};

int main(int argc, char **argv) {
    hvs_log_init("test", HVS_LOG_ERROR, NULL);
    return hvs_test_main(cases, argc, argv);
}
