/*
 * Prometheus metrics registry (see hvs/metrics.h). Families are kept in registration order;
 * each series holds its value as an atomic 64-bit pattern of a double so updates need no lock.
 */
#include "hvs/metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hvs/fmt.h"
#include "hvs/log.h"

typedef enum { M_COUNTER, M_GAUGE, M_HISTOGRAM } mtype_t;

struct hvs_metric {
    mtype_t type;
    char *labels;              /* "" or `k="v",...` */
    _Atomic uint64_t value;    /* double bits: counter/gauge value, histogram sum */
    _Atomic uint64_t count;    /* histogram observations */
    _Atomic uint64_t *buckets; /* histogram: per-bucket (non-cumulative) counts */
    struct hvs_metric *next;
    struct family *family;
};

typedef struct family {
    char *name;
    char *help;
    mtype_t type;
    double *bounds;
    size_t nbounds;
    hvs_metric_t *series;
    struct family *next;
} family_t;

struct hvs_metrics {
    pthread_mutex_t lock;
    family_t *families, *last;
};

const double hvs_metrics_latency_buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                              0.1,    0.25,  0.5,    1,     2.5,  5,     10};
const size_t hvs_metrics_latency_nbuckets = sizeof hvs_metrics_latency_buckets /
                                            sizeof hvs_metrics_latency_buckets[0];

static uint64_t d2u(double d) {
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

static double u2d(uint64_t u) {
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

hvs_metrics_t *hvs_metrics_new(void) {
    hvs_metrics_t *m = calloc(1, sizeof *m);
    if (m)
        pthread_mutex_init(&m->lock, NULL);
    return m;
}

void hvs_metrics_destroy(hvs_metrics_t *m) {
    if (!m)
        return;
    for (family_t *f = m->families; f;) {
        for (hvs_metric_t *s = f->series; s;) {
            hvs_metric_t *n = s->next;
            free(s->labels);
            free((void *)s->buckets);
            free(s);
            s = n;
        }
        family_t *n = f->next;
        free(f->name);
        free(f->help);
        free(f->bounds);
        free(f);
        f = n;
    }
    pthread_mutex_destroy(&m->lock);
    free(m);
}

static bool name_valid(const char *n) {
    if (!n || !*n)
        return false;
    for (const char *p = n; *p; p++) {
        bool alpha = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_' || *p == ':';
        bool digit = *p >= '0' && *p <= '9';
        if (!alpha && !(digit && p != n))
            return false;
    }
    return true;
}

/*
 * Is `labels` a well-formed label set: `k="v"` pairs joined by ',', names [a-zA-Z_][a-zA-Z0-9_]*
 * not starting with "__", no name twice, values escaped as the format wants (\\, \", \n; no raw
 * newline)? Histograms reserve "le". Writes the reason into why.
 */
static bool labels_valid(const char *labels, bool histogram, char *why, size_t whylen) {
    const char *names[32];
    size_t namelens[32], n = 0;
    const char *p = labels;
    while (*p) {
        const char *k = p;
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_')) {
            snprintf(why, whylen, "bad label name at \"%.32s\"", k);
            return false;
        }
        while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_' ||
               (*p >= '0' && *p <= '9'))
            p++;
        size_t klen = (size_t)(p - k);
        if (klen >= 2 && k[0] == '_' && k[1] == '_') {
            snprintf(why, whylen, "label names starting with __ are reserved");
            return false;
        }
        if (histogram && klen == 2 && strncmp(k, "le", 2) == 0) {
            snprintf(why, whylen, "label le is reserved for histogram buckets");
            return false;
        }
        for (size_t i = 0; i < n; i++)
            if (namelens[i] == klen && strncmp(names[i], k, klen) == 0) {
                snprintf(why, whylen, "label %.*s given twice", (int)klen, k);
                return false;
            }
        if (n == sizeof names / sizeof names[0]) {
            snprintf(why, whylen, "more than 32 labels");
            return false;
        }
        names[n] = k;
        namelens[n++] = klen;
        if (p[0] != '=' || p[1] != '"') {
            snprintf(why, whylen, "label %.*s: expected =\"value\"", (int)klen, k);
            return false;
        }
        for (p += 2; *p != '"'; p++) {
            if (*p == '\0' || *p == '\n') {
                snprintf(why, whylen, "label %.*s: unterminated value", (int)klen, k);
                return false;
            }
            if (*p == '\\') {
                p++;
                if (*p != '\\' && *p != '"' && *p != 'n') {
                    snprintf(why, whylen, "label %.*s: bad escape (use hvs_metrics_label_escape)",
                             (int)klen, k);
                    return false;
                }
            }
        }
        p++; /* closing quote */
        if (*p == ',' && p[1])
            p++;
        else if (*p) {
            snprintf(why, whylen, "label %.*s: expected ',' after the value", (int)klen, k);
            return false;
        }
    }
    return true;
}

int hvs_metrics_label_escape(char *buf, size_t buflen, const char *value) {
    size_t o = 0;
    for (const char *p = value ? value : ""; *p; p++) {
        const char *rep = *p == '\\' ? "\\\\" : *p == '"' ? "\\\"" : *p == '\n' ? "\\n" : NULL;
        size_t k = rep ? 2 : 1;
        if (o + k >= buflen)
            return HVS_EINVAL;
        if (rep)
            memcpy(buf + o, rep, 2);
        else
            buf[o] = *p;
        o += k;
    }
    if (o >= buflen)
        return HVS_EINVAL;
    buf[o] = '\0';
    return (int)o;
}

static bool same_bounds(const family_t *f, const double *bounds, size_t nbounds) {
    if (f->nbounds != nbounds)
        return false;
    for (size_t i = 0; i < nbounds; i++)
        if (f->bounds[i] != bounds[i])
            return false;
    return true;
}

static hvs_metric_t *reg(hvs_metrics_t *m, mtype_t type, const char *name, const char *help,
                         const char *labels, const double *bounds, size_t nbounds) {
    if (!m)
        return NULL;
    if (!name_valid(name)) {
        hvs_log_error("metrics", "invalid metric name \"%s\"", name ? name : "(null)");
        return NULL;
    }
    if (!labels)
        labels = "";
    char why[128];
    if (!labels_valid(labels, type == M_HISTOGRAM, why, sizeof why)) {
        hvs_log_error("metrics", "metric %s: invalid labels: %s", name, why);
        return NULL;
    }
    pthread_mutex_lock(&m->lock);
    family_t *f = m->families;
    while (f && strcmp(f->name, name) != 0)
        f = f->next;
    hvs_metric_t *s = NULL;
    if (f && f->type != type) {
        hvs_log_error("metrics", "metric %s registered again with another type", name);
        goto out;
    }
    if (f && type == M_HISTOGRAM && !same_bounds(f, bounds, nbounds)) {
        hvs_log_error("metrics", "histogram %s registered again with other buckets", name);
        goto out;
    }
    if (!f) {
        f = calloc(1, sizeof *f);
        if (!f)
            goto out;
        f->name = strdup(name);
        f->help = strdup(help ? help : "");
        f->type = type;
        if (type == M_HISTOGRAM) {
            f->bounds = malloc((nbounds ? nbounds : 1) * sizeof *f->bounds);
            if (f->bounds)
                memcpy(f->bounds, bounds, nbounds * sizeof *bounds);
            f->nbounds = nbounds;
        }
        if (!f->name || !f->help || (type == M_HISTOGRAM && !f->bounds)) {
            free(f->name);
            free(f->help);
            free(f->bounds);
            free(f);
            f = NULL;
            goto out;
        }
        if (m->last)
            m->last->next = f;
        else
            m->families = f;
        m->last = f;
    }
    for (s = f->series; s; s = s->next)
        if (strcmp(s->labels, labels) == 0)
            goto out;
    s = calloc(1, sizeof *s);
    if (!s)
        goto out;
    s->type = type;
    s->family = f;
    s->labels = strdup(labels);
    if (type == M_HISTOGRAM)
        s->buckets = calloc(f->nbounds + 1, sizeof *s->buckets);
    if (!s->labels || (type == M_HISTOGRAM && !s->buckets)) {
        free(s->labels);
        free((void *)s->buckets);
        free(s);
        s = NULL;
        goto out;
    }
    atomic_init(&s->value, d2u(0.0));
    /* Append so the exposition keeps registration order. */
    hvs_metric_t **tail = &f->series;
    while (*tail)
        tail = &(*tail)->next;
    *tail = s;
out:
    pthread_mutex_unlock(&m->lock);
    return s;
}

hvs_metric_t *hvs_metrics_counter(hvs_metrics_t *m, const char *name, const char *help,
                                  const char *labels) {
    return reg(m, M_COUNTER, name, help, labels, NULL, 0);
}

hvs_metric_t *hvs_metrics_gauge(hvs_metrics_t *m, const char *name, const char *help,
                                const char *labels) {
    return reg(m, M_GAUGE, name, help, labels, NULL, 0);
}

hvs_metric_t *hvs_metrics_histogram(hvs_metrics_t *m, const char *name, const char *help,
                                    const char *labels, const double *bounds, size_t nbounds) {
    if (nbounds && !bounds)
        return NULL;
    for (size_t i = 0; i < nbounds; i++)
        if (!isfinite(bounds[i]) || (i && !(bounds[i] > bounds[i - 1]))) {
            hvs_log_error("metrics",
                          "histogram %s: bounds must be finite and ascending (+Inf is "
                          "implicit)",
                          name ? name : "(null)");
            return NULL;
        }
    return reg(m, M_HISTOGRAM, name, help, labels, bounds, nbounds);
}

static void atomic_add_double(_Atomic uint64_t *a, double v) {
    uint64_t old = atomic_load(a);
    while (!atomic_compare_exchange_weak(a, &old, d2u(u2d(old) + v))) {
    }
}

void hvs_metric_add(hvs_metric_t *metric, double v) {
    if (!metric || metric->type == M_HISTOGRAM)
        return;
    if (metric->type == M_COUNTER && !(v >= 0))
        return; /* counters only go up */
    atomic_add_double(&metric->value, v);
}

void hvs_metric_inc(hvs_metric_t *metric) { hvs_metric_add(metric, 1.0); }

void hvs_metric_set(hvs_metric_t *metric, double v) {
    if (metric && metric->type == M_GAUGE)
        atomic_store(&metric->value, d2u(v));
}

void hvs_metric_observe(hvs_metric_t *metric, double v) {
    if (!metric || metric->type != M_HISTOGRAM)
        return;
    const family_t *f = metric->family;
    size_t i = 0;
    while (i < f->nbounds && !(v <= f->bounds[i])) /* NaN lands in +Inf, as in the Go client */
        i++;
    atomic_fetch_add(&metric->buckets[i], 1);
    atomic_fetch_add(&metric->count, 1);
    atomic_add_double(&metric->value, v);
}

double hvs_metric_value(const hvs_metric_t *metric) {
    if (!metric)
        return 0;
    if (metric->type == M_HISTOGRAM)
        return (double)atomic_load(&((hvs_metric_t *)metric)->count);
    return u2d(atomic_load(&((hvs_metric_t *)metric)->value));
}

/* Prometheus float: +Inf/-Inf/NaN spelled as the format wants. */
static void fmt_value(char *buf, size_t n, double v) {
    if (isnan(v))
        snprintf(buf, n, "NaN");
    else if (isinf(v))
        snprintf(buf, n, v > 0 ? "+Inf" : "-Inf");
    else {
        /* Shortest form that reads back exactly: 0.1, not 0.10000000000000001. */
        snprintf(buf, n, "%.15g", v);
        if (strtod(buf, NULL) != v)
            snprintf(buf, n, "%.17g", v);
    }
}

/* HELP text escapes backslash and newline. */
static void sb_help(hvs_strbuf_t *b, const char *s) {
    for (; *s; s++) {
        if (*s == '\\')
            hvs_strbuf_printf(b, "\\\\");
        else if (*s == '\n')
            hvs_strbuf_printf(b, "\\n");
        else
            hvs_strbuf_printf(b, "%c", *s);
    }
}

int hvs_metrics_render(hvs_metrics_t *m, char **out, size_t *len, hvs_err_t *err) {
    hvs_strbuf_t b = {malloc(4096), 0, 4096, false};
    if (!b.p)
        return hvs_err_set(err, HVS_ENOMEM, NULL, "metrics render: out of memory");
    b.p[0] = '\0';
    static const char *const tnames[] = {"counter", "gauge", "histogram"};
    pthread_mutex_lock(&m->lock);
    for (family_t *f = m->families; f; f = f->next) {
        hvs_strbuf_printf(&b, "# HELP %s ", f->name);
        sb_help(&b, f->help);
        hvs_strbuf_printf(&b, "\n# TYPE %s %s\n", f->name, tnames[f->type]);
        for (hvs_metric_t *s = f->series; s; s = s->next) {
            char v[64];
            const char *open = s->labels[0] ? "{" : "", *close = s->labels[0] ? "}" : "";
            if (f->type != M_HISTOGRAM) {
                fmt_value(v, sizeof v, u2d(atomic_load(&s->value)));
                hvs_strbuf_printf(&b, "%s%s%s%s %s\n", f->name, open, s->labels, close, v);
                continue;
            }
            uint64_t cum = 0;
            const char *sep = s->labels[0] ? "," : "";
            for (size_t i = 0; i <= f->nbounds; i++) {
                cum += atomic_load(&s->buckets[i]);
                char le[64];
                if (i < f->nbounds)
                    fmt_value(le, sizeof le, f->bounds[i]);
                else
                    snprintf(le, sizeof le, "+Inf");
                hvs_strbuf_printf(&b, "%s_bucket{%s%sle=\"%s\"} %llu\n", f->name, s->labels, sep,
                                  le, (unsigned long long)cum);
            }
            fmt_value(v, sizeof v, u2d(atomic_load(&s->value)));
            hvs_strbuf_printf(&b, "%s_sum%s%s%s %s\n", f->name, open, s->labels, close, v);
            /* _count from the same bucket reads, so it always equals the +Inf bucket */
            hvs_strbuf_printf(&b, "%s_count%s%s%s %llu\n", f->name, open, s->labels, close,
                              (unsigned long long)cum);
        }
    }
    pthread_mutex_unlock(&m->lock);
    if (b.oom) {
        free(b.p);
        return hvs_err_set(err, HVS_ENOMEM, NULL, "metrics render: out of memory");
    }
    *out = b.p;
    *len = b.len;
    return HVS_OK;
}
