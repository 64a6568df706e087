/*
 * refresh.h - the refresh task (docs/design.md section 8): per-horizon correction coefficients for
 * serve-and-refresh, fitted on a forecast run's backtest, i.e. on out-of-sample day-ahead
 * predictions of the forecast model — the errors a refresher will see.
 *
 * Rows: at the end of hour H (a refresh instant) of a building, inputs err_lag_1..3 = actual -
 * baseline of hours H, H-1, H-2 (per heated m2, as the forecast's target; a missing hour is NaN,
 * contributing nothing), horizon_h = h in 1..3; target = the error of hour H + h. The baseline
 * is what the refresher corrects: the newest hourly issue — each lag hour as the issue at its
 * start forecast it (horizon 1), the target as the issue at the instant forecast it (horizon
 * h) — from the forecast run's out-of-sample predictions at horizons 1-3 of every test hour
 * (tr_result_t near_*), so the backtest's metrics describe what the refresher does. A run
 * without them (kept only the day-ahead rows) gives the day-ahead errors instead (in
 * test_fc_quality the served coefficients of either correct the stream alike: 43.7 / 43.8 %).
 * Model: "hvs-linear" (model.h) over the four columns, selector horizon_h: one row of
 * coefficients per horizon (intercept, 0 for horizon_h itself, one per lag), ridge least
 * squares; the refresher adds the predicted error to the baseline.
 * Backtest: fitted on the forecast's folds but the last and scored on the last (with one fold:
 * its first half, then its second); metrics = WAPE/MAE/RMSE (kWh) of baseline + correction over
 * the hours 1-3 ahead, "naive" = the baseline uncorrected, bucket_wape[0..2] = horizons 1, 2, 3.
 * Gate: REJECTED unless the correction beats the uncorrected baseline; then as forecast's
 * (champion by min_improvement, auto_approve).
 *
 * Ownership: as tr_train's (tr_result_fini). Thread-safety: pure function of its inputs.
 * Errors: HVS_ESTATE when the forecast kept no backtest rows (keep_eval) or too few, HVS_ENOMEM,
 * HVS_EMODEL.
 */
#ifndef TR_REFRESH_H
#define TR_REFRESH_H

#include "train.h"

#define TR_REFRESH_HORIZONS 3

int tr_refresh_train(const tr_result_t *forecast, const char *name, const tr_config_t *c,
                     hvs_model_ref_t *champion, tr_result_t *out, hvs_err_t *err);

#endif
