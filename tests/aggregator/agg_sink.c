#include "agg_sink.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hvs/vec.h"

int agg_sink_collect(void *opaque, const agg_building_t *b, const agg_apartment_t *a, int size,
                     const agg_result_t *r, uint32_t rev, hvs_err_t *err) {
    (void)err;
    agg_sink_t *s = opaque;
    char key[128];
    snprintf(key, sizeof key, "%s/%s/%d/%lld", b->id, a ? a->id : "-", size, (long long)r->ws);
    agg_result_t copy = *r;
    copy.flags &= ~AGG_F_LATE_DATA;
    uint64_t h = agg_result_hash(&copy);
    s->emitted++;
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i].key, key) == 0) {
            /* Downstream keeps the highest revision, the later one of equals (a re-send after
             * a crash, at-least-once); an older revision after a newer one is counted. */
            if (rev < s->v[i].rev) {
                s->out_of_order++;
                return 0;
            }
            if (rev > s->v[i].rev + 1)
                s->out_of_order++;
            s->v[i].hash = h;
            s->v[i].rev = rev;
            return 0;
        }
    agg_seen_t *nv = hvs_vec_grow(s->v, &s->cap, s->n + 1, sizeof *nv, 1024);
    if (!nv)
        return HVS_ENOMEM;
    s->v = nv;
    if (rev != 0)
        s->out_of_order++;
    snprintf(s->v[s->n].key, sizeof s->v[s->n].key, "%s", key);
    s->v[s->n].hash = h;
    s->v[s->n].rev = rev;
    s->n++;
    return 0;
}

static int cmp_seen(const void *a, const void *b) {
    return strcmp(((const agg_seen_t *)a)->key, ((const agg_seen_t *)b)->key);
}

void agg_sink_sort(agg_sink_t *s) {
    if (s->n)
        qsort(s->v, s->n, sizeof *s->v, cmp_seen);
}

size_t agg_sink_equal(const agg_sink_t *ref, const agg_sink_t *got, int print_first) {
    size_t same = 0, i = 0, j = 0;
    while (i < ref->n && j < got->n) {
        int c = strcmp(ref->v[i].key, got->v[j].key);
        if (c == 0) {
            if (ref->v[i].hash == got->v[j].hash)
                same++;
            else if (print_first-- > 0)
                fprintf(stderr, "  differs: %s\n", ref->v[i].key);
            i++, j++;
        } else if (c < 0) {
            if (print_first-- > 0)
                fprintf(stderr, "  missing: %s\n", ref->v[i].key);
            i++;
        } else {
            if (print_first-- > 0)
                fprintf(stderr, "  extra: %s\n", got->v[j].key);
            j++;
        }
    }
    return same;
}

void agg_sink_fini(agg_sink_t *s) {
    free(s->v);
    memset(s, 0, sizeof *s);
}
