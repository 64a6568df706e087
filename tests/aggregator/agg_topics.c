#include "agg_topics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hvs_test.h"

json_t *agg_test_tail(const char *env, const char *topic, const char *extra_args) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s %s tail %s --from-beginning --max 100000000 %s 2>/dev/null", env,
             HVS_TEST_HVSCTL, topic, extra_args ? extra_args : "");
    char *out = NULL;
    size_t len = 0;
    int rc = hvs_test_run(cmd, NULL, 0, &out, &len);
    if (rc != 0) {
        fprintf(stderr, "agg_test_tail %s: exit %d\n", topic, rc);
        free(out);
        return NULL;
    }
    json_t *arr = json_array();
    char *line = out;
    while (line && *line) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = 0;
        json_error_t e;
        json_t *j = json_loads(line, JSON_ALLOW_NUL, &e);
        if (j)
            json_array_append_new(arr, j);
        else if (*line)
            fprintf(stderr, "agg_test_tail %s: not JSON: %.200s\n", topic, line);
        line = nl ? nl + 1 : NULL;
    }
    free(out);
    return arr;
}

void agg_test_final(json_t *final, const json_t *msgs) {
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m) {
        json_t *v = json_object_get(m, "value");
        if (!json_is_object(v))
            continue;
        const char *apt = json_string_value(json_object_get(v, "apartment_id"));
        char key[600];
        snprintf(key, sizeof key, "%s/%s/%lld/%lld",
                 json_string_value(json_object_get(v, "building_id")), apt ? apt : "-",
                 (long long)json_integer_value(json_object_get(v, "window_size_ms")),
                 (long long)json_integer_value(json_object_get(v, "window_start")));
        json_t *old = json_object_get(final, key);
        if (!old || json_integer_value(json_object_get(old, "revision")) <=
                        json_integer_value(json_object_get(v, "revision")))
            json_object_set(final, key, v);
    }
}

json_t *agg_test_comparable(const json_t *a) {
    json_t *c = json_deep_copy(a);
    json_object_del(c, "revision");
    json_object_del(c, "emitted_at");
    json_t *flags = json_object_get(c, "flags"), *kept = json_array(), *f;
    size_t i;
    json_array_foreach(flags, i, f) {
        if (!json_is_string(f) || strcmp(json_string_value(f), "late_data") != 0)
            json_array_append(kept, f);
    }
    json_object_set_new(c, "flags", kept);
    return c;
}
