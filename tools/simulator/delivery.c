/* delivery.c - messy delivery between the tablets and Kafka (see delivery.h). */
#include "delivery.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"

#define MIN_MS 60000LL
#define HOUR_MS (60 * MIN_MS)
#define DAY_MS (24 * HOUR_MS)
#define YEAR_MS ((hvs_ms_t)(365.25 * (double)DAY_MS))

/* Per apartment: its random stream and the episodes in progress. */
typedef struct apt_state {
    sim_rng_t rng;
    bool started;
    int64_t day; /* last UTC day whose episodes were drawn */
    hvs_ms_t skew;
    hvs_ms_t gap_start, gap_end;
    hvs_ms_t outage_start, outage_end, release_at;
    hvs_ms_t next_replacement;
    double offset[2];    /* subtracted from the heat / water counters */
    double last_true[2]; /* last true counter values seen */
} apt_state_t;

/* Delayed records wait in a binary heap of small handles into a slab of records. */
typedef struct handle {
    hvs_ms_t at;
    uint64_t seq;
    uint32_t slot;
} handle_t;

struct sim_delivery {
    sim_delivery_conf_t conf;
    uint64_t seed;
    size_t nbuildings;
    uint32_t *first; /* index of building b's first apartment */
    apt_state_t *apts;
    const sim_label_sink_t *labels;
    /* records due at once, in push order: a ring (already sorted by time) */
    sim_record_t *ring;
    uint64_t *ring_seq;
    size_t ring_head, ring_len, ring_cap;
    /* delayed ones */
    handle_t *heap;
    size_t heap_len, heap_cap;
    sim_record_t *slab;
    uint32_t *free_slots;
    size_t slab_cap, nfree;
    uint64_t seq;
    sim_delivery_stats_t stats;
};

void sim_delivery_conf_default(sim_delivery_conf_t *c) {
    *c = (sim_delivery_conf_t){
        .dup_rate = 0.005,
        .dup_delay_max_ms = 30 * MIN_MS,
        .ooo_rate = 0.01,
        .ooo_delay_max_ms = 90 * MIN_MS,
        .late_batch_rate = 0.01,
        .late_outage_max_ms = 12 * HOUR_MS,
        .late_upload_max_ms = 72 * HOUR_MS,
        .gap_rate = 0.003,
        .gap_max_ms = 6 * HOUR_MS,
        .skew_fraction = 0.02,
        .skew_max_ms = 10 * MIN_MS,
        .meter_replacement_rate = 0.05,
        .malformed_rate = 0.0005,
    };
}

void sim_delivery_conf_clean(sim_delivery_conf_t *c) {
    sim_delivery_conf_default(c);
    c->dup_rate = c->ooo_rate = c->late_batch_rate = c->gap_rate = 0;
    c->skew_fraction = c->meter_replacement_rate = c->malformed_rate = 0;
}

int sim_delivery_new(const sim_delivery_conf_t *c, uint64_t seed, size_t nbuildings,
                     const uint32_t *apartments, const sim_label_sink_t *labels,
                     sim_delivery_t **out, hvs_err_t *err) {
    sim_delivery_t *d = calloc(1, sizeof *d);
    if (!d)
        return hvs_err_set(err, HVS_ENOMEM, NULL, "out of memory");
    d->conf = *c;
    d->seed = seed;
    d->nbuildings = nbuildings;
    d->labels = labels;
    d->first = calloc(nbuildings + 1, sizeof *d->first);
    if (!d->first) {
        free(d);
        return hvs_err_set(err, HVS_ENOMEM, NULL, "out of memory");
    }
    for (size_t b = 0; b < nbuildings; b++)
        d->first[b + 1] = d->first[b] + apartments[b];
    d->apts = calloc(d->first[nbuildings] ? d->first[nbuildings] : 1, sizeof *d->apts);
    if (!d->apts) {
        sim_delivery_destroy(d);
        return hvs_err_set(err, HVS_ENOMEM, NULL, "out of memory");
    }
    for (size_t b = 0; b < nbuildings; b++)
        for (uint32_t a = 0; a < apartments[b]; a++) {
            apt_state_t *s = &d->apts[d->first[b] + a];
            sim_rng_seed(&s->rng, sim_hash3(seed, 0xde11u, ((uint64_t)b << 20) | a));
            s->day = INT64_MIN;
            s->gap_start = s->gap_end = s->outage_start = s->outage_end = INT64_MIN;
        }
    *out = d;
    return HVS_OK;
}

void sim_delivery_destroy(sim_delivery_t *d) {
    if (!d)
        return;
    free(d->first);
    free(d->apts);
    free(d->ring);
    free(d->ring_seq);
    free(d->heap);
    free(d->slab);
    free(d->free_slots);
    free(d);
}

static void label(sim_delivery_t *d, const sim_record_t *r, const char *type, hvs_ms_t start,
                  hvs_ms_t end, double magnitude) {
    sim_label_t l = {.building = (int32_t)r->building,
                     .apartment = (int32_t)r->apartment,
                     .room = -1,
                     .category = "delivery",
                     .type = type,
                     .start = start,
                     .end = end,
                     .magnitude = magnitude};
    sim_label_emit(d->labels, &l);
}

/* ---- queues ------------------------------------------------------------------------------ */

static int ring_push(sim_delivery_t *d, const sim_record_t *r, uint64_t seq) {
    if (d->ring_len == d->ring_cap) {
        size_t cap = d->ring_cap ? d->ring_cap * 2 : 4096;
        sim_record_t *ring = malloc(cap * sizeof *ring);
        uint64_t *seqs = malloc(cap * sizeof *seqs);
        if (!ring || !seqs) {
            free(ring);
            free(seqs);
            return HVS_ENOMEM;
        }
        for (size_t i = 0; i < d->ring_len; i++) {
            ring[i] = d->ring[(d->ring_head + i) % d->ring_cap];
            seqs[i] = d->ring_seq[(d->ring_head + i) % d->ring_cap];
        }
        free(d->ring);
        free(d->ring_seq);
        d->ring = ring, d->ring_seq = seqs, d->ring_cap = cap, d->ring_head = 0;
    }
    size_t at = (d->ring_head + d->ring_len) % d->ring_cap;
    d->ring[at] = *r;
    d->ring_seq[at] = seq;
    d->ring_len++;
    return HVS_OK;
}

static bool before(const handle_t *a, const handle_t *b) {
    return a->at < b->at || (a->at == b->at && a->seq < b->seq);
}

static int heap_push(sim_delivery_t *d, const sim_record_t *r, hvs_ms_t at, uint64_t seq) {
    if (d->nfree == 0) {
        size_t cap = d->slab_cap ? d->slab_cap * 2 : 4096;
        sim_record_t *slab = realloc(d->slab, cap * sizeof *slab);
        if (!slab)
            return HVS_ENOMEM;
        d->slab = slab;
        uint32_t *fs = realloc(d->free_slots, cap * sizeof *fs);
        if (!fs)
            return HVS_ENOMEM;
        d->free_slots = fs;
        for (size_t i = cap; i > d->slab_cap; i--)
            d->free_slots[d->nfree++] = (uint32_t)(i - 1);
        d->slab_cap = cap;
    }
    if (d->heap_len == d->heap_cap) {
        size_t cap = d->heap_cap ? d->heap_cap * 2 : 4096;
        handle_t *h = realloc(d->heap, cap * sizeof *h);
        if (!h)
            return HVS_ENOMEM;
        d->heap = h, d->heap_cap = cap;
    }
    uint32_t slot = d->free_slots[--d->nfree];
    d->slab[slot] = *r;
    handle_t h = {at, seq, slot};
    size_t i = d->heap_len++;
    while (i > 0 && before(&h, &d->heap[(i - 1) / 2])) {
        d->heap[i] = d->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    d->heap[i] = h;
    return HVS_OK;
}

static void heap_pop(sim_delivery_t *d, sim_record_t *out) {
    handle_t top = d->heap[0];
    *out = d->slab[top.slot];
    d->free_slots[d->nfree++] = top.slot;
    handle_t last = d->heap[--d->heap_len];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= d->heap_len)
            break;
        if (c + 1 < d->heap_len && before(&d->heap[c + 1], &d->heap[c]))
            c++;
        if (!before(&d->heap[c], &last))
            break;
        d->heap[i] = d->heap[c];
        i = c;
    }
    if (d->heap_len)
        d->heap[i] = last;
}

static int enqueue(sim_delivery_t *d, const sim_record_t *r, hvs_ms_t at) {
    uint64_t seq = d->seq++;
    /* Records due when measured come in time order: the ring keeps them sorted for free. */
    if (at == r->measured_at &&
        (d->ring_len == 0 ||
         d->ring[(d->ring_head + d->ring_len - 1) % d->ring_cap].measured_at <= at))
        return ring_push(d, r, seq);
    return heap_push(d, r, at, seq);
}

/* ---- the imperfections ------------------------------------------------------------------- */

static void draw_day(sim_delivery_t *d, apt_state_t *s, const sim_record_t *r, int64_t day) {
    const sim_delivery_conf_t *c = &d->conf;
    hvs_ms_t day0 = day * DAY_MS;
    /* A new episode only once the last one of its kind is over: they never overlap. The draw
     * happens anyway, so the stream does not depend on the episodes' lengths. */
    bool outage = sim_rng_bernoulli(&s->rng, c->late_batch_rate);
    bool gap = sim_rng_bernoulli(&s->rng, c->gap_rate);
    if (c->late_batch_rate > 0 && outage && day0 >= s->outage_end) {
        s->outage_start = day0 + (hvs_ms_t)(sim_rng_u01(&s->rng) * (double)DAY_MS);
        hvs_ms_t len = HOUR_MS + (hvs_ms_t)(sim_rng_u01(&s->rng) *
                                            (double)(c->late_outage_max_ms > HOUR_MS
                                                         ? c->late_outage_max_ms - HOUR_MS
                                                         : 0));
        s->outage_end = s->outage_start + len;
        s->release_at = s->outage_end +
                        (hvs_ms_t)(sim_rng_u01(&s->rng) * (double)c->late_upload_max_ms);
        label(d, r, "late_batch", s->outage_start, s->outage_end,
              (double)(s->release_at - s->outage_end));
    }
    if (c->gap_rate > 0 && gap && day0 >= s->gap_end) {
        s->gap_start = day0 + (hvs_ms_t)(sim_rng_u01(&s->rng) * (double)DAY_MS);
        hvs_ms_t max = c->gap_max_ms > 15 * MIN_MS ? c->gap_max_ms : 15 * MIN_MS;
        s->gap_end = s->gap_start + 15 * MIN_MS +
                     (hvs_ms_t)(sim_rng_u01(&s->rng) * (double)(max - 15 * MIN_MS));
        label(d, r, "gap", s->gap_start, s->gap_end, 0);
    }
}

static void start_apartment(sim_delivery_t *d, apt_state_t *s, const sim_record_t *r) {
    const sim_delivery_conf_t *c = &d->conf;
    s->started = true;
    if (c->skew_fraction > 0 && sim_rng_bernoulli(&s->rng, c->skew_fraction)) {
        if (sim_rng_bernoulli(&s->rng, 0.1)) {
            s->skew = HOUR_MS; /* a local-time clock stamped as UTC */
        } else {
            hvs_ms_t span = c->skew_max_ms > MIN_MS ? c->skew_max_ms - MIN_MS : 0;
            s->skew = MIN_MS + (hvs_ms_t)(sim_rng_u01(&s->rng) * (double)span);
            s->skew -= s->skew % 1000;
            if (sim_rng_bernoulli(&s->rng, 0.5))
                s->skew = -s->skew;
        }
        /* Open-ended: the clock stays wrong for the rest of the run (100 years). */
        label(d, r, "clock_skew", r->measured_at, r->measured_at + 36525 * DAY_MS, (double)s->skew);
    }
    s->next_replacement = c->meter_replacement_rate > 0
                              ? r->measured_at +
                                    (hvs_ms_t)(sim_rng_exponential(
                                                   &s->rng, 1.0 / c->meter_replacement_rate) *
                                               (double)YEAR_MS)
                              : INT64_MAX;
    s->last_true[0] = s->last_true[1] = NAN;
}

static void corrupt(sim_delivery_t *d, apt_state_t *s, sim_record_t *r) {
    int kind = sim_rng_int(&s->rng, SIM_CORRUPT_NAN, SIM_CORRUPT_SYNTAX);
    int counter = -1;
    for (int i = 0; i < r->n && counter < 0; i++)
        if (r->v[i].sensor == SIM_S_HEAT_KWH || r->v[i].sensor == SIM_S_HOT_WATER_L)
            counter = i;
    if (kind == SIM_CORRUPT_NEGATIVE_COUNTER && counter < 0)
        kind = SIM_CORRUPT_NAN;
    if (kind == SIM_CORRUPT_UNKNOWN_SENSOR && r->n >= SIM_MAX_VALUES)
        kind = SIM_CORRUPT_SYNTAX;
    switch (kind) {
    case SIM_CORRUPT_NAN: r->v[sim_rng_int(&s->rng, 0, r->n - 1)].value = NAN; break;
    case SIM_CORRUPT_NEGATIVE_COUNTER: r->v[counter].value = -fmax(0.1, r->v[counter].value); break;
    case SIM_CORRUPT_UNKNOWN_SENSOR:
        r->v[r->n++] = (sim_value_t){.sensor = SIM_S_UNKNOWN,
                                     .room = -1,
                                     .value = round(sim_rng_uniform(&s->rng, 400, 1200))};
        break;
    default: break;
    }
    r->corrupt = (uint8_t)kind;
    d->stats.malformed++;
}

int sim_delivery_push(sim_delivery_t *d, const sim_record_t *in, hvs_err_t *err) {
    if (in->building >= d->nbuildings ||
        in->apartment >= d->first[in->building + 1] - d->first[in->building])
        return hvs_err_set(err, HVS_EINVAL, "bad_value",
                           "record of building %u apartment %u: "
                           "outside the fleet",
                           in->building, in->apartment);
    const sim_delivery_conf_t *c = &d->conf;
    apt_state_t *s = &d->apts[d->first[in->building] + in->apartment];
    sim_record_t r = *in;
    hvs_ms_t now = r.measured_at;
    d->stats.pushed++;
    if (!s->started)
        start_apartment(d, s, &r);
    int64_t day = (int64_t)floor((double)now / (double)DAY_MS);
    if (day != s->day) {
        s->day = day;
        draw_day(d, s, &r, day);
    }

    /* Meter replacement: one of the two counters starts again from zero. */
    while (now >= s->next_replacement) {
        int k = sim_rng_bernoulli(&s->rng, 0.5) ? 1 : 0;
        s->next_replacement += (hvs_ms_t)(sim_rng_exponential(&s->rng,
                                                              1.0 / c->meter_replacement_rate) *
                                          (double)YEAR_MS);
        if (isnan(s->last_true[k]))
            continue; /* nothing counted yet */
        s->offset[k] = s->last_true[k];
        d->stats.meter_replacements++;
        label(d, &r, k == 0 ? "meter_replacement_heat" : "meter_replacement_water", now,
              now + 15 * MIN_MS, s->offset[k]);
    }
    for (int i = 0; i < r.n; i++) {
        int k = r.v[i].sensor == SIM_S_HEAT_KWH ? 0 : r.v[i].sensor == SIM_S_HOT_WATER_L ? 1 : -1;
        if (k < 0)
            continue;
        s->last_true[k] = r.v[i].value;
        if (s->offset[k] > 0)
            r.v[i].value = fmax(0.0, round((r.v[i].value - s->offset[k]) * 10.0) / 10.0);
    }

    if (now >= s->gap_start && now < s->gap_end) {
        d->stats.dropped_in_gaps++;
        return HVS_OK;
    }
    if (s->skew) {
        r.timestamp = now + s->skew;
        d->stats.skewed++;
    }
    if (c->malformed_rate > 0 && sim_rng_bernoulli(&s->rng, c->malformed_rate))
        corrupt(d, s, &r);

    hvs_ms_t at = now;
    if (now >= s->outage_start && now < s->outage_end) {
        at = s->release_at;
        d->stats.late++;
    } else if (c->ooo_rate > 0 && sim_rng_bernoulli(&s->rng, c->ooo_rate)) {
        at = now + MIN_MS +
             (hvs_ms_t)(sim_rng_u01(&s->rng) *
                        (double)(c->ooo_delay_max_ms > MIN_MS ? c->ooo_delay_max_ms - MIN_MS : 0));
        d->stats.reordered++;
    }
    if (enqueue(d, &r, at) != HVS_OK)
        return hvs_err_set(err, HVS_ENOMEM, NULL, "delivery queue: out of memory");
    if (c->dup_rate > 0 && sim_rng_bernoulli(&s->rng, c->dup_rate)) {
        r.duplicate = 1;
        hvs_ms_t dup_at = at + (hvs_ms_t)(sim_rng_u01(&s->rng) * (double)c->dup_delay_max_ms);
        if (enqueue(d, &r, dup_at) != HVS_OK)
            return hvs_err_set(err, HVS_ENOMEM, NULL, "delivery queue: out of memory");
        d->stats.duplicated++;
    }
    return HVS_OK;
}

/* The earlier of the ring's head and the heap's top, if due by `now`. */
static int pop_due(sim_delivery_t *d, hvs_ms_t now, sim_record_t *out) {
    bool ring = d->ring_len > 0, heap = d->heap_len > 0;
    if (ring && heap) {
        handle_t rh = {d->ring[d->ring_head].measured_at, d->ring_seq[d->ring_head], 0};
        ring = before(&rh, &d->heap[0]);
        heap = !ring;
    }
    if (ring && d->ring[d->ring_head].measured_at <= now) {
        *out = d->ring[d->ring_head];
        d->ring_head = (d->ring_head + 1) % d->ring_cap;
        d->ring_len--;
    } else if (heap && d->heap[0].at <= now) {
        heap_pop(d, out);
    } else {
        return 0;
    }
    d->stats.delivered++;
    return 1;
}

int sim_delivery_pop(sim_delivery_t *d, hvs_ms_t now, sim_record_t *out) {
    return pop_due(d, now, out);
}

int sim_delivery_drain(sim_delivery_t *d, sim_record_t *out) { return pop_due(d, INT64_MAX, out); }

size_t sim_delivery_pending(const sim_delivery_t *d) { return d->ring_len + d->heap_len; }

void sim_delivery_get_stats(const sim_delivery_t *d, sim_delivery_stats_t *out) { *out = d->stats; }
