/* refresh_model.c - refresh/<scope> versions for tests (refresh_model.h). */
#include "refresh_model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hvs/model.h"
#include "hvs/task_rows.h"
#include "hvs_test.h"

void hvs_test_refresh_record(hvs_serde_t *s, const char *name, int version, const double coef[3][5],
                             void **rec, size_t *len) {
    hvs_err_t err = {0};
    static const float sel[3] = {1, 2, 3};
    hvs_model_t *m;
    HVS_REQUIRE(hvs_model_linear_new(4, 0, 3, sel, &coef[0][0], &m, &err) == 0, "linear: %s",
                err.msg);
    unsigned char *bytes, *z;
    size_t blen, zlen;
    HVS_REQUIRE(hvs_model_save(m, &bytes, &blen, &err) == 0 &&
                    hvs_zlib_compress(bytes, blen, &z, &zlen, &err) == 0,
                "save: %s", err.msg);
    size_t ncols;
    const char *const *cols = hvs_taskrow_columns(HVS_TASK_REFRESH, &ncols);
    static const double qs[4][3] = {
        {1, 2, 3}, {-0.01, 0, 0.01}, {-0.01, 0, 0.01}, {-0.01, 0, 0.01}};
    static const double probs[3] = {0.1, 0.5, 0.9};
    hvs_feature_profile_t prof[4];
    for (int i = 0; i < 4; i++)
        prof[i] = (hvs_feature_profile_t){cols[i], qs[i], probs, 3, 0};
    const char *params[] = {"target_scale", hvs_taskrow_scale_name(HVS_TARGET_PER_HEATED_M2), NULL};
    hvs_model_record_t r = {.name = name,
                            .version = version,
                            .status = HVS_MODEL_APPROVED,
                            .features = cols,
                            .nfeatures = ncols,
                            .params = params,
                            .profile = prof,
                            .nprofile = 4,
                            .model_format = HVS_MODEL_FORMAT_LINEAR,
                            .model = z,
                            .model_len = zlen,
                            .decided_at = HVS_MS_NONE};
    r.metrics.wape = NAN;
    hvs_encoder_t *enc;
    const void *buf;
    HVS_REQUIRE(hvs_encoder_new(s, HVS_SCHEMA_MODEL_VERSION, NULL, &enc, &err) == 0 &&
                    hvs_registry_encode(s, enc, &r, &buf, len, &err) == 0,
                "refresh record: %s", err.msg);
    HVS_REQUIRE((*rec = malloc(*len)), "oom");
    memcpy(*rec, buf, *len);
    hvs_encoder_destroy(enc);
    hvs_model_destroy(m);
    free(bytes);
    free(z);
}

void hvs_test_refresh_record_lags(hvs_serde_t *s, const char *name, int version, const double c0[3],
                                  const double cl[3][3], void **rec, size_t *len) {
    double coef[3][5];
    for (int h = 0; h < 3; h++) {
        coef[h][0] = c0[h];
        coef[h][1] = 0; /* horizon_h: the selector */
        for (int k = 0; k < 3; k++)
            coef[h][2 + k] = cl[h][k];
    }
    hvs_test_refresh_record(s, name, version, (const double(*)[5])coef, rec, len);
}

hvs_model_ref_t *hvs_test_refresh_ref(const char *name, int version, const double coef[3][5]) {
    hvs_err_t err = {0};
    hvs_serde_t *s;
    void *rec;
    size_t len;
    hvs_model_ref_t *ref;
    HVS_REQUIRE(hvs_serde_new(NULL, &s, &err) == 0, "serde: %s", err.msg);
    hvs_test_refresh_record(s, name, version, coef, &rec, &len);
    HVS_REQUIRE(hvs_registry_load_record(s, rec, len, &ref, &err) == 0, "%s serves: %s", name,
                err.msg);
    free(rec);
    hvs_serde_destroy(s);
    return ref;
}
