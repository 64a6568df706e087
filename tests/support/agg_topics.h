/*
 * agg_topics.h - what the aggregator published, as its consumers see it: the final aggregates
 * (latest revision per window) of messages read back with hvs_test_tail_json (hvs_test.h).
 * Ownership: returned json_t are the caller's (json_decref). Errors: NULL with a message on stderr.
 */
#ifndef AGG_TOPICS_H
#define AGG_TOPICS_H

#include <jansson.h>

/* Latest revision per (building, apartment, window_start, size) of the aggregates in `msgs`
 * (several arrays may be merged by calling it repeatedly on one object): an object keyed
 * "building/apartment|-/size/window_start" whose values are the Aggregate values. */
void agg_test_final(json_t *final, const json_t *msgs);

/* The same aggregate without what legitimately differs between runs (revision, emitted_at,
 * the late_data flag): a new object. */
json_t *agg_test_comparable(const json_t *aggregate);

#endif
