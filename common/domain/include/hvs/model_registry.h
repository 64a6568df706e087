/*
 * model_registry.h - the model registry on the `models` topic (docs/design.md section 6): ModelVersion
 * records, and a client that follows the topic, keeps the active version of each model loaded
 * and validated, and hands it to prediction threads.
 *
 * Records: key "<name>#<version>" (e.g. "forecast/global#3"), so a compacted topic keeps the
 * latest record of every version (a key per model name would let a candidate evict its
 * champion). A version's status changes by a new record of the same version (approve, reject,
 * archive) carrying everything, model bytes included: any record alone is enough to serve.
 * Active version of a name: the highest-numbered APPROVED one that passed validation. Rollback = the active version
 * re-published ARCHIVED, so the previous approved one becomes active again.
 *
 * Model kinds (the record's model_format): "xgboost-ubj" (forecast, anomaly models) and
 * "hvs-linear" (refresh/<scope>: per-horizon correction coefficients, the text of model.h);
 * any other format is refused.
 *
 * Validation before a version serves: the bytes decompress (zlib; its Adler-32 catches
 * corruption), load as a model of the kind model_format names (hvs_model_format of the loaded
 * bytes must agree) with as many columns as the record names features, the feature-set version
 * is ours, the target scale (params.target_scale) is one this build knows (task_rows.h: kwh,
 * per_heated_m2, probability; absent means kwh), every name is a feature of this build's
 * definition (hvs-linear: names outside it, e.g. recent forecast errors its worker computes,
 * are allowed and get feature_index -1), and
 * a probe row (the training profile's medians, NaN where the profile has none) predicts a
 * finite value. A version that fails stays out (logged, counted in hvs_registry_refused) and
 * the previous one keeps serving. The profile is decoded onto the ref (its profile member) but
 * judges nothing: an unusable entry is left out, never a reason to refuse.
 *
 * Ownership: the registry owns its Kafka reader, decoder and models; hvs_registry_acquire gives
 * a reference that must be released (the model stays valid until then, even across a swap).
 * Thread-safety: poll and the listing calls on one thread; acquire/release from any thread.
 * Errors: HVS_EKAFKA when the topic cannot be read; bad records are logged (rate-limited),
 * counted (hvs_registry_bad) and skipped.
 */
#ifndef HVS_MODEL_REGISTRY_H
#define HVS_MODEL_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hvs/err.h"
#include "hvs/kafka.h"
#include "hvs/model.h"
#include "hvs/serde.h"
#include "hvs/task_rows.h"
#include "hvs/time.h"
#include "hvs/topology.h"

/* Symbols of ModelStatus, in schema order. */
typedef enum hvs_model_status {
    HVS_MODEL_PENDING_APPROVAL = 0,
    HVS_MODEL_APPROVED,
    HVS_MODEL_REJECTED,
    HVS_MODEL_ARCHIVED
} hvs_model_status_t;

const char *hvs_model_status_name(hvs_model_status_t s);
int hvs_model_status_parse(const char *s); /* -1 when unknown */

#define HVS_MODEL_MAX_BYTES (64u << 20) /* decompressed model size accepted */

/* What a registry knows of one version (its latest record). */
typedef struct hvs_model_info {
    char *name;
    int version;
    hvs_model_status_t status;
    hvs_ms_t created_at, train_start, train_end;
    char *feature_set_version;
    size_t nfeatures;
    char *decided_by, *decision_reason; /* may be NULL */
    double wape, mape, rmse, mae;       /* NaN unknown */
    bool refused;                       /* failed validation (this record of it) */
    const void *record;                 /* the record's wire bytes (header + Avro) */
    size_t record_len;
} hvs_model_info_t;

/* The training distribution of one feature, as a ModelVersion's profile states it: the values
 * at ascending probabilities (P(x <= quantiles[j]) ~ probabilities[j]) of its non-missing
 * values, and the share missing. */
typedef struct hvs_feature_profile {
    const char *name;
    const double *quantiles, *probabilities;
    size_t nq;
    double missing_rate;
} hvs_feature_profile_t;

#define HVS_MODEL_PROFILE_MAX_QUANTILES 255

typedef struct hvs_model_metrics {
    double mape, wape, rmse, mae, precision_at_k, recall_at_k; /* NaN: not applicable */
    int n_eval;                                                /* < 0: unknown */
} hvs_model_metrics_t;

/* A joint temperature x irradiance histogram (ModelVersion.joint_histogram): ntemp and nirr
 * ascending edges, counts row-major (ntemp - 1) x (nirr - 1); a value falls in bin [e_i, e_i+1),
 * values beyond the outer edges in the outer bins. */
typedef struct hvs_joint_histogram {
    double *temp_edges, *irr_edges;
    size_t ntemp, nirr;
    int64_t *counts;
    int64_t total;
} hvs_joint_histogram_t;

/* The bin count of (t, g) in h and the bin's indices; -1 when h has no counts or a value is NaN. */
int64_t hvs_joint_histogram_count(const hvs_joint_histogram_t *h, double t, double g, size_t *ti,
                                  size_t *gi);

/* Whether the training rows bracket (t, g) for a model that falls with both (heat: colder or
 * darker, more heat): at least min_count rows in the bins neither warmer nor sunnier than the
 * bin of (t, g), and at least min_count in those neither colder nor darker (their counts into
 * *below and *above when not NULL). A point that is not bracketed is extrapolated from one side
 * only. 1 or 0; -1 when h has no counts or a value is NaN. */
int hvs_joint_histogram_bracketed(const hvs_joint_histogram_t *h, double t, double g,
                                  int64_t min_count, int64_t *below, int64_t *above);

/* A loaded, validated version, shared with prediction threads. */
typedef struct hvs_model_ref {
    char *name;
    int version;
    char ident[160]; /* "<name>:<version>" for lineage */
    hvs_model_t *model;
    char **features;    /* the record's names, in column order */
    int *feature_index; /* position of each in hvs_features_names(); -1
                                              * (hvs-linear only): not a feature, the worker
                                              * computes that input */
    size_t nfeatures;
    double *probe;                   /* nfeatures: the profile's medians */
    hvs_target_scale_t target_scale; /* predictions' unit: hvs_taskrow_to_kwh */
    /* nfeatures, column order: the record's training profile of each feature (drift checks).
     * name is features[i] when the record profiles it usably, else NULL with nq 0 and
     * missing_rate 0: no entry, or one that is not a profile (quantiles and probabilities of
     * different lengths, a non-finite number, probabilities not strictly ascending in [0, 1],
     * quantiles decreasing, a missing rate outside [0, 1], more than
     * HVS_MODEL_PROFILE_MAX_QUANTILES). A feature never seen in training (every quantile NaN,
     * as the trainer writes it) keeps its missing rate with nq 0. The arrays are the ref's. */
    hvs_feature_profile_t *profile;
    double *profile_values; /* what profile[].quantiles/probabilities point into */
    /* The record's params map, as pairs (params[2i] key, params[2i+1] value; hvs_model_ref_param
     * looks one up), its backtest metrics (NaN / -1 where absent) and its joint temperature x
     * irradiance histogram (joint.counts NULL when the record has none or an unusable one:
     * edges not ascending, counts not (ntemp-1) x (nirr-1) non-negative). All the ref's. */
    char **params;
    size_t nparams;
    hvs_model_metrics_t metrics;
    hvs_joint_histogram_t joint;
    _Atomic int refs;
} hvs_model_ref_t;

typedef void (*hvs_registry_swap_fn)(void *opaque, const char *name, const hvs_model_ref_t *old,
                                     const hvs_model_ref_t *now);

typedef struct hvs_registry_opts {
    const char *prefix;           /* only names starting with it (NULL: all) */
    bool load_models;             /* false: listing only (hvsctl) */
    hvs_registry_swap_fn on_swap; /* after a new version became active (poll's thread) */
    void *opaque;
} hvs_registry_opts_t;

typedef struct hvs_registry hvs_registry_t;

int hvs_registry_new(const hvs_kafka_conf_t *conf, hvs_serde_t *s, const char *topic,
                     const hvs_registry_opts_t *opts, hvs_registry_t **out, hvs_err_t *err);
void hvs_registry_destroy(hvs_registry_t *r);

/* Apply what arrived, up to timeout_ms until the topic's end was reached once (0: only what
 * is already fetched); validates and swaps. Returns the records applied. */
int hvs_registry_poll(hvs_registry_t *r, int timeout_ms);
bool hvs_registry_caught_up(const hvs_registry_t *r);

/* The active version of a name (a new reference), NULL when none serves. */
hvs_model_ref_t *hvs_registry_acquire(hvs_registry_t *r, const char *name);
void hvs_registry_release(hvs_model_ref_t *ref);
/* The value of a params key of the ref's record (the ref's string), NULL when absent. */
const char *hvs_model_ref_param(const hvs_model_ref_t *r, const char *key);
/* Whether a version's columns are task t's, in order (the rows task_rows.h builds), and its
 * model takes that many: what every consumer of feature rows (scorer, forecaster, hvsctl score)
 * checks before feeding a version rows. */
bool hvs_model_ref_fits(const hvs_model_ref_t *r, hvs_task_t t);

/* Every version known, sorted by name then version (the array is r's, valid until the next
 * poll). */
const hvs_model_info_t *hvs_registry_versions(const hvs_registry_t *r, size_t *n);
/* The version of a name that serves (its number), 0 when none. */
int hvs_registry_active_version(const hvs_registry_t *r, const char *name);
uint64_t hvs_registry_refused(const hvs_registry_t *r);
/* The readiness of a serving worker that follows topology (NULL: none) and models: 1 once both
 * were read to their end, else 0 with why filled (its stage's `ready`). */
int hvs_registry_ready(const hvs_registry_t *r, const hvs_topology_t *t, char *why, size_t whylen);
/* Log a swap as the serving workers do ("<name>: <now> now serves (was <old>)", info). */
void hvs_registry_log_swap(const char *component, const char *name, const hvs_model_ref_t *old,
                           const hvs_model_ref_t *now);
/* Records of `models` skipped so far (tombstones, undecodable, no name or status): each is
 * logged, rate-limited (log.h); the topic is followed without a group, so none is dead-lettered. */
uint64_t hvs_registry_bad(const hvs_registry_t *r);

/*
 * Validate and load one record's model (what the registry does before a swap): 0 and *out, or
 * HVS_ESERDE with the reason (corrupt_model, too_large, feature_mismatch, unknown_target_scale,
 * profile_mismatch: params.profile, absent = heat, is not the active profile's (profile.h),
 * probe_failed).
 */
int hvs_registry_load_record(hvs_serde_t *s, const void *record, size_t len, hvs_model_ref_t **out,
                             hvs_err_t *err);

/* The record key of a version: "<name>#<version>". */
int hvs_registry_key(char *buf, size_t len, const char *name, int version);

/* ---- writing records (trainer, hvsctl) ------------------------------------------------------ */

/* One fold of the backtest (ModelVersion.folds): what it trained on, what it was scored on,
 * its rows and errors. wape x actual_sum is the fold's absolute error, so the folds'
 * actual-weighted WAPEs give the pooled metrics.wape. NaN: null. */
typedef struct hvs_model_fold {
    hvs_ms_t train_start, train_end, test_start, test_end;
    int n_eval;
    double wape, naive_wape, actual_sum; /* actual_sum: sum |actual| of the scored rows */
} hvs_model_fold_t;

typedef struct hvs_model_record {
    const char *name;
    int version;
    hvs_model_status_t status;
    const char *const *features;
    size_t nfeatures;
    hvs_ms_t train_start, train_end, created_at;
    hvs_model_metrics_t metrics;
    const hvs_model_metrics_t *champion; /* NULL: none */
    const hvs_feature_profile_t *profile;
    size_t nprofile;
    const double *temp_edges, *irr_edges; /* joint histogram; NULL: none */
    size_t ntemp, nirr;                   /* edges; counts are (ntemp-1) x (nirr-1) */
    const int64_t *counts;
    const char *const *params; /* key, value, ..., NULL */
    const char *model_format;  /* HVS_MODEL_FORMAT_*; NULL: "xgboost-ubj" */
    const void *model;         /* compressed (zlib) hvs_model_save bytes */
    size_t model_len;
    const char *decided_by, *decision_reason; /* NULL: none */
    hvs_ms_t decided_at;                      /* HVS_MS_NONE: none */
    const hvs_model_fold_t *folds;            /* the backtest's folds, oldest first */
    size_t nfolds;
} hvs_model_record_t;

/* Encode a record (feature_set_version = this build's, model_format rec's, compression zlib,
 * code version HVS_VERSION) with enc (an encoder of HVS_SCHEMA_MODEL_VERSION); *buf is enc's.
 * HVS_EINVAL for a model_format that is neither of model.h's. */
int hvs_registry_encode(hvs_serde_t *s, hvs_encoder_t *enc, const hvs_model_record_t *rec,
                        const void **buf, size_t *len, hvs_err_t *err);
/* The same record with another status and decision (approve, reject, archive): decoded from
 * its wire bytes, changed, re-encoded with enc. */
int hvs_registry_restatus(hvs_serde_t *s, hvs_encoder_t *enc, const void *record, size_t len,
                          hvs_model_status_t status, const char *by, const char *reason,
                          hvs_ms_t at, const void **buf, size_t *outlen, hvs_err_t *err);
/* The decompressed model bytes of a record (UBJ or hvs-linear text; malloc'd; export). */
int hvs_registry_model_bytes(hvs_serde_t *s, const void *record, size_t len, unsigned char **out,
                             size_t *outlen, hvs_err_t *err);

#endif
