#include "agg_topics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hvs_test.h"

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
