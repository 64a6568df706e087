/*
 * train.h - one training run of one model: rows from the history (dataset.h), the leak check,
 * a rolling-origin backtest on held-out time, baselines, the final fit, the physics stress test,
 * the training profile, and the gate that decides the version's status.
 *
 * Backtest: `folds` folds of `fold_days` days at the end of the window, oldest first; fold k
 * trains on every target hour before its first test day (its own last 10 % of hours drive early
 * stopping) and is scored on its test days. forecast is scored day-ahead (as of 12:00 UTC the
 * day before, every hour of the day) and per horizon bucket (1-6, 7-24, 25-48, 49-72 h);
 * anomaly-residual on its horizon-0 rows. Never shuffled. Metrics (pooled over the folds, kWh):
 * WAPE = sum|y - yhat| / sum y, MAPE over hours above 10 % of the mean, RMSE, MAE.
 * Each fold's own dates, rows and WAPE (and seasonal naive's) are logged (one info line) and
 * kept in the result (folds: the ModelVersion's `folds`).
 * Baselines on the same rows: seasonal naive (the hour a week before) and the champion (the
 * version serving the name now, when there is one).
 * Anomaly tasks, where labels exist (labels.h): each held-out day the scope's apartment-days
 * are ranked — anomaly-residual by |sum(actual - expected)| / (sum expected + 1 kWh),
 * anomaly-classifier by its mean fault probability — and the top k (the daily alert budget) are
 * checked: precision@k = faults among the labelled of the top k, recall@k = faults in the top k
 * / labelled faults; the chance baseline is the share of faults among labelled days.
 * anomaly-classifier (binary:logistic, no monotone constraints) trains only on labelled days,
 * once there are min_labels fault days (and as many false alarms from feedback) before the
 * first held-out day; it is ranked on every apartment-day of the held-out folds, as it would
 * rank them serving (the labels decide only what counts); its gate is precision@k: the lower
 * bound of its one-sided 90 % Wilson interval (over the labelled days in the top k) must beat
 * chance — 1 fault in 2 ranked days is not evidence, 6 in 10 against a chance of 0.2 is — and
 * the point estimate the champion's by min_improvement for auto-approval.
 * Final model: every row of the window (last 10 % of hours for early stopping).
 * Stress test (seed 001's sunny winter day): for sampled rows, outdoor temperature from -20 to
 * 25 degC at the row's irradiance (hdh and the interactions moved with it) — predictions must
 * never rise with temperature; violations are counted (the constraints make them 0).
 * Constraints (forecast, anomaly-residual; XGBoost monotone constraints) only on the target
 * hour's own weather: temperature non-increasing, heating degree hours non-decreasing,
 * irradiance non-increasing (more sun, less heat). The interactions t x hour and t x radiation
 * have no sign of their own (below 0 degC more sun makes t x radiation more negative, so
 * constraining it would mean "more sun -> more heat" in frost); free, a tree could split on them
 * and break the sweep, so they are withheld from the fit (given as missing) and trees build the
 * interactions from the constrained features. The past's weather (lags, 24 h means) is free:
 * constrained, it cost a quarter of the forecaster's held-out accuracy (train.c).
 * Gate: REJECTED when the leak check fails, the model does not beat seasonal naive, or WAPE is
 * above max_wape; APPROVED when auto_approve and it beats the champion by min_improvement (or
 * there is none); else PENDING_APPROVAL. The reason says which.
 *
 * Ownership: the result owns its model, rows of the profile and strings (tr_result_fini).
 * Thread-safety: reads the history: run it on the thread that owns it. Errors: HVS_ENOMEM,
 * HVS_EMODEL; a run that cannot train (too few rows) returns HVS_ESTATE with the reason.
 */
#ifndef TR_TRAIN_H
#define TR_TRAIN_H

#include "dataset.h"
#include "hvs/model.h"
#include "hvs/model_registry.h"

typedef struct tr_config {
    int folds, fold_days; /* 3 x 14 days */
    int min_train_days;   /* a fold needs this much before its test days */
    const int *horizons;  /* forecast horizons drawn from */
    size_t nhorizons;
    int per_hour;    /* horizons drawn per target hour */
    size_t max_rows; /* rows beyond are thinned (every k-th) */
    hvs_train_params_t xgb;
    double max_wape;        /* gate */
    double min_improvement; /* relative WAPE gain over the champion for auto-approval */
    bool auto_approve;
    bool monotone; /* physics constraints (off only to prove they matter) */
    hvs_ms_t weather_wait;
    size_t leak_sample;  /* rows the leak check recomputes */
    tr_extra_fn extra;   /* tests: an extra column */
    bool keep_eval;      /* keep the backtest's scored rows in the result */
    bool keep_eval_x;    /* and their feature columns (eval_x; tests) */
    tr_labels_t *labels; /* fault days: anomaly tasks' precision@k / recall@k, the
                                    classifier's targets (NULL: none) */
    int top_k;           /* the daily alert budget ranked (precision@k) */
    size_t min_labels;   /* classifier: labelled fault days (and false alarms) needed */

    bool weather_standin; /* observed weather stands in for missing forecasts (dataset.h) */
} tr_config_t;

#define TR_BUCKETS 4
#define TR_MAX_FOLDS 12 /* HVS_TRAIN_FOLDS' bound */

typedef struct tr_result {
    char name[160];
    tr_task_t task;
    hvs_model_status_t status;
    char reason[300];
    hvs_model_metrics_t metrics, naive, champion;
    bool has_champion;
    double bucket_wape[TR_BUCKETS];
    /* each backtest fold (oldest first): its training and test ranges, rows scored and WAPE
     * (NaN for the classifier); logged one info line each and kept in the ModelVersion */
    hvs_model_fold_t folds[TR_MAX_FOLDS];
    size_t nfolds;
    /* forecast: each bucket's 80 % split-conformal interval from the backtest's out-of-sample
     * rows: q10, q90 of (y - p) / (max(p, 0) + floor) and the floor (target units; NaN: too few
     * rows). Serving: [p + q10 (max(p,0) + floor), p + q90 (max(p,0) + floor)], x the area for
     * kWh; written to params interval_h1_6 ... interval_h49_72 as "<q10> <q90> <floor>". */
    double interval[TR_BUCKETS][3];
    int monotone_violations, stress_rows;
    size_t rows, eval_rows;
    size_t standin_rows; /* rows (of `rows`) whose weather an observation stands in for: params
                            weather_standin_rows, weather_standin_share (forecast) */
    hvs_ms_t train_start, train_end;
    double seconds;
    hvs_model_t *model;
    const char *const *features; /* the task's (static) */
    size_t nfeatures;
    /* profile: per feature quantiles at tr_profile_p; joint temperature x irradiance counts */
    double *quantiles; /* nfeatures x TR_NQ */
    double *missing;   /* nfeatures */
    int64_t joint[11 * 10];
    /* keep_eval: the backtest's scored rows, pooled over the folds */
    size_t eval_ncols;
    float *eval_x, *eval_y, *eval_pred, *eval_naive, *eval_scale;
    hvs_ms_t *eval_hour;
    int32_t *eval_group, *eval_series, *eval_fold;
    /* keep_eval (forecast): the backtest's out-of-sample predictions at horizons 1-3 of every
     * target hour of the test days (as_of = the target hour's start - (h - 1) h: what the
     * refresher corrects, the newest hourly baseline); the refresh task's rows */
    size_t near_n;
    float *near_y, *near_pred, *near_scale;
    hvs_ms_t *near_hour;
    int32_t *near_group, *near_fold, *near_h;
    /* anomaly tasks with labels: evaluated apartment-days, labelled ones, faults among them */
    size_t label_days, labelled_days, fault_days;
    size_t ranked_labelled, ranked_faults; /* labelled days in the daily top k; faults of them */
    char baseline[192]; /* refresh: the forecast version whose errors it corrects */
} tr_result_t;

/* The lower bound of the Wilson score interval of k successes in n at normal quantile z (1.2816:
 * one-sided 90 %); NaN when n is 0. */
double tr_wilson_lower(size_t k, size_t n, double z);

/* The classifier's gate (above): out->status and out->reason from its backtest's precision@k,
 * chance, ranked labelled days and champion in `out`. */
void tr_gate_classifier(const tr_config_t *c, tr_result_t *out);

#define TR_NQ 7
extern const double tr_profile_p[TR_NQ];
extern const double tr_temp_edges[12], tr_irr_edges[11];

/* Train name (task, over the given buildings: NULL = all) on target hours in [from, to). */
int tr_train(const tr_history_t *h, tr_task_t task, const char *name, const char *const *buildings,
             size_t nbuildings, hvs_ms_t from, hvs_ms_t to, tr_info_fn info, void *opaque,
             const tr_config_t *conf, hvs_model_ref_t *champion, tr_result_t *out, hvs_err_t *err);
void tr_result_fini(tr_result_t *r);

/* The ModelVersion record of a result: rec points into the struct (and its malloc'd model
 * bytes); free with tr_record_fini. */
#define TR_PARAMS 32
typedef struct tr_record {
    hvs_model_record_t rec;
    hvs_feature_profile_t profile[HVS_FEATURES_COUNT];
    unsigned char *z;
    char values[TR_PARAMS][200];
    const char *argv[2 * TR_PARAMS + 1];
} tr_record_t;

int tr_record_build(const tr_result_t *r, int version, hvs_ms_t now, const tr_config_t *conf,
                    tr_record_t *out, hvs_err_t *err);
void tr_record_fini(tr_record_t *r);

/* The champion's predictions on rows of the task's columns (it reads its own feature list:
 * HVS_ESTATE "feature_mismatch" when it reads one the task has not). */
int tr_predict_champion(hvs_model_ref_t *ch, tr_task_t task, const tr_rows_t *r, float *out,
                        hvs_err_t *err);
/* The training profile of rows into out (quantiles, missing rates, joint histogram); HVS_ENOMEM. */
int tr_profile(const tr_rows_t *r, tr_result_t *out, tr_task_t task);

/* The gate's champion step: when WAPE w does not beat the champion's by min_improvement, the
 * result becomes PENDING_APPROVAL with the reason, and true is returned. */
bool tr_gate_short_of_champion(tr_result_t *out, const tr_config_t *c, double w);

/* precision@k / recall@k of the pooled scored rows (see above); the counts into out. */
void tr_rank_metrics(const tr_history_t *h, tr_task_t task, tr_labels_t *labels, int top_k,
                     const float *y, const float *pred, const hvs_ms_t *hour, const int32_t *group,
                     const int32_t *series, size_t n, tr_result_t *out);

/* Day-ahead WAPE etc. of predictions (kWh = value x scale). */
void tr_metrics(const float *y, const float *pred, const float *scale, size_t n,
                hvs_model_metrics_t *m);

#endif
