/*
 * input.h - the refresher's two inputs as plain values, validated (docs/design.md section 11):
 * a building total of aggregates.15m and a BASELINE Forecast of forecasts.baseline, read from
 * decoded Avro values of the current schemas (serde resolves older writers).
 *
 * Reasons: bad_schema (not a record of the schema), bad_id (ids.h's rule; empty), bad_window
 * (an aggregate not of 15 minutes on a quarter hour), non_finite, value_out_of_range (a negative
 * heat, a revision below 0, a forecast point of a horizon outside 1..240 or not on the hour),
 * not_baseline (a REFRESHED forecast on the baseline topic), bad_points (no points, target
 * hours not ascending), timestamp_too_old / timestamp_in_future.
 *
 * Ownership: rf_input_t borrows the serde's schemas; a baseline's arrays are the input's, valid
 * until the next call. Thread-safety: one thread. Errors: 0, HVS_EINVAL / HVS_ESERDE with the
 * reason in err->reason and the field in err->msg.
 */
#ifndef RF_INPUT_H
#define RF_INPUT_H

#include <avro.h>
#include <stdbool.h>

#include "engine.h"
#include "hvs/err.h"
#include "hvs/ids.h"
#include "hvs/serde.h"

#define RF_R_NOT_BASELINE "not_baseline"
#define RF_R_BAD_POINTS "bad_points"
#define RF_MAX_POINTS 240

typedef struct rf_quarter {
    char building[HVS_ID_MAX + 1];
    bool apartment; /* an apartment's row: not the building total (ignored) */
    hvs_ms_t start;
    double kwh; /* NaN: unknown */
} rf_quarter_t;

typedef struct rf_input rf_input_t;

int rf_input_new(hvs_serde_t *s, rf_input_t **out, hvs_err_t *err);
void rf_input_destroy(rf_input_t *in);

int rf_input_quarter(rf_input_t *in, avro_value_t *v, hvs_ms_t now, hvs_ms_t max_future,
                     rf_quarter_t *out, hvs_err_t *err);
/* A baseline: building into `building` (HVS_ID_MAX + 1 bytes), the rest into *out. */
int rf_input_baseline(rf_input_t *in, avro_value_t *v, hvs_ms_t now, hvs_ms_t max_future,
                      char *building, rf_baseline_in_t *out, hvs_err_t *err);

#endif
