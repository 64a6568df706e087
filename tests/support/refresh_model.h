/*
 * refresh_model.h - a refresh/<scope> version as the trainer publishes one (workers/trainer/
 * refresh.h): an hvs-linear model over the refresh task's columns (horizon_h selecting the row,
 * err_lag_1..3), per heated m2, APPROVED, with a training profile (the registry predicts its
 * medians before it serves a version). For the refresher's tests and benchmark.
 *
 * coef: one row per horizon 1, 2, 3: intercept, 0 (horizon_h, the selector), then one
 * coefficient per lag.
 * Ownership: the record bytes are malloc'd (the caller frees); the ref is a new reference
 * (hvs_registry_release). Thread-safety: none needed. Errors: fatal (HVS_REQUIRE).
 */
#ifndef HVS_TEST_REFRESH_MODEL_H
#define HVS_TEST_REFRESH_MODEL_H

#include <stddef.h>

#include "hvs/model_registry.h"
#include "hvs/serde.h"

void hvs_test_refresh_record(hvs_serde_t *s, const char *name, int version, const double coef[3][5],
                             void **rec, size_t *len);
hvs_model_ref_t *hvs_test_refresh_ref(const char *name, int version, const double coef[3][5]);
/* The same record from each horizon's intercept c0[h-1] and lag coefficients cl[h-1][0..2]: its
 * correction of horizon h in kWh is (c0[h-1] + sum_k cl[h-1][k] err_lag_(k+1)) x area. */
void hvs_test_refresh_record_lags(hvs_serde_t *s, const char *name, int version, const double c0[3],
                                  const double cl[3][3], void **rec, size_t *len);

#endif
