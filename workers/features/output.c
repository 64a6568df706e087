#include "output.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hvs/featstore.h"

enum { F_BUILDING, F_APARTMENT, F_TARGET_HOUR, F_AS_OF, F_VERSION, F_NAMES, F_VALUES, F_TARGET,
       F_FLAGS, F_COUNT };
static const char *const field_names[F_COUNT] = {
    "building_id", "apartment_id", "target_hour", "as_of", "feature_set_version", "names",
    "values", "target", "quality_flags"};

struct fx_output {
    hvs_encoder_t *enc;
    int idx[F_COUNT];
};

int fx_output_new(hvs_serde_t *s, const char *topic, fx_output_t **out, hvs_err_t *err) {
    fx_output_t *o = calloc(1, sizeof *o);
    if (!o)
        return hvs_err_set(err, HVS_ENOMEM, "oom", "feature output");
    avro_schema_t sc = hvs_serde_schema(s, HVS_SCHEMA_FEATURE_VECTOR);
    /* encode sets every field (no defaults applied): a field it does not know would be 0 */
    if (avro_schema_record_size(sc) != F_COUNT) {
        free(o);
        return hvs_err_set(err, HVS_ESERDE, "bad_schema", "FeatureVector has %zu fields, output.c sets %d",
                           avro_schema_record_size(sc), F_COUNT);
    }
    for (int i = 0; i < F_COUNT; i++)
        if ((o->idx[i] = avro_schema_record_field_get_index(sc, field_names[i])) < 0) {
            free(o);
            return hvs_err_set(err, HVS_ESERDE, "bad_schema", "FeatureVector lacks %s", field_names[i]);
        }
    int rc = hvs_encoder_new(s, HVS_SCHEMA_FEATURE_VECTOR, topic, &o->enc, err);
    if (rc) {
        free(o);
        return rc;
    }
    *out = o;
    return 0;
}

void fx_output_free(fx_output_t *o) {
    if (!o)
        return;
    hvs_encoder_destroy(o->enc);
    free(o);
}

int fx_output_encode(fx_output_t *o, const fx_vector_t *v, const void **buf, size_t *len,
                     hvs_err_t *err) {
    avro_value_t *r = hvs_encoder_value_bare(o->enc);
    avro_value_t f, b, item;
    bool bld = strcmp(v->entity, HVS_FS_BUILDING) == 0;
    int bad = avro_value_get_by_index(r, (size_t)o->idx[F_BUILDING], &f, NULL) ||
              avro_value_set_string(&f, v->building);
    bad = bad || avro_value_get_by_index(r, (size_t)o->idx[F_APARTMENT], &f, NULL) ||
          (bld ? avro_value_set_branch(&f, 0, &b) || avro_value_set_null(&b)
               : avro_value_set_branch(&f, 1, &b) || avro_value_set_string(&b, v->entity));
    bad = bad || avro_value_get_by_index(r, (size_t)o->idx[F_TARGET_HOUR], &f, NULL) ||
          avro_value_set_long(&f, v->hour);
    bad = bad || avro_value_get_by_index(r, (size_t)o->idx[F_AS_OF], &f, NULL) ||
          avro_value_set_long(&f, v->as_of);
    bad = bad || avro_value_get_by_index(r, (size_t)o->idx[F_VERSION], &f, NULL) ||
          avro_value_set_string(&f, hvs_features_version());
    const char *const *names = hvs_features_names();
    bad = bad || avro_value_get_by_index(r, (size_t)o->idx[F_NAMES], &f, NULL);
    for (int i = 0; i < HVS_FEATURES_COUNT && !bad; i++)
        bad = avro_value_append(&f, &item, NULL) || avro_value_set_string(&item, names[i]);
    bad = bad || avro_value_get_by_index(r, (size_t)o->idx[F_VALUES], &f, NULL);
    for (int i = 0; i < HVS_FEATURES_COUNT && !bad; i++)
        bad = avro_value_append(&f, &item, NULL) || avro_value_set_double(&item, v->x[i]);
    bad = bad || avro_value_get_by_index(r, (size_t)o->idx[F_TARGET], &f, NULL) ||
          (isfinite(v->target) ? avro_value_set_branch(&f, 1, &b) || avro_value_set_double(&b, v->target)
                               : avro_value_set_branch(&f, 0, &b) || avro_value_set_null(&b));
    bad = bad || avro_value_get_by_index(r, (size_t)o->idx[F_FLAGS], &f, NULL);
    for (int i = 0; i < HVS_FEAT_FLAG_COUNT && !bad; i++)
        if (v->flags & (1u << i))
            bad = avro_value_append(&f, &item, NULL) ||
                  avro_value_set_string(&item, hvs_features_flag_name(i));
    if (bad)
        return hvs_err_set(err, HVS_ESERDE, "avro_encode", "FeatureVector %s/%s: %s", v->building,
                           v->entity, avro_strerror());
    return hvs_encoder_encode(o->enc, buf, len, err);
}
