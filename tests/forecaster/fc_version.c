/*
 * fc_version.c - a small forecast version for the forecaster's tests (fc_version.h).
 */
#include "fc_version.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hvs_test.h"
#include "train.h"

void fc_version_make(const tr_history_t *h, const fc_version_spec_t *s, hvs_serde_t *serde,
                     void **rec, size_t *len, hvs_model_ref_t **ref) {
    static const int horizons[] = {1, 3, 6, 12, 18, 24, 30, 36, 48, 60, 72};
    tr_config_t c = {.folds = 1,
                     .fold_days = 5,
                     .min_train_days = 15,
                     .horizons = horizons,
                     .nhorizons = sizeof horizons / sizeof *horizons,
                     .per_hour = 3,
                     .max_rows = 100000,
                     .auto_approve = true,
                     .monotone = true,
                     .weather_wait = 2 * HVS_MS_HOUR,
                     .leak_sample = 20};
    c.xgb = (hvs_train_params_t){
        .rounds = s->rounds, .eta = 0.15, .max_depth = s->depth, .nthread = s->nthread, .seed = 1};
    tr_result_t r;
    hvs_err_t err = {0};
    const char *bs[1] = {s->only};
    HVS_REQUIRE(tr_train(h, TR_FORECAST, s->name, s->only ? bs : NULL, s->only ? 1 : 0, s->from,
                         s->to, s->info, NULL, &c, NULL, &r, &err) == 0,
                "train %s: %s", s->name, err.msg);
    r.status = HVS_MODEL_APPROVED;
    tr_record_t tr;
    hvs_encoder_t *enc;
    const void *buf;
    HVS_REQUIRE(tr_record_build(&r, s->version, s->to, &c, &tr, &err) == 0 &&
                    hvs_encoder_new(serde, HVS_SCHEMA_MODEL_VERSION, NULL, &enc, &err) == 0 &&
                    hvs_registry_encode(serde, enc, &tr.rec, &buf, len, &err) == 0,
                "record of %s: %s", s->name, err.msg);
    HVS_REQUIRE((*rec = malloc(*len)), "oom");
    memcpy(*rec, buf, *len);
    if (ref) {
        HVS_REQUIRE(hvs_registry_load_record(serde, *rec, *len, ref, &err) == 0,
                    "the record serves: %s", err.msg);
        printf("%s: backtest day-ahead WAPE %.4f, buckets %.3f %.3f %.3f %.3f, interval_h1_6 %s\n",
               (*ref)->ident, r.metrics.wape, r.bucket_wape[0], r.bucket_wape[1], r.bucket_wape[2],
               r.bucket_wape[3], hvs_test_str(hvs_model_ref_param(*ref, "interval_h1_6")));
    }
    hvs_encoder_destroy(enc);
    tr_record_fini(&tr);
    tr_result_fini(&r);
}
