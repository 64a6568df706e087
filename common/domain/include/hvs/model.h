/*
 * model.h - the models the pipeline serves, of two kinds behind one hvs_model_t:
 *  - XGBoost (C API, libxgboost 1.7): train on a dense float matrix (NaN = missing) with the
 *    `hist` method, early stopping on a validation set, monotone constraints; predict in
 *    batches; explain rows by TreeSHAP contributions; serialise to UBJ ("xgboost-ubj").
 *  - hvs-linear: per-selector linear coefficients (the trainer's correction model for the
 *    15-minute refresh; the selector column is e.g. the horizon). Built from its coefficient
 *    table, never trained here.
 * Both compress (zlib) for the `models` topic, and back.
 *
 * hvs-linear prediction: the row whose selector value equals the input's selector column
 * (exact float match), else the row with the nearest value (ties: the lower value); a NaN
 * selector predicts NaN. y = b0 + sum_i b_i * x_i, where a NaN x_i contributes 0.
 *
 * hvs-linear bytes (what save writes and load reads; "\n"-terminated lines, the C locale's
 * numbers, tokens separated by spaces; load also takes tabs and CRs):
 *     hvs-linear 1
 *     columns <n>
 *     selector <column index, -1: none>
 *     rows <k>
 *     <selector value> <b0> <b1> ... <bn>        k lines, %.17g so they read back bit-exact
 * load reads it strictly: another version, counts that disagree with the lines, more or fewer
 * numbers on a line, anything after the k rows but one final newline, a token that is not a
 * finite number, n != the caller's ncols, or an invalid table (duplicate selector values, ...)
 * are HVS_ESERDE "corrupt_model" naming what was wrong. Bytes starting "hvs-linear " are read
 * as this text; anything else as XGBoost UBJ or JSON (which start with '{').
 *
 * Ownership: hvs_model_t is created by train/load/linear_new and freed by hvs_model_destroy
 * (NULL-safe); linear_new copies its arrays; hvs_model_linear_coef's pointers are the model's,
 * valid until it is freed; byte buffers returned are malloc'd and the caller's.
 * Thread-safety: hvs_model_predict and hvs_model_contributions may run on several threads at
 * once on the same model (XGBoost >= 1.4 documents every prediction of a tree booster,
 * contributions included, as thread-safe and keeps the C API's output per thread; each
 * contributions call has its own DMatrix; an hvs-linear model is only read); train/load/save/
 * free do not overlap with anything else on that model.
 * Errors: HVS_EMODEL with XGBoost's own message (reason "xgboost"), HVS_EINVAL for bad
 * arguments (an invalid coefficient table: "bad_model"), HVS_ENOMEM; HVS_ESERDE
 * "corrupt_model" for bytes that do not decompress or load.
 */
#ifndef HVS_MODEL_H
#define HVS_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "hvs/err.h"

typedef struct hvs_model hvs_model_t;

#define HVS_MODEL_FORMAT_XGBOOST "xgboost-ubj"
#define HVS_MODEL_FORMAT_LINEAR "hvs-linear"
#define HVS_MODEL_MAX_COLUMNS 4096
#define HVS_MODEL_LINEAR_MAX_ROWS 65536 /* selector values of one hvs-linear model */

typedef struct hvs_train_params {
    const char
        *objective;     /* "reg:squarederror" (default), "reg:absoluteerror", "binary:logistic" */
    int rounds;         /* most boosting rounds; default 400 */
    int early_stopping; /* stop after this many rounds without validation gain; 0 = 30 */
    double eta;         /* default 0.05 */
    int max_depth;      /* default 6 */
    double min_child_weight; /* default 5 */
    double subsample;        /* default 0.8 */
    double colsample;        /* default 0.8 */
    double lambda;           /* L2; default 1 */
    int nthread;             /* default 2 */
    uint64_t seed;
    const int8_t *monotone; /* ncols entries: +1 increasing, -1 decreasing, 0 free; NULL none */
} hvs_train_params_t;

typedef struct hvs_train_report {
    int rounds;          /* rounds kept (best iteration + 1) */
    double valid_metric; /* validation RMSE (or logloss) at the best round */
    double seconds;
} hvs_train_report_t;

/* Train an XGBoost model on x (nrows x ncols, row-major) with labels y and optional weights w (NULL = 1); the
 * validation rows (xv, yv, nv; nv may be 0) drive early stopping. */
int hvs_model_train(const float *x, const float *y, const float *w, size_t nrows, size_t ncols,
                    const float *xv, const float *yv, size_t nv, const hvs_train_params_t *p,
                    hvs_model_t **out, hvs_train_report_t *report, hvs_err_t *err);

/* An hvs-linear model over ncols (1..HVS_MODEL_MAX_COLUMNS) input columns. selector: the column whose value picks the
 * coefficient row, or -1 for a single row (nsel 1; selector_values may then be NULL, read as
 * 0). selector_values: nsel finite, distinct values. coef: nsel x (ncols + 1), row-major, each
 * row the intercept then one coefficient per column (the selector's own is normally 0); all
 * finite. HVS_EINVAL "bad_model" otherwise. */
int hvs_model_linear_new(size_t ncols, int selector, size_t nsel, const float *selector_values,
                         const double *coef, hvs_model_t **out, hvs_err_t *err);
/* The coefficient table of an hvs-linear model, in its rows' order (any out pointer may be
 * NULL); HVS_EINVAL for an XGBoost model. */
int hvs_model_linear_coef(const hvs_model_t *m, int *selector, size_t *nsel,
                          const float **selector_values, const double **coef);

/* Predictions of nrows rows of the model's column count into out (nrows floats). */
int hvs_model_predict(hvs_model_t *m, const float *x, size_t nrows, float *out, hvs_err_t *err);
/* Per-row feature contributions into out (nrows x (ncols + 1) floats, row-major): one per
 * column, then the bias; each row sums to the raw margin (binary:logistic: the log-odds whose
 * logistic is hvs_model_predict's probability; squared error: the prediction itself).
 * XGBoost: exact TreeSHAP (a feature no tree splits on gets 0; NaN is missing), through a
 * DMatrix made per call, so it costs an allocation and a copy of the rows besides the trees.
 * hvs-linear: b_i * x_i of the selected row (0 for a NaN x_i) and the intercept as the bias;
 * a NaN selector gives NaN throughout. */
int hvs_model_contributions(hvs_model_t *m, const float *x, size_t nrows, float *out,
                            hvs_err_t *err);
size_t hvs_model_columns(const hvs_model_t *m);
/* HVS_MODEL_FORMAT_XGBOOST ("xgboost-ubj") or HVS_MODEL_FORMAT_LINEAR ("hvs-linear"). */
const char *hvs_model_format(const hvs_model_t *m);

/* The model's bytes: UBJ for XGBoost (what Python's xgboost.Booster(model_file=...) loads),
 * the text above for hvs-linear. */
int hvs_model_save(hvs_model_t *m, unsigned char **bytes, size_t *len, hvs_err_t *err);
/* Load hvs-linear text, UBJ or XGBoost JSON bytes; ncols = the feature count the caller will
 * feed (checked against the model's). */
int hvs_model_load(const void *bytes, size_t len, size_t ncols, hvs_model_t **out, hvs_err_t *err);
void hvs_model_destroy(hvs_model_t *m);

/* zlib (RFC 1950) both ways; decompress refuses outputs larger than max_out. */
int hvs_zlib_compress(const void *in, size_t len, unsigned char **out, size_t *outlen,
                      hvs_err_t *err);
int hvs_zlib_decompress(const void *in, size_t len, size_t max_out, unsigned char **out,
                        size_t *outlen, hvs_err_t *err);

#endif
