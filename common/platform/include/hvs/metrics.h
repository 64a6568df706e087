/*
 * metrics.h - Prometheus metrics: counters, gauges, histograms, rendered in the text exposition
 * format (version 0.0.4) for /metrics.
 *
 * Naming (Prometheus guide): hvs_<subsystem>_<name>_<unit>, counters end in _total, base units
 * (seconds, bytes). Labels are a fixed string given at registration, e.g. `topic="readings.raw"`;
 * never put unbounded ids (apartments, buildings) in labels. The string is checked at
 * registration: `name="value"` pairs joined by ',', valid names, no name twice, no "__" prefix,
 * no "le" on histograms, values already escaped (hvs_metrics_label_escape builds them).
 * A family is its name; registering the same name+labels again returns the same series, the
 * same name with another type fails.
 *
 * Ownership: the registry owns every metric; pointers stay valid until hvs_metrics_destroy.
 * Thread-safety: registration takes a mutex; inc/set/observe are lock-free atomics, safe from any
 * thread while the HTTP thread renders.
 */
#ifndef HVS_METRICS_H
#define HVS_METRICS_H

#include <stddef.h>

#include "hvs/err.h"

typedef struct hvs_metrics hvs_metrics_t;
typedef struct hvs_metric hvs_metric_t;

hvs_metrics_t *hvs_metrics_new(void);
void hvs_metrics_destroy(hvs_metrics_t *m);

/* NULL on a name/type conflict, bad name or bad labels (logged). `labels` may be NULL or "".
 * A histogram registered again must give the same bounds. */
hvs_metric_t *hvs_metrics_counter(hvs_metrics_t *m, const char *name, const char *help,
                                  const char *labels);
hvs_metric_t *hvs_metrics_gauge(hvs_metrics_t *m, const char *name, const char *help,
                                const char *labels);
/* `bounds` ascending upper bounds (the +Inf bucket is implicit); copied. */
hvs_metric_t *hvs_metrics_histogram(hvs_metrics_t *m, const char *name, const char *help,
                                    const char *labels, const double *bounds, size_t nbounds);

/* Counters: v >= 0. Gauges: any v. NULL metric is a no-op (so a failed registration is safe). */
void hvs_metric_add(hvs_metric_t *metric, double v);
void hvs_metric_inc(hvs_metric_t *metric);
void hvs_metric_set(hvs_metric_t *metric, double v);
void hvs_metric_observe(hvs_metric_t *metric, double v);
/* Current value of a counter or gauge (tests); count of observations for a histogram. */
double hvs_metric_value(const hvs_metric_t *metric);

/* Escape a label value for the text format (backslash, double quote and newline become \\, \"
 * and \n) into buf.
 * Returns the length written, or HVS_EINVAL if it does not fit (buf then undefined). */
int hvs_metrics_label_escape(char *buf, size_t buflen, const char *value);

/* Render every family. *out is malloc'd (caller frees), *len its length. */
int hvs_metrics_render(hvs_metrics_t *m, char **out, size_t *len, hvs_err_t *err);

/* Default latency buckets in seconds (0.0005 .. 10). */
extern const double hvs_metrics_latency_buckets[];
extern const size_t hvs_metrics_latency_nbuckets;

#endif
