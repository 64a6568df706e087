/*
 * metrics: the exposition text parsed back line by line by an independent little parser (format
 * of every line, one HELP/TYPE block per family with all its series, values, cumulative buckets,
 * escaping of help and label values undone and compared), conflicts and bad names/labels
 * refused, and concurrent updates from threads summing exactly.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>

#include "hvs/log.h"
#include "hvs/metrics.h"
#include "hvs_test.h"

/* ---- an independent parser of the text format (0.0.4) ---- */

#define MAXS 256
typedef struct sample {
    char name[96];
    char lk[8][32];  /* label names */
    char lv[8][128]; /* label values, unescaped */
    int nl;
    double value;
} sample_t;

typedef struct expo {
    sample_t s[MAXS];
    int n;
    char help[16][128]; /* unescaped HELP text per family */
    char fam[16][96];
    char type[16][16];
    int nf;
    int bad_lines;
} expo_t;

static int fam_index(const expo_t *e, const char *name) {
    for (int i = 0; i < e->nf; i++)
        if (strcmp(e->fam[i], name) == 0)
            return i;
    return -1;
}

/* Does sample `name` belong to family `f` of type `type`? */
static int belongs(const char *name, const char *f, const char *type) {
    size_t n = strlen(f);
    if (strncmp(name, f, n) != 0)
        return 0;
    if (!name[n])
        return strcmp(type, "histogram") != 0;
    return strcmp(type, "histogram") == 0 &&
           (!strcmp(name + n, "_bucket") || !strcmp(name + n, "_sum") ||
            !strcmp(name + n, "_count"));
}

static void parse_expo(const char *text, expo_t *e) {
    memset(e, 0, sizeof *e);
    int cur = -1; /* family whose block we are in */
    const char *p = text;
    while (*p) {
        const char *eol = strchr(p, '\n');
        if (!eol) {
            e->bad_lines++; /* every line ends in \n */
            break;
        }
        char line[1024];
        size_t len = (size_t)(eol - p);
        if (len >= sizeof line) {
            e->bad_lines++;
            p = eol + 1;
            continue;
        }
        memcpy(line, p, len);
        line[len] = '\0';
        p = eol + 1;
        if (strncmp(line, "# HELP ", 7) == 0) {
            char *name = line + 7, *sp = strchr(name, ' ');
            if (!sp || fam_index(e, (*sp = '\0', name)) >= 0 || e->nf == 16) {
                e->bad_lines++; /* a family appears once */
                continue;
            }
            if (strlen(name) >= sizeof e->fam[0]) {
                e->bad_lines++;
                continue;
            }
            cur = e->nf++;
            memcpy(e->fam[cur], name, strlen(name) + 1);
            char *o = e->help[cur];
            for (const char *h = sp + 1; *h && o < e->help[cur] + 127; h++) {
                if (*h == '\\' && (h[1] == '\\' || h[1] == 'n')) {
                    *o++ = h[1] == 'n' ? '\n' : '\\';
                    h++;
                } else {
                    *o++ = *h;
                }
            }
            *o = '\0';
        } else if (strncmp(line, "# TYPE ", 7) == 0) {
            char name[96], type[16];
            if (sscanf(line + 7, "%95s %15s", name, type) != 2 || cur < 0 ||
                strcmp(name, e->fam[cur]) != 0 || e->type[cur][0]) {
                e->bad_lines++;
                continue;
            }
            snprintf(e->type[cur], sizeof e->type[cur], "%s", type);
        } else {
            if (e->n == MAXS) {
                e->bad_lines++;
                continue;
            }
            sample_t *s = &e->s[e->n];
            memset(s, 0, sizeof *s);
            const char *q = line;
            size_t nl = strcspn(q, "{ ");
            if (nl == 0 || nl >= sizeof s->name) {
                e->bad_lines++;
                continue;
            }
            memcpy(s->name, q, nl);
            q += nl;
            int ok = 1;
            if (*q == '{') {
                q++;
                while (ok && *q != '}') {
                    size_t kl = strcspn(q, "=");
                    if (s->nl == 8 || kl == 0 || kl >= 32 || q[kl] != '=' || q[kl + 1] != '"') {
                        ok = 0;
                        break;
                    }
                    memcpy(s->lk[s->nl], q, kl);
                    q += kl + 2;
                    char *o = s->lv[s->nl];
                    while (*q && *q != '"') {
                        if (*q == '\\') {
                            q++;
                            if (*q != '\\' && *q != '"' && *q != 'n') {
                                ok = 0;
                                break;
                            }
                            *o++ = *q == 'n' ? '\n' : *q;
                        } else {
                            *o++ = *q;
                        }
                        q++;
                        if (o >= s->lv[s->nl] + 127)
                            ok = 0;
                    }
                    if (*q != '"')
                        ok = 0;
                    q++;
                    s->nl++;
                    if (*q == ',')
                        q++;
                }
                if (*q == '}')
                    q++;
            }
            char *end;
            if (!ok || *q != ' ' || cur < 0 || !belongs(s->name, e->fam[cur], e->type[cur])) {
                e->bad_lines++;
                continue;
            }
            s->value = strtod(q + 1, &end);
            if (end == q + 1 || *end) {
                e->bad_lines++;
                continue;
            }
            e->n++;
        }
    }
}

/* Value of sample `name` whose labels include every (k, v) of the NULL-terminated list. */
static double get(const expo_t *e, const char *name, ...) {
    const char *want[16];
    int nw = 0;
    va_list ap;
    va_start(ap, name);
    for (const char *k; nw < 16 && (k = va_arg(ap, const char *)) != NULL;)
        want[nw++] = k;
    va_end(ap);
    for (int i = 0; i < e->n; i++) {
        const sample_t *s = &e->s[i];
        if (strcmp(s->name, name) != 0)
            continue;
        int match = 1;
        for (int w = 0; w + 1 < nw && match; w += 2) {
            int found = 0;
            for (int l = 0; l < s->nl; l++)
                found |= !strcmp(s->lk[l], want[w]) && !strcmp(s->lv[l], want[w + 1]);
            match = found;
        }
        if (match && s->nl == nw / 2)
            return s->value;
    }
    return NAN;
}

static char *render(hvs_metrics_t *m) {
    char *text = NULL;
    size_t len = 0;
    hvs_err_t err;
    HVS_REQUIRE(hvs_metrics_render(m, &text, &len, &err) == 0, "render: %s", err.msg);
    HVS_CHECK(strlen(text) == len, "length");
    return text;
}

static void test_render(void) {
    hvs_metrics_t *m = hvs_metrics_new();
    hvs_metric_t *c1 = hvs_metrics_counter(m, "hvs_test_messages_total", "messages\nseen \\ ok",
                                           "topic=\"a\"");
    hvs_metric_t *g = hvs_metrics_gauge(m, "hvs_test_lag", "lag", NULL);
    /* registered after another family: must still be rendered inside its own family's block */
    hvs_metric_t *c2 = hvs_metrics_counter(m, "hvs_test_messages_total", "x", "topic=\"b\"");
    HVS_CHECK(c1 && c2 && c1 != c2, "two series of one family");
    HVS_CHECK(hvs_metrics_counter(m, "hvs_test_messages_total", "x", "topic=\"a\"") == c1,
              "same name and labels -> same series");
    hvs_metric_add(c1, 3);
    hvs_metric_add(c1, -1);  /* ignored: counters only go up */
    hvs_metric_add(c1, NAN); /* ignored too */
    hvs_metric_inc(c2);
    hvs_metric_set(c1, 100); /* set is for gauges only */
    hvs_metric_set(g, -2.5);
    hvs_metric_add(g, 0.25);
    static const double bounds[] = {0.01, 0.1, 1};
    hvs_metric_t *h = hvs_metrics_histogram(m, "hvs_test_latency_seconds", "lat", "stage=\"x\"",
                                            bounds, 3);
    double obs[] = {0.005, 0.01, 0.05, 0.5, 2, 3, NAN};
    for (size_t i = 0; i < 7; i++)
        hvs_metric_observe(h, obs[i]);
    /* label values with a quote, a backslash and a newline, built with the escape helper */
    char esc[128], labels[160];
    const char *raw = "say \"hi\"\\n\nnext";
    HVS_CHECK(hvs_metrics_label_escape(esc, sizeof esc, raw) > 0, "escape");
    HVS_CHECK_EQ_STR(esc, "say \\\"hi\\\"\\\\n\\nnext");
    snprintf(labels, sizeof labels, "path=\"%s\",code=\"200\"", esc);
    hvs_metric_t *odd = hvs_metrics_counter(m, "hvs_test_requests_total", "", labels);
    HVS_REQUIRE(odd != NULL, "escaped labels accepted");
    hvs_metric_add(odd, 0.1);
    hvs_metric_add(odd, 0.2);
    hvs_metric_t *big = hvs_metrics_gauge(m, "hvs_test_big", "big", NULL);
    hvs_metric_set(big, INFINITY);

    char *text = render(m);
    expo_t *e = malloc(sizeof *e);
    parse_expo(text, e);
    HVS_CHECK_EQ_INT(e->bad_lines, 0);
    HVS_CHECK_EQ_INT(e->nf, 5);
    int fi = fam_index(e, "hvs_test_messages_total");
    HVS_CHECK(fi == 0 && !strcmp(e->help[fi], "messages\nseen \\ ok") &&
                  !strcmp(e->type[fi], "counter"),
              "help escaped and read back:\n%s", text);
    HVS_CHECK(strstr(text, "# HELP hvs_test_messages_total messages\\nseen \\\\ ok\n") != NULL,
              "help escaping on the wire");
    HVS_CHECK_EQ_STR(e->type[fam_index(e, "hvs_test_latency_seconds")], "histogram");
    HVS_CHECK_EQ_STR(e->type[fam_index(e, "hvs_test_lag")], "gauge");
    HVS_CHECK_NEAR(get(e, "hvs_test_messages_total", "topic", "a", NULL), 3, 0);
    HVS_CHECK_NEAR(get(e, "hvs_test_messages_total", "topic", "b", NULL), 1, 0);
    HVS_CHECK_NEAR(get(e, "hvs_test_lag", NULL), -2.25, 0);
    HVS_CHECK(isinf(get(e, "hvs_test_big", NULL)), "+Inf rendered and read back");
    /* 0.1 + 0.2 must come back as the double it is, not rounded to 0.3 */
    HVS_CHECK(get(e, "hvs_test_requests_total", "path", raw, "code", "200", NULL) == 0.1 + 0.2,
              "label values unescaped back to the original, value exact:\n%s", text);
    /* buckets: cumulative, ascending le, +Inf == _count; NaN counted in +Inf only */
    static const struct {
        const char *le;
        double want;
    } bk[] = {{"0.01", 2}, {"0.1", 3}, {"1", 4}, {"+Inf", 7}};
    for (size_t i = 0; i < 4; i++)
        HVS_CHECK_NEAR(
            get(e, "hvs_test_latency_seconds_bucket", "stage", "x", "le", bk[i].le, NULL),
            bk[i].want, 0);
    HVS_CHECK_NEAR(get(e, "hvs_test_latency_seconds_count", "stage", "x", NULL), 7, 0);
    HVS_CHECK(isnan(get(e, "hvs_test_latency_seconds_sum", "stage", "x", NULL)),
              "sum of observations including NaN is NaN");
    HVS_CHECK_NEAR(hvs_metric_value(h), 7, 0);
    free(text);
    free(e);
    hvs_metrics_destroy(m);
}

static void test_refusals(void) {
    hvs_metrics_t *m = hvs_metrics_new();
    static const double b1[] = {1, 2}, b2[] = {1, 3}, bad1[] = {2, 1}, bad2[] = {1, INFINITY};
    HVS_CHECK(hvs_metrics_counter(m, "hvs_t_total", "x", NULL) != NULL, "counter");
    HVS_CHECK(hvs_metrics_gauge(m, "hvs_t_total", "x", NULL) == NULL, "type conflict refused");
    HVS_CHECK(hvs_metrics_histogram(m, "hvs_t_total", "x", NULL, b1, 2) == NULL, "type conflict");
    HVS_CHECK(hvs_metrics_histogram(m, "hvs_h_seconds", "x", NULL, b1, 2) != NULL, "histogram");
    HVS_CHECK(hvs_metrics_histogram(m, "hvs_h_seconds", "x", "a=\"1\"", b1, 2) != NULL,
              "second series, same buckets");
    HVS_CHECK(hvs_metrics_histogram(m, "hvs_h_seconds", "x", "a=\"2\"", b2, 2) == NULL,
              "other buckets refused");
    HVS_CHECK(hvs_metrics_histogram(m, "hvs_h2", "x", NULL, bad1, 2) == NULL, "not ascending");
    HVS_CHECK(hvs_metrics_histogram(m, "hvs_h3", "x", NULL, bad2, 2) == NULL, "+Inf explicit");
    HVS_CHECK(hvs_metrics_histogram(m, "hvs_h4", "x", "le=\"1\"", b1, 2) == NULL, "le reserved");
    static const char *const bad_names[] = {"9bad", "bad-name", "", "a b", "é"};
    for (size_t i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++)
        HVS_CHECK(hvs_metrics_counter(m, bad_names[i], "x", NULL) == NULL, "name \"%s\"",
                  bad_names[i]);
    HVS_CHECK(hvs_metrics_counter(m, NULL, "x", NULL) == NULL, "NULL name");
    HVS_CHECK(hvs_metrics_gauge(m, "ns:sub_name9", "x", NULL) != NULL, "colon and digits ok");
    static const char *const bad_labels[] = {
        "topic",     "topic=a",         "topic=\"a",  "topic=\"a\",",      "9x=\"a\"",
        "__x=\"a\"", "a=\"1\",a=\"2\"", "a=\"x\\q\"", "a=\"line\nbreak\"", "a=\"1\" b=\"2\"",
        ",a=\"1\"",  "a-b=\"1\"",       "a=\"x\\\"",
    };
    for (size_t i = 0; i < sizeof bad_labels / sizeof bad_labels[0]; i++)
        HVS_CHECK(hvs_metrics_gauge(m, "hvs_labels", "x", bad_labels[i]) == NULL,
                  "labels [%s] refused", bad_labels[i]);
    HVS_CHECK(hvs_metrics_gauge(m, "hvs_labels", "x", "a=\"\",b_2=\"\\\\ \\\" \\n\"") != NULL,
              "empty and escaped values ok");
    char small[4];
    HVS_CHECK_EQ_INT(hvs_metrics_label_escape(small, sizeof small, "abc"), 3);
    HVS_CHECK_EQ_INT(hvs_metrics_label_escape(small, sizeof small, "abcd"), HVS_EINVAL);
    HVS_CHECK_EQ_INT(hvs_metrics_label_escape(small, sizeof small, "a\"b"), HVS_EINVAL);
    /* NULL metric (a failed registration) is a no-op everywhere */
    hvs_metric_inc(NULL);
    hvs_metric_set(NULL, 1);
    hvs_metric_observe(NULL, 1);
    HVS_CHECK_NEAR(hvs_metric_value(NULL), 0, 0);
    hvs_metrics_destroy(m);
    hvs_metrics_destroy(NULL);
}

static hvs_metric_t *g_counter, *g_gauge, *g_hist;
static void *bump(void *arg) {
    (void)arg;
    for (int i = 0; i < 100000; i++) {
        hvs_metric_inc(g_counter);
        hvs_metric_add(g_gauge, (i & 1) ? 0.5 : -0.25);
        hvs_metric_observe(g_hist, (i % 4) * 0.5); /* 0, 0.5, 1, 1.5: sums stay exact */
    }
    return NULL;
}

static void *scrape(void *arg) {
    hvs_metrics_t *m = arg;
    for (int i = 0; i < 50; i++) {
        char *text = render(m);
        expo_t *e = malloc(sizeof *e);
        parse_expo(text, e);
        /* mid-update snapshots still satisfy +Inf bucket == _count */
        HVS_CHECK(get(e, "hvs_test_h_bucket", "le", "+Inf", NULL) ==
                      get(e, "hvs_test_h_count", NULL),
                  "consistent histogram snapshot");
        free(e);
        free(text);
    }
    return NULL;
}

static void test_concurrency(void) {
    hvs_metrics_t *m = hvs_metrics_new();
    static const double b[] = {0.5, 1};
    g_counter = hvs_metrics_counter(m, "hvs_test_concurrent_total", "c", NULL);
    g_gauge = hvs_metrics_gauge(m, "hvs_test_concurrent", "g", NULL);
    g_hist = hvs_metrics_histogram(m, "hvs_test_h", "h", NULL, b, 2);
    pthread_t th[4], sc;
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, bump, NULL);
    pthread_create(&sc, NULL, scrape, m);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    pthread_join(sc, NULL);
    HVS_CHECK_NEAR(hvs_metric_value(g_counter), 400000, 0);
    HVS_CHECK_NEAR(hvs_metric_value(g_gauge), 4 * 50000 * 0.25, 0);
    HVS_CHECK_NEAR(hvs_metric_value(g_hist), 400000, 0);
    char *text = render(m);
    expo_t *e = malloc(sizeof *e);
    parse_expo(text, e);
    HVS_CHECK_NEAR(get(e, "hvs_test_h_sum", NULL), 4 * 25000 * 3.0, 0);
    HVS_CHECK_NEAR(get(e, "hvs_test_h_bucket", "le", "0.5", NULL), 200000, 0);
    HVS_CHECK_NEAR(get(e, "hvs_test_h_bucket", "le", "1", NULL), 300000, 0);
    HVS_CHECK_NEAR(get(e, "hvs_test_h_bucket", "le", "+Inf", NULL), 400000, 0);
    free(e);
    free(text);
    hvs_metrics_destroy(m);
}

static const hvs_test_case_t cases[] = {
    {"render", test_render},
    {"refusals", test_refusals},
    {"concurrency", test_concurrency},
    HVS_TEST_CASES_END,
};

int main(int argc, char **argv) {
    hvs_log_init("test", HVS_LOG_ERROR, NULL);
    return hvs_test_main(cases, argc, argv);
}
