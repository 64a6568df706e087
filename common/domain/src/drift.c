/* drift.c - PSI of served features against a training profile over a ring of event hours (see
 * hvs/drift.h). */
#include "hvs/drift.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct feat {
    size_t nedges; /* distinct edges k; value bins k + 1, then the missing bin */
    size_t edge0;  /* first of its edges in d->edges */
    size_t bin0;   /* first of its k + 2 bins in a slot's counts and in d->expected */
    bool measured; /* has a profile */
} feat_t;

typedef struct slot {
    int64_t hour; /* hour index stamped; INT64_MIN: never used */
    uint32_t rows;
} slot_t;

struct hvs_drift {
    size_t nf, nbins, nslots;
    uint32_t min_count;
    feat_t *f;
    double *edges, *expected;
    slot_t *slots;
    uint32_t *counts; /* nslots x nbins */
    uint64_t fingerprint;
};

static int64_t hour_of(hvs_ms_t t) {
    return t >= 0 ? t / HVS_MS_HOUR : -((-t + HVS_MS_HOUR - 1) / HVS_MS_HOUR);
}

static size_t slot_index(const hvs_drift_t *d, int64_t hour) {
    int64_t n = (int64_t)d->nslots, k = hour % n;
    return (size_t)(k < 0 ? k + n : k);
}

void hvs_drift_destroy(hvs_drift_t *d) {
    if (!d)
        return;
    free(d->f);
    free(d->edges);
    free(d->expected);
    free(d->slots);
    free(d->counts);
    free(d);
}

/* FNV-1a over the bytes of what defines the bins. */
static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= UINT64_C(1099511628211);
    }
    return h;
}

/* Feature i's distinct edges and expected shares into d (rules of drift.h). */
static void build_bins(hvs_drift_t *d, size_t i, const hvs_feature_profile_t *p) {
    feat_t *f = &d->f[i];
    double *u = d->edges + f->edge0, *e = d->expected + f->bin0;
    double keep = 1 - p->missing_rate, prev_F = 0;
    size_t k = 0;
    for (size_t a = 0; a < p->nq;) {
        size_t b = a;
        while (b + 1 < p->nq && p->quantiles[b + 1] == p->quantiles[a])
            b++;
        /* a run is a point mass: F(u) anywhere in [p_b, p_{b+1}); take the middle */
        double next = b + 1 < p->nq ? p->probabilities[b + 1] : 1.0;
        double F = a == b ? p->probabilities[b] : (p->probabilities[b] + next) / 2;
        u[k] = p->quantiles[a];
        e[k] = keep * (F - prev_F);
        prev_F = F;
        k++;
        a = b + 1;
    }
    e[k] = keep * (1 - prev_F);
    e[k + 1] = p->missing_rate;
    f->nedges = k;
}

/* What the bins rely on (the registry hands out only such profiles; others may not). */
static bool profile_ok(const hvs_feature_profile_t *p) {
    if (!(p->missing_rate >= 0 && p->missing_rate <= 1) ||
        (p->nq && (!p->quantiles || !p->probabilities)))
        return false;
    for (size_t j = 0; j < p->nq; j++)
        if (!isfinite(p->quantiles[j]) || !(p->probabilities[j] >= 0 && p->probabilities[j] <= 1) ||
            (j && (!(p->probabilities[j] > p->probabilities[j - 1]) ||
                   p->quantiles[j] < p->quantiles[j - 1])))
            return false;
    return true;
}

int hvs_drift_new(const hvs_feature_profile_t *profile, size_t nfeatures, hvs_ms_t window_ms,
                  uint32_t min_count, hvs_drift_t **out, hvs_err_t *err) {
    if (out)
        *out = NULL;
    if (!out || !profile || nfeatures == 0)
        return hvs_err_set(err, HVS_EINVAL, "bad_argument", "drift monitor without features");
    if (window_ms <= 0 || window_ms % HVS_MS_HOUR || window_ms / HVS_MS_HOUR > HVS_DRIFT_MAX_SLOTS)
        return hvs_err_set(err, HVS_EINVAL, "bad_argument",
                           "drift window %" PRId64 " ms: a whole number of hours, 1 to %d",
                           (int64_t)window_ms, HVS_DRIFT_MAX_SLOTS);
    hvs_drift_t *d = calloc(1, sizeof *d);
    if (!d || !(d->f = calloc(nfeatures, sizeof *d->f)))
        goto oom;
    d->nf = nfeatures;
    d->nslots = (size_t)(window_ms / HVS_MS_HOUR);
    d->min_count = min_count ? min_count : HVS_DRIFT_MIN_COUNT;
    size_t nedges = 0;
    for (size_t i = 0; i < nfeatures; i++) {
        const hvs_feature_profile_t *p = &profile[i];
        if (!p->name)
            continue;
        if (!profile_ok(p)) {
            hvs_drift_destroy(d);
            return hvs_err_set(err, HVS_EINVAL, "bad_argument",
                               "drift: profile of %s is not one (missing rate %g, %zu quantiles "
                               "not finite and ascending at ascending probabilities in [0, 1])",
                               p->name, p->missing_rate, p->nq);
        }
        d->f[i] = (feat_t){0, nedges, d->nbins, true};
        nedges += p->nq;
        d->nbins += p->nq + 2; /* at most nq edges: nq + 1 value bins, the missing bin */
    }
    d->edges = malloc((nedges ? nedges : 1) * sizeof *d->edges);
    d->expected = malloc((d->nbins ? d->nbins : 1) * sizeof *d->expected);
    d->slots = malloc(d->nslots * sizeof *d->slots);
    if (!d->edges || !d->expected || !d->slots)
        goto oom;
    /* lay the bins out tightly now that the distinct edges are known */
    size_t e0 = 0, b0 = 0;
    for (size_t i = 0; i < nfeatures; i++) {
        if (!d->f[i].measured)
            continue;
        d->f[i].edge0 = e0;
        d->f[i].bin0 = b0;
        build_bins(d, i, &profile[i]);
        e0 += d->f[i].nedges;
        b0 += d->f[i].nedges + 2;
    }
    d->nbins = b0;
    d->counts = calloc(d->nslots * (b0 ? b0 : 1), sizeof *d->counts);
    if (!d->counts)
        goto oom;
    for (size_t s = 0; s < d->nslots; s++)
        d->slots[s] = (slot_t){INT64_MIN, 0};
    uint64_t h = fnv(UINT64_C(14695981039346656037), &d->nf, sizeof d->nf);
    for (size_t i = 0; i < nfeatures; i++) {
        const feat_t *f = &d->f[i];
        size_t nb = f->measured ? f->nedges + 2 : 0;
        h = fnv(h, &nb, sizeof nb);
        if (nb) {
            h = fnv(h, d->edges + f->edge0, f->nedges * sizeof *d->edges);
            h = fnv(h, d->expected + f->bin0, nb * sizeof *d->expected);
        }
    }
    d->fingerprint = h;
    *out = d;
    return 0;
oom:
    hvs_drift_destroy(d);
    return hvs_err_set(err, HVS_ENOMEM, "oom", "drift monitor of %zu features", nfeatures);
}

/* The slot for hour, reset when it held an older one; NULL when it holds a newer hour. */
static uint32_t *slot_for(hvs_drift_t *d, int64_t hour, slot_t **sp) {
    size_t k = slot_index(d, hour);
    slot_t *s = &d->slots[k];
    uint32_t *c = d->counts + k * d->nbins;
    if (s->hour > hour)
        return NULL;
    if (s->hour < hour) {
        memset(c, 0, d->nbins * sizeof *c);
        *s = (slot_t){hour, 0};
    }
    *sp = s;
    return c;
}

static void bump(uint32_t *c) {
    if (*c < UINT32_MAX)
        (*c)++;
}

int hvs_drift_add(hvs_drift_t *d, hvs_ms_t event_time, const double *row) {
    slot_t *s;
    uint32_t *c = slot_for(d, hour_of(event_time), &s);
    if (!c)
        return 1;
    bump(&s->rows);
    for (size_t i = 0; i < d->nf; i++) {
        const feat_t *f = &d->f[i];
        if (!f->measured)
            continue;
        double x = row[i];
        size_t b;
        if (isnan(x)) {
            b = f->nedges + 1;
        } else { /* the first edge >= x closes x's bin; none: the last bin */
            const double *u = d->edges + f->edge0;
            size_t lo = 0, hi = f->nedges;
            while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (u[mid] < x)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            b = lo;
        }
        bump(&c[f->bin0 + b]);
    }
    return 0;
}

void hvs_drift_psi(const hvs_drift_t *d, hvs_ms_t now, double *psi_out, size_t *n_values) {
    int64_t hn = hour_of(now);
    uint64_t rows = 0;
    for (size_t k = 0; k < d->nslots; k++)
        if (d->slots[k].hour <= hn && d->slots[k].hour > hn - (int64_t)d->nslots)
            rows += d->slots[k].rows;
    if (n_values)
        *n_values = (size_t)rows;
    for (size_t i = 0; i < d->nf; i++) {
        const feat_t *f = &d->f[i];
        psi_out[i] = NAN;
        if (!f->measured || rows < d->min_count)
            continue;
        double psi = 0;
        for (size_t b = 0; b < f->nedges + 2; b++) {
            uint64_t n = 0;
            for (size_t k = 0; k < d->nslots; k++)
                if (d->slots[k].hour <= hn && d->slots[k].hour > hn - (int64_t)d->nslots)
                    n += d->counts[k * d->nbins + f->bin0 + b];
            double a = fmax((double)n / (double)rows, HVS_DRIFT_EPSILON);
            double e = fmax(d->expected[f->bin0 + b], HVS_DRIFT_EPSILON);
            psi += (a - e) * log(a / e);
        }
        psi_out[i] = psi;
    }
}

size_t hvs_drift_bins(const hvs_drift_t *d, size_t feature, const double **upper,
                      const double **expected) {
    if (feature >= d->nf || !d->f[feature].measured)
        return 0;
    const feat_t *f = &d->f[feature];
    if (upper)
        *upper = d->edges + f->edge0;
    if (expected)
        *expected = d->expected + f->bin0;
    return f->nedges + 1;
}

int hvs_drift_slot_encode(const hvs_drift_t *d, hvs_ms_t hour, hvs_strbuf_t *out, hvs_err_t *err) {
    int64_t h = hour_of(hour);
    size_t k = slot_index(d, h);
    bool held = d->slots[k].hour == h;
    const uint32_t *c = d->counts + k * d->nbins;
    hvs_strbuf_printf(out, "d1 %" PRId64 " %" PRIu32 " %016" PRIx64, h * HVS_MS_HOUR,
                      held ? d->slots[k].rows : 0, d->fingerprint);
    for (size_t b = 0; b < d->nbins;) {
        uint32_t v = held ? c[b] : 0;
        size_t run = 1;
        while (v == 0 && b + run < d->nbins && (!held || c[b + run] == 0))
            run++;
        if (run > 1)
            hvs_strbuf_printf(out, " 0*%zu", run);
        else
            hvs_strbuf_printf(out, " %" PRIu32, v);
        b += run;
    }
    if (out->oom)
        return hvs_err_set(err, HVS_ENOMEM, "oom", "drift slot text");
    return 0;
}

/* The next space-separated token of [*p, end) into buf; its length (0: none; >= cap: too
 * long, refused by the caller's parse). */
static size_t token(const char **p, const char *end, char *buf, size_t cap) {
    while (*p < end && **p == ' ')
        (*p)++;
    const char *s = *p;
    while (*p < end && **p != ' ')
        (*p)++;
    size_t n = (size_t)(*p - s), c = n < cap ? n : cap - 1;
    memcpy(buf, s, c);
    buf[c] = 0;
    return n;
}

/* A whole token as an unsigned decimal no larger than max. */
static bool parse_u64(const char *s, size_t n, size_t cap, uint64_t max, uint64_t *v) {
    char *e;
    if (n == 0 || n >= cap || s[0] < '0' || s[0] > '9')
        return false;
    errno = 0;
    unsigned long long x = strtoull(s, &e, 10);
    *v = x;
    return *e == 0 && errno == 0 && x <= max;
}

/* The first feature from i on that has bins (d->nf: none). */
static size_t next_measured(const hvs_drift_t *d, size_t i) {
    while (i < d->nf && !d->f[i].measured)
        i++;
    return i;
}

#define BAD(...) hvs_err_set(err, HVS_ESERDE, "bad_drift_slot", "drift slot: " __VA_ARGS__)

int hvs_drift_slot_decode(hvs_drift_t *d, const char *text, size_t len, hvs_err_t *err) {
    const char *p = text, *end = text + len;
    char tok[40];
    size_t n;
    uint64_t rows, v;
    if (!text || token(&p, end, tok, sizeof tok) != 2 || strcmp(tok, "d1") != 0)
        return BAD("does not start \"d1\"");
    n = token(&p, end, tok, sizeof tok);
    char *e;
    errno = 0;
    long long ms = n && n < sizeof tok ? strtoll(tok, &e, 10) : 0;
    if (!n || n >= sizeof tok || *e || errno || ms % HVS_MS_HOUR)
        return BAD("hour \"%s\" is not an hour's start in ms", tok);
    n = token(&p, end, tok, sizeof tok);
    if (!parse_u64(tok, n, sizeof tok, UINT32_MAX, &rows))
        return BAD("row count \"%s\"", tok);
    n = token(&p, end, tok, sizeof tok);
    errno = 0;
    uint64_t fp = n == 16 ? strtoull(tok, &e, 16) : 0;
    if (n != 16 || *e || errno)
        return BAD("fingerprint \"%s\"", tok);
    if (fp != d->fingerprint)
        return BAD("fingerprint %016" PRIx64 " is another profile's (this one: %016" PRIx64 ")", fp,
                   d->fingerprint);
    /* parse into the slot only once it has all read well: a scratch pass first, which also
     * checks that each feature's bins count every row (saturated counts aside) */
    size_t b = 0, fi = next_measured(d, 0);
    uint64_t sum = 0;
    for (const char *q = p; (n = token(&q, end, tok, sizeof tok)) > 0;) {
        uint64_t run = 1;
        char *star = strchr(tok, '*');
        v = 0;
        if (star) {
            *star = 0;
            if (strcmp(tok, "0") != 0 ||
                !parse_u64(star + 1, strlen(star + 1), sizeof tok, d->nbins, &run) || run < 2)
                return BAD("zero run \"%s*%s\"", tok, star + 1);
        } else if (!parse_u64(tok, n, sizeof tok, UINT32_MAX, &v)) {
            return BAD("count \"%s\"", tok);
        }
        if (run > d->nbins - b)
            return BAD("more than the %zu counts of this profile", d->nbins);
        for (uint64_t r = 0; r < run; r++) {
            sum += v;
            b++;
            if (fi < d->nf && b == d->f[fi].bin0 + d->f[fi].nedges + 2) {
                if (sum != rows && rows != UINT32_MAX)
                    return BAD("feature %zu counts %" PRIu64 " values of %" PRIu64 " rows", fi, sum,
                               rows);
                sum = 0;
                fi = next_measured(d, fi + 1);
            }
        }
    }
    if (b != d->nbins)
        return BAD("%zu counts, this profile has %zu", b, d->nbins);
    int64_t h = ms / HVS_MS_HOUR;
    size_t k = slot_index(d, h);
    if (d->slots[k].hour > h)
        return 1;
    uint32_t *c = d->counts + k * d->nbins;
    d->slots[k] = (slot_t){h, (uint32_t)rows};
    b = 0;
    while ((n = token(&p, end, tok, sizeof tok)) > 0) {
        char *star = strchr(tok, '*');
        if (star) {
            uint64_t run = strtoull(star + 1, NULL, 10);
            memset(c + b, 0, (size_t)run * sizeof *c);
            b += (size_t)run;
        } else {
            c[b++] = (uint32_t)strtoull(tok, NULL, 10);
        }
    }
    return 0;
}
