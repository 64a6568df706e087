/*
 * agg_sink.h - what aggregator unit tests collect from agg_advance/agg_revise, as a downstream
 * consumer sees it: per window the value (hash without the late_data flag) of the highest
 * revision, the later of equal ones; keyed "building/apartment|-/size/window_start".
 * Ownership: agg_sink_fini releases the entries. Thread-safety: none.
 */
#ifndef AGG_SINK_H
#define AGG_SINK_H

#include <stddef.h>
#include <stdint.h>

#include "aggregate.h"

typedef struct agg_seen {
    char key[128];
    uint64_t hash;
    uint32_t rev;
} agg_seen_t;

typedef struct agg_sink {
    agg_seen_t *v;
    size_t n, cap;
    size_t emitted;      /* calls, including re-publications */
    size_t out_of_order; /* a revision older than one already seen, or one skipped */
} agg_sink_t;

/* An agg_emit_fn: opaque is an agg_sink_t. */
int agg_sink_collect(void *opaque, const agg_building_t *b, const agg_apartment_t *a, int size,
                     const agg_result_t *r, uint32_t rev, hvs_err_t *err);
/* Sort by key (for comparing two sinks entry by entry). */
void agg_sink_sort(agg_sink_t *s);
/* Entries of `got` equal to `ref` (same key and hash); both sorted. */
size_t agg_sink_equal(const agg_sink_t *ref, const agg_sink_t *got, int print_first);
void agg_sink_fini(agg_sink_t *s);

#endif
