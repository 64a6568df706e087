#include "vectors.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hvs/featstore.h"
#include "hvs/layouts.h"
#include "hvs/log.h"
#include "hvs/reading.h"
#include "hvs/wire.h"

enum {
    F_BUILDING,
    F_APARTMENT,
    F_TARGET_HOUR,
    F_AS_OF,
    F_VERSION,
    F_NAMES,
    F_VALUES,
    F_TARGET,
    F_FLAGS,
    F_REVISION,
    F_COUNT
};
static const char *const field_names[F_COUNT] = {
    "building_id", "apartment_id", "target_hour", "as_of",         "feature_set_version",
    "names",       "values",       "target",      "quality_flags", "revision"};

struct fx_output {
    hvs_encoder_t *enc;
    int idx[F_COUNT];
    int32_t schema_id;
    hvs_wire_out_t names; /* the names array, encoded once */
    hvs_wire_out_t out;   /* the direct writer's message, reused */
    bool fast;            /* the direct writer matched avro-c byte for byte at start */
};

/* ---- the direct writer: FeatureVector's Avro binary by hand ---------------------------------
 * The names array is the same in every vector (a fifth of the bytes, most of avro-c's time:
 * one allocation per string), so it is encoded once; the rest is written straight into one
 * reused buffer. fx_output_new checks the result against avro-c's encoding of sample vectors and
 * falls back to avro-c if they differ (a schema change the writer does not know). */

static int fast_encode(fx_output_t *o, const fx_vector_t *v, const void **buf, size_t *len,
                       hvs_err_t *err) {
    if (strlen(v->building) > HVS_READING_ID_MAX || strlen(v->entity) > HVS_READING_ID_MAX)
        return hvs_err_set(err, HVS_EINVAL, "bad_id", "id longer than %d bytes",
                           HVS_READING_ID_MAX);
    hvs_wire_out_t *w = &o->out;
    bool building = strcmp(v->entity, HVS_FS_BUILDING) == 0;
    const char *version = hvs_features_version();
    hvs_wire_header(w, o->schema_id);
    hvs_wire_put_string(w, v->building, strlen(v->building));
    hvs_wire_put_opt_string(w, building ? NULL : v->entity);
    hvs_wire_put_long(w, v->hour);
    hvs_wire_put_long(w, v->as_of);
    hvs_wire_put_string(w, version, strlen(version));
    hvs_wire_put_bytes(w, o->names.buf, o->names.len);
    hvs_wire_put_long(w, HVS_FEATURES_COUNT);
    for (int i = 0; i < HVS_FEATURES_COUNT; i++)
        hvs_wire_put_double(w, v->x[i]);
    hvs_wire_put_long(w, 0);
    hvs_wire_put_opt_double(w, isfinite(v->target), v->target);
    hvs_wire_put_bit_names(w, v->flags, HVS_FEAT_FLAG_COUNT, hvs_features_flag_name);
    hvs_wire_put_long(w, v->revision);
    if (w->oom)
        return hvs_err_set(err, HVS_ENOMEM, "oom", "FeatureVector buffer");
    *buf = w->buf;
    *len = w->len;
    return 0;
}

static int generic_encode(fx_output_t *o, const fx_vector_t *v, const void **buf, size_t *len,
                          hvs_err_t *err);

/* Both writers on sample vectors: the direct one is used only if they agree to the byte. */
static bool fast_matches(fx_output_t *o) {
    double x[HVS_FEATURES_COUNT];
    for (int i = 0; i < HVS_FEATURES_COUNT; i++)
        x[i] = i % 7 == 3 ? NAN : i * 1.5 - 20.25;
    fx_vector_t samples[] = {
        {.building = "bldg_check",
         .entity = "apt_1",
         .hour = 1733011200000LL,
         .as_of = 1733014800000LL,
         .x = x,
         .flags = 5,
         .target = 1.25,
         .revision = 9},
        {.building = "b",
         .entity = HVS_FS_BUILDING,
         .hour = -3600000LL,
         .as_of = 0,
         .x = x,
         .flags = 0,
         .target = NAN},
    };
    for (size_t k = 0; k < sizeof samples / sizeof *samples; k++) {
        const void *a, *b;
        size_t la, lb;
        hvs_err_t e = {0};
        if (generic_encode(o, &samples[k], &a, &la, &e))
            return false;
        unsigned char copy[8192];
        if (la > sizeof copy)
            return false;
        memcpy(copy, a, la);
        if (fast_encode(o, &samples[k], &b, &lb, &e) || la != lb || memcmp(copy, b, la) != 0)
            return false;
    }
    return true;
}

int fx_output_new(hvs_serde_t *s, const char *topic, fx_output_t **out, hvs_err_t *err) {
    fx_output_t *o = calloc(1, sizeof *o);
    if (!o)
        return hvs_err_set(err, HVS_ENOMEM, "oom", "feature output");
    avro_schema_t sc = hvs_serde_schema(s, HVS_SCHEMA_FEATURE_VECTOR);
    /* encode sets every field (no defaults applied): a field it does not know would be 0 */
    if (avro_schema_record_size(sc) != F_COUNT) {
        free(o);
        return hvs_err_set(err, HVS_ESERDE, "bad_schema",
                           "FeatureVector has %zu fields, output.c sets %d",
                           avro_schema_record_size(sc), F_COUNT);
    }
    for (int i = 0; i < F_COUNT; i++)
        if ((o->idx[i] = avro_schema_record_field_get_index(sc, field_names[i])) < 0) {
            free(o);
            return hvs_err_set(err, HVS_ESERDE, "bad_schema", "FeatureVector lacks %s",
                               field_names[i]);
        }
    int rc = hvs_encoder_new(s, HVS_SCHEMA_FEATURE_VECTOR, topic, &o->enc, err);
    if (rc) {
        free(o);
        return rc;
    }
    o->schema_id = hvs_encoder_schema_id(o->enc);
    const char *const *names = hvs_features_names();
    hvs_wire_put_long(&o->names, HVS_FEATURES_COUNT);
    for (int i = 0; i < HVS_FEATURES_COUNT; i++)
        hvs_wire_put_string(&o->names, names[i], strlen(names[i]));
    hvs_wire_put_long(&o->names, 0);
    o->fast = !o->names.oom && hvs_serde_has_layout(sc, HVS_LAYOUT_FEATURE_VECTOR) &&
              fast_matches(o);
    if (!o->fast)
        hvs_log_warn("features",
                     "direct FeatureVector writer disagrees with avro-c on this schema: "
                     "using avro-c (slower)");
    *out = o;
    return 0;
}

void fx_output_destroy(fx_output_t *o) {
    if (!o)
        return;
    hvs_encoder_destroy(o->enc);
    hvs_wire_out_free(&o->names);
    hvs_wire_out_free(&o->out);
    free(o);
}

bool fx_output_direct(const fx_output_t *o) { return o->fast; }

int fx_output_encode(fx_output_t *o, const fx_vector_t *v, const void **buf, size_t *len,
                     hvs_err_t *err) {
    return o->fast ? fast_encode(o, v, buf, len, err) : generic_encode(o, v, buf, len, err);
}

static int generic_encode(fx_output_t *o, const fx_vector_t *v, const void **buf, size_t *len,
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
          (isfinite(v->target)
               ? avro_value_set_branch(&f, 1, &b) || avro_value_set_double(&b, v->target)
               : avro_value_set_branch(&f, 0, &b) || avro_value_set_null(&b));
    bad = bad || avro_value_get_by_index(r, (size_t)o->idx[F_FLAGS], &f, NULL);
    for (int i = 0; i < HVS_FEAT_FLAG_COUNT && !bad; i++)
        if (v->flags & (1u << i))
            bad = avro_value_append(&f, &item, NULL) ||
                  avro_value_set_string(&item, hvs_features_flag_name(i));
    bad = bad || avro_value_get_by_index(r, (size_t)o->idx[F_REVISION], &f, NULL) ||
          avro_value_set_int(&f, (int32_t)v->revision);
    if (bad)
        return hvs_err_set(err, HVS_ESERDE, "avro_encode", "FeatureVector %s/%s: %s", v->building,
                           v->entity, avro_strerror());
    return hvs_encoder_encode(o->enc, buf, len, err);
}
