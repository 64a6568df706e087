/*
 * score.c - residual standardisation, evidence, combination and reasons (score.h).
 */
#include "score.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "hvs/features.h"

void sc_score_conf_default(sc_score_conf_t *c) {
    *c = (sc_score_conf_t){.z_low = 3,
                           .z_high = 6,
                           .min_spread = 0.05,
                           .spread_min = 24,
                           .explain_min = 0.3,
                           .window = 6,
                           .residual_weight = 0.5};
}

static int cmp_double(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

static double median(double *v, size_t n) {
    qsort(v, n, sizeof v[0], cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* The hourly residual observed - expected of `hour`, NaN when either is unknown. */
static double hourly(sc_apartment_t *a, hvs_ms_t hour) {
    const sc_model_t *m = sc_model_get(a, hour);
    return m ? (double)m->observed - (double)m->expected : NAN;
}

/* The residual and expected heat summed over the `w` hours ending with `end`; NaN unless every
 * one of them has both. */
static double window_sum(sc_apartment_t *a, hvs_ms_t end, int w, double *expected) {
    double r = 0, e = 0;
    for (int k = 0; k < w; k++) {
        const sc_model_t *m = sc_model_get(a, end - (hvs_ms_t)k * HVS_MS_HOUR);
        double x = m ? (double)m->observed - (double)m->expected : NAN;
        if (!isfinite(x))
            return NAN;
        r += x;
        e += m->expected;
    }
    if (expected)
        *expected = e;
    return r;
}

double sc_residual_z(const sc_score_conf_t *c, sc_apartment_t *a, hvs_ms_t hour, double *sum,
                     double *expected) {
    int w = c->window > 0 ? c->window : 1;
    *sum = window_sum(a, hour, w, expected);
    if (!isfinite(*sum))
        return NAN;
    /* the apartment's earlier windows that do not overlap this one */
    double v[SC_RING], hr[SC_RING];
    int nh = 0;
    for (int k = w; k < SC_RING; k++)
        hr[nh++] = hourly(a, hour - (hvs_ms_t)k * HVS_MS_HOUR);
    size_t n = 0;
    for (int i = 0; i + w <= nh; i++) {
        double r = 0;
        for (int k = 0; k < w && isfinite(r); k++)
            r += hr[i + k];
        if (isfinite(r))
            v[n++] = r;
    }
    if (n < (size_t)(c->spread_min > 0 ? c->spread_min : 1))
        return NAN;
    double med = median(v, n);
    for (size_t i = 0; i < n; i++)
        v[i] = fabs(v[i] - med);
    double spread = 1.4826 * median(v, n), floor = c->min_spread * sqrt((double)w);
    if (!(spread >= floor))
        spread = floor;
    return (*sum - med) / spread;
}

double sc_residual_evidence(const sc_score_conf_t *c, double z) {
    if (!isfinite(z) || !(c->z_high > c->z_low))
        return 0;
    double e = (fabs(z) - c->z_low) / (c->z_high - c->z_low);
    return c->residual_weight * (e < 0 ? 0 : e > 1 ? 1 : e);
}

static double ev(double e) { return isfinite(e) ? (e < 0 ? 0 : e > 1 ? 1 : e) : 0; }

double sc_combine(double e_rules, double e_residual, double e_classifier) {
    return 1 - (1 - ev(e_rules)) * (1 - ev(e_residual)) * (1 - ev(e_classifier));
}

static size_t clip(int n, size_t cap) {
    if (n < 0)
        return 0;
    return (size_t)n < cap ? (size_t)n : cap - 1;
}

size_t sc_residual_reason(const sc_score_conf_t *c, const sc_model_t *m, char *buf, size_t cap) {
    double r = m->resid_w;
    if (!isfinite(r))
        return 0;
    char at[48] = "";
    if (isfinite(m->outdoor_c))
        snprintf(at, sizeof at, " at %.1f °C", m->outdoor_c);
    char z[32] = "";
    if (isfinite(m->residual_z))
        snprintf(z, sizeof z, " (z %.1f)", m->residual_z);
    return clip(snprintf(buf, cap, "heating %.2f kWh %s the %.2f kWh expected over %d h%s%s",
                         fabs(r), r >= 0 ? "above" : "below", m->expected_w, c->window, at, z),
                cap);
}

size_t sc_contrib_reason(const sc_model_t *m, const sc_contrib_t *k, char *buf, size_t cap) {
    if (k->feature < 0 || k->feature >= HVS_FEATURES_COUNT)
        return 0;
    const char *name = hvs_features_names()[k->feature];
    char val[32];
    if (isfinite(k->value))
        snprintf(val, sizeof val, "%.2f", k->value);
    else
        snprintf(val, sizeof val, "missing");
    if (m->explained == 2)
        return clip(snprintf(buf, cap, "%s %s %s the fault probability (%+.2f log-odds)", name, val,
                             k->contrib >= 0 ? "raises" : "lowers", k->contrib),
                    cap);
    return clip(snprintf(buf, cap, "%s %s %s expected heating by %.2f kWh", name, val,
                         k->contrib >= 0 ? "raises" : "lowers", fabs(k->contrib)),
                cap);
}
