/*
 * watch.h - the scorer's watch on the inputs of each model version it serves (docs/design.md
 * section 6, "Drift"), per partition, in event time; what raises MODEL_DRIFT.
 *
 * Two findings:
 *   drift     the population stability index (drift.h) of each watched feature over the last
 *             window (24 h) of served rows against the version's training profile; the hour
 *             after a window whose worst feature exceeds psi_limit (0.2) is a finding naming
 *             the worst features. Calendar features (hour, weekday, month, holidays, horizon,
 *             building age) are not watched: they follow the clock, and 24 hours of them are
 *             never distributed like 200 days.
 *   constant  seed 004's "fillna(0)": a per-apartment feature (consumption lags and rolling
 *             statistics, room temperature, comfort gap) that arrives with one identical value
 *             in const_rows consecutive rows over at least const_hours distinct hours, where
 *             the profile gives that value's bin at most const_max_share: different
 *             apartments never agree exactly for hours, unless something upstream replaced
 *             their values. Caught within const_hours - 1 hours of event time of its onset.
 * A drift finding is raised at most once per watch and UTC day (of event time), a constant one
 * once per watch, feature and day.
 *
 * Everything is counted in the order rows arrive on the partition (features.hourly), so the
 * findings are the same in every run over the same inputs. State in Redis (exactly-once with
 * the scorer's other state): hash hvs:sc:drift:<P>, fields "<ident>|w" (trackers, alerted days)
 * and "<ident>|s<slot>" (drift.h slot text). A watch of a version that no longer serves when
 * its partition is loaded is dropped.
 *
 * Ownership: sc_watches_t owns its watches (and their copies of names). Model refs are borrowed
 * only during calls. Thread-safety: one thread. Errors: HVS_ENOMEM, drift.h's, Redis's.
 */
#ifndef SC_WATCH_H
#define SC_WATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hvs/err.h"
#include "hvs/model_registry.h"
#include "hvs/redis.h"
#include "hvs/time.h"

typedef struct sc_watch_conf {
    double psi_limit;
    hvs_ms_t window_ms;
    uint32_t min_count;
    int const_rows, const_hours;
    double const_max_share;
} sc_watch_conf_t;

void sc_watch_conf_default(sc_watch_conf_t *c);

#define SC_FINDING_FEATURES 5

typedef struct sc_finding {
    const char *ident; /* the watch's (valid until the next call) */
    int32_t partition;
    hvs_ms_t hour; /* event hour it was found at */
    bool constant;
    int n;
    const char *feature[SC_FINDING_FEATURES];
    double value[SC_FINDING_FEATURES]; /* PSI, or the constant value */
    double worst;                      /* the largest PSI (drift) */
    size_t rows;                       /* rows in the window, or of the constant run */
    hvs_ms_t since;                    /* constant: the run's first hour */
} sc_finding_t;

typedef struct sc_watches sc_watches_t;

sc_watches_t *sc_watches_new(const sc_watch_conf_t *c);
void sc_watches_destroy(sc_watches_t *w);

/* Count one row (the model's columns, in its order) of version `ref` at event `hour` on
 * partition p. Findings due go into out[0..2); returns how many (0, 1 or 2), or < 0. */
int sc_watches_add(sc_watches_t *w, int32_t p, const hvs_model_ref_t *ref, hvs_ms_t hour,
                   const double *row, sc_finding_t out[2], hvs_err_t *err);

void sc_watches_drop_partition(sc_watches_t *w, int32_t p);

/* The serving version of a name, acquired (the loader releases it), or NULL. */
typedef hvs_model_ref_t *(*sc_watch_lookup_fn)(void *opaque, const char *name);

/* Load partition p's watches from Redis; versions are looked up by name and kept only while
 * the stored ident still serves. */
int sc_watches_load_partition(sc_watches_t *w, hvs_redis_t *r, hvs_redis_batch_t *scratch,
                              int32_t p, sc_watch_lookup_fn lookup, void *opaque, hvs_err_t *err);

/* Append the commands that save what changed to `batch`. */
int sc_watches_save(sc_watches_t *w, hvs_redis_batch_t *batch, hvs_err_t *err);

#endif
