/*
 * messy delivery: clean is lossless and in order; each imperfection happens at its rate, is
 * labelled, and has exactly the documented effect on what comes out; same seed, same output.
 */
#include <math.h>

#include "delivery.h"
#include "hvs_test.h"

#define MIN 60000LL
#define HOUR (60 * MIN)
#define DAY (24 * HOUR)
#define T0 1730419200000LL /* 2024-11-01 */
#define NB 2
#define NA 10
#define STEPS (96 * 30)

static sim_label_t g_labels[4096];
static int g_nlabels;
static void on_label(void *opaque, const sim_label_t *l) {
    (void)opaque;
    if (g_nlabels < 4096)
        g_labels[g_nlabels++] = *l;
}
static const sim_label_sink_t sink = {on_label, NULL};

/* The true record of apartment (b, a) at step k: a counter rising 0.5 kWh per step. */
static void make(sim_record_t *r, uint32_t b, uint32_t a, int k) {
    memset(r, 0, sizeof *r);
    r->building = b, r->apartment = a;
    r->timestamp = r->measured_at = T0 + (hvs_ms_t)(k + 1) * 15 * MIN;
    r->n = 3;
    r->v[0] = (sim_value_t){SIM_S_HEAT_KWH, -1, 1000.0 + 0.5 * k + 7 * a};
    r->v[1] = (sim_value_t){SIM_S_HOT_WATER_L, -1, 5000.0 + 2.0 * k};
    r->v[2] = (sim_value_t){SIM_S_ROOM_TEMP, 0, 21.0};
}

typedef struct out {
    sim_record_t *r;
    hvs_ms_t *popped_at;
    size_t n;
} out_t;

/* Push STEPS steps of every apartment, popping as a simulation would; drain at the end. */
static void run(const sim_delivery_conf_t *c, uint64_t seed, out_t *o) {
    uint32_t apts[NB] = {NA, NA};
    sim_delivery_t *d;
    hvs_err_t err;
    g_nlabels = 0;
    HVS_REQUIRE(sim_delivery_new(c, seed, NB, apts, &sink, &d, &err) == 0, "new");
    size_t cap = NB * NA * STEPS * 2 + 16;
    o->r = malloc(cap * sizeof *o->r);
    o->popped_at = malloc(cap * sizeof *o->popped_at);
    o->n = 0;
    for (int k = 0; k < STEPS; k++) {
        hvs_ms_t now = T0 + (hvs_ms_t)(k + 1) * 15 * MIN;
        for (uint32_t b = 0; b < NB; b++)
            for (uint32_t a = 0; a < NA; a++) {
                sim_record_t r;
                make(&r, b, a, k);
                HVS_REQUIRE(sim_delivery_push(d, &r, &err) == 0, "push");
            }
        while (o->n < cap && sim_delivery_pop(d, now, &o->r[o->n])) {
            HVS_CHECK(o->r[o->n].measured_at <= now, "popped a record measured in the future");
            o->popped_at[o->n++] = now;
        }
    }
    while (o->n < cap && sim_delivery_drain(d, &o->r[o->n]))
        o->popped_at[o->n++] = INT64_MAX;
    HVS_CHECK_EQ_INT(sim_delivery_pending(d), 0);
    sim_delivery_stats_t st;
    sim_delivery_get_stats(d, &st);
    HVS_CHECK_EQ_INT(st.pushed, NB * NA * STEPS);
    HVS_CHECK_EQ_INT(st.delivered, o->n);
    HVS_CHECK_EQ_INT(st.pushed + st.duplicated - st.dropped_in_gaps, st.delivered);
    sim_record_t bad = {.building = NB};
    HVS_CHECK(sim_delivery_push(d, &bad, &err) == HVS_EINVAL, "outside the fleet");
    sim_delivery_destroy(d);
}

static void free_out(out_t *o) {
    free(o->r);
    free(o->popped_at);
}

static void test_clean(void) {
    sim_delivery_conf_t c;
    sim_delivery_conf_clean(&c);
    out_t o;
    run(&c, 1, &o);
    HVS_CHECK_EQ_INT(o.n, NB * NA * STEPS);
    HVS_CHECK_EQ_INT(g_nlabels, 0);
    size_t i = 0;
    bool same = true;
    for (int k = 0; k < STEPS; k++)
        for (uint32_t b = 0; b < NB; b++)
            for (uint32_t a = 0; a < NA; a++, i++) {
                sim_record_t r;
                make(&r, b, a, k);
                same = same && memcmp(&r, &o.r[i], sizeof r) == 0 &&
                       o.popped_at[i] == r.measured_at;
            }
    HVS_CHECK(same, "clean delivery is the pushes, in order, at once");
    free_out(&o);
}

static const sim_label_t *find_label(const char *type, uint32_t b, uint32_t a, int from) {
    for (int i = from; i < g_nlabels; i++)
        if (!strcmp(g_labels[i].type, type) && g_labels[i].building == (int32_t)b &&
            g_labels[i].apartment == (int32_t)a)
            return &g_labels[i];
    return NULL;
}

static void test_each_imperfection(void) {
    sim_delivery_conf_t c;
    sim_delivery_conf_clean(&c);
    c.dup_rate = 0.02;
    c.ooo_rate = 0.03;
    c.late_batch_rate = 0.1;
    c.gap_rate = 0.1;
    c.skew_fraction = 0.3;
    c.meter_replacement_rate = 5;
    c.malformed_rate = 0.01;
    out_t o;
    run(&c, 7, &o);
    size_t pushed = NB * NA * STEPS, dups = 0, late = 0, back = 0, kinds[5] = {0};
    for (size_t i = 0; i < o.n; i++) {
        sim_record_t *r = &o.r[i];
        dups += r->duplicate;
        kinds[r->corrupt]++;
        if (o.popped_at[i] > r->measured_at + c.ooo_delay_max_ms && o.popped_at[i] != INT64_MAX)
            late++;
        if (i > 0 && r->measured_at < o.r[i - 1].measured_at)
            back++;
    }
    printf("delivered %zu of %zu pushed: %zu duplicates, %zu late beyond the reordering bound, "
           "%zu steps back; malformed nan %zu negative %zu unknown %zu syntax %zu; %d labels\n",
           o.n, pushed, dups, late, back, kinds[1], kinds[2], kinds[3], kinds[4], g_nlabels);
    /* Binomial bounds (about +-5 sigma). */
    HVS_CHECK(dups > pushed * 0.02 * 0.6 && dups < pushed * 0.02 * 1.4, "duplicates %zu", dups);
    HVS_CHECK(back > 0 && late > 0, "reordered %zu, late %zu", back, late);
    for (int k = 1; k <= 4; k++)
        HVS_CHECK(kinds[k] > 0, "malformed kind %d never seen", k);
    size_t bad = kinds[1] + kinds[2] + kinds[3] + kinds[4];
    HVS_CHECK(bad > pushed * 0.01 * 0.5 && bad < pushed * 0.01 * 1.6, "malformed %zu", bad);

    /* Per apartment: gaps never delivered; outages released in one burst; skew constant;
     * counters restart only at labelled replacements. */
    int gaps = 0, outages = 0, skews = 0, replacements = 0;
    for (uint32_t b = 0; b < NB; b++)
        for (uint32_t a = 0; a < NA; a++) {
            const sim_label_t *skew = find_label("clock_skew", b, a, 0);
            skews += skew != NULL;
            for (size_t i = 0; i < o.n; i++) {
                sim_record_t *r = &o.r[i];
                if (r->building != b || r->apartment != a)
                    continue;
                hvs_ms_t off = r->timestamp - r->measured_at;
                HVS_CHECK(off == (skew ? (hvs_ms_t)skew->magnitude : 0), "skew %lld",
                          (long long)off);
                for (int l = 0; l < g_nlabels; l++) {
                    const sim_label_t *g = &g_labels[l];
                    if (g->building != (int32_t)b || g->apartment != (int32_t)a)
                        continue;
                    if (!strcmp(g->type, "gap"))
                        HVS_CHECK(!(r->measured_at >= g->start && r->measured_at < g->end),
                                  "a record of a gap was delivered");
                    if (!strcmp(g->type, "late_batch") && r->measured_at >= g->start &&
                        r->measured_at < g->end && !r->duplicate && !(o.popped_at[i] == INT64_MAX))
                        HVS_CHECK(o.popped_at[i] >= g->end + (hvs_ms_t)g->magnitude - 15 * MIN,
                                  "outage record delivered before its release");
                }
            }
            for (int l = 0; l < g_nlabels; l++) {
                const sim_label_t *g = &g_labels[l];
                if (g->building != (int32_t)b || g->apartment != (int32_t)a)
                    continue;
                gaps += !strcmp(g->type, "gap");
                outages += !strcmp(g->type, "late_batch");
                replacements += !strncmp(g->type, "meter_replacement", 17);
                HVS_CHECK(!strcmp(g->category, "delivery") && g->end > g->start, "label");
            }
            /* The heat counter, in measured order and without broken values, drops only at
             * labelled replacements, to ~0 just after them. */
            double last = -1;
            int drops = 0;
            for (int k = 0; k < STEPS; k++) {
                hvs_ms_t t = T0 + (hvs_ms_t)(k + 1) * 15 * MIN;
                double v = NAN;
                for (size_t i = 0; i < o.n; i++)
                    if (o.r[i].building == b && o.r[i].apartment == a && o.r[i].measured_at == t &&
                        !o.r[i].corrupt && !o.r[i].duplicate)
                        v = o.r[i].v[0].value;
                if (isnan(v))
                    continue;
                HVS_CHECK(v >= 0, "negative counter %.1f", v);
                if (v < last) {
                    drops++;
                    bool labelled = false;
                    for (int l = 0; l < g_nlabels; l++)
                        labelled |= g_labels[l].building == (int32_t)b &&
                                    g_labels[l].apartment == (int32_t)a &&
                                    !strcmp(g_labels[l].type, "meter_replacement_heat") &&
                                    g_labels[l].start <= t && g_labels[l].start > t - 2 * DAY;
                    HVS_CHECK(labelled, "unlabelled counter drop %.1f -> %.1f", last, v);
                }
                last = v;
            }
            (void)drops;
        }
    printf("labels: %d gaps, %d outages, %d skewed clocks, %d meter replacements\n", gaps, outages,
           skews, replacements);
    HVS_CHECK(gaps > 0 && outages > 0 && skews > 0 && replacements > 0, "every episode kind");
    free_out(&o);

    /* Same seed, same sequence; another seed, another. */
    out_t o1, o2, o3;
    run(&c, 7, &o1);
    run(&c, 7, &o2);
    run(&c, 8, &o3);
    HVS_CHECK(o1.n == o2.n && memcmp(o1.r, o2.r, o1.n * sizeof *o1.r) == 0, "determinism");
    HVS_CHECK(o1.n != o3.n || memcmp(o1.r, o3.r, o1.n * sizeof *o1.r) != 0, "another seed");
    free_out(&o1);
    free_out(&o2);
    free_out(&o3);
}

static void test_speed(void) {
    sim_delivery_conf_t c;
    sim_delivery_conf_default(&c);
    uint32_t apts[1] = {200};
    sim_delivery_t *d;
    hvs_err_t err;
    HVS_REQUIRE(sim_delivery_new(&c, 3, 1, apts, NULL, &d, &err) == 0, "new");
    int64_t t0 = hvs_test_now_ms();
    size_t n = 0;
    sim_record_t r, o;
    for (int k = 0; k < 96 * 60; k++) {
        for (uint32_t a = 0; a < 200; a++) {
            make(&r, 0, a, k);
            sim_delivery_push(d, &r, &err);
        }
        while (sim_delivery_pop(d, r.measured_at, &o))
            n++;
    }
    double s = (double)(hvs_test_now_ms() - t0) / 1000.0;
    printf("push+pop with default rates: %.2f M records/s\n", (double)n / s / 1e6);
    sim_delivery_destroy(d);
}

static const hvs_test_case_t cases[] = {
    {"clean", test_clean},
    {"each_imperfection", test_each_imperfection},
    {"speed", test_speed},
    HVS_TEST_CASES_END,
};

int main(int argc, char **argv) { return hvs_test_main(cases, argc, argv); }
