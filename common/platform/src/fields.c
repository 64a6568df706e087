/* fields.c - validated reads of decoded Avro fields (fields.h). */
#include "hvs/fields.h"

#include <math.h>
#include <string.h>

#include "hvs/ids.h"

int hvs_fields_get(avro_value_t *rec, int idx, avro_value_t *out) {
    avro_value_t f;
    if (idx < 0 || avro_value_get_by_index(rec, (size_t)idx, &f, NULL))
        return -1;
    if (avro_value_get_type(&f) == AVRO_UNION) {
        if (avro_value_get_current_branch(&f, out))
            return -1;
        return avro_value_get_type(out) == AVRO_NULL ? 0 : 1;
    }
    *out = f;
    return 1;
}

int hvs_fields_id(avro_value_t *rec, int idx, char *dst, const char *name, hvs_err_t *err) {
    avro_value_t f;
    const char *s;
    size_t n;
    int p = hvs_fields_get(rec, idx, &f);
    if (p < 0 || (p == 1 && avro_value_get_string(&f, &s, &n)))
        return hvs_err_set(err, HVS_ESERDE, HVS_R_BAD_SCHEMA, "%s is not a string", name);
    if (p == 0) {
        dst[0] = 0;
        return 0;
    }
    n = n ? n - 1 : 0;                        /* avro-c counts the terminating NUL */
    int rc = hvs_id_check_n(s, n, name, err); /* the one id rule: bad_id / id_too_long */
    if (rc)
        return rc;
    memcpy(dst, s, n);
    dst[n] = 0;
    return 0;
}

int hvs_fields_long(avro_value_t *rec, int idx, int64_t *v, const char *name, hvs_err_t *err) {
    avro_value_t f;
    int32_t i32;
    if (hvs_fields_get(rec, idx, &f) != 1)
        return hvs_err_set(err, HVS_ESERDE, HVS_R_BAD_SCHEMA, "%s missing", name);
    if (avro_value_get_type(&f) == AVRO_INT32 && avro_value_get_int(&f, &i32) == 0) {
        *v = i32;
        return 0;
    }
    if (avro_value_get_long(&f, v))
        return hvs_err_set(err, HVS_ESERDE, HVS_R_BAD_SCHEMA, "%s is not a number", name);
    return 0;
}

int hvs_fields_double_opt(avro_value_t *rec, int idx, double lo, double hi, double *v,
                          const char *name, hvs_err_t *err) {
    avro_value_t f;
    int p = hvs_fields_get(rec, idx, &f);
    if (p < 0)
        return hvs_err_set(err, HVS_ESERDE, HVS_R_BAD_SCHEMA, "%s missing", name);
    if (p == 0) {
        *v = NAN;
        return 0;
    }
    double x;
    if (avro_value_get_double(&f, &x))
        return hvs_err_set(err, HVS_ESERDE, HVS_R_BAD_SCHEMA, "%s is not a double", name);
    return hvs_fields_check_double(true, x, lo, hi, v, name, err);
}

int hvs_fields_check_double(bool has, double x, double lo, double hi, double *v, const char *name,
                            hvs_err_t *err) {
    *v = has ? x : NAN;
    if (!has)
        return 0;
    if (!isfinite(x))
        return hvs_err_set(err, HVS_EINVAL, HVS_R_NON_FINITE, "%s is NaN or infinite", name);
    if (x < lo || x > hi)
        return hvs_err_set(err, HVS_EINVAL, HVS_R_OUT_OF_RANGE, "%s = %g outside [%g, %g]", name, x,
                           lo, hi);
    return 0;
}

int hvs_fields_time(hvs_ms_t t, hvs_ms_t now, hvs_ms_t max_future, const char *name,
                    hvs_err_t *err) {
    if (t < HVS_MS_MIN_EVENT)
        return hvs_err_set(err, HVS_EINVAL, HVS_R_TOO_OLD, "%s is before 2000", name);
    if (t > now + max_future)
        return hvs_err_set(err, HVS_EINVAL, HVS_R_IN_FUTURE, "%s is later than now + %lld ms", name,
                           (long long)max_future);
    return 0;
}
