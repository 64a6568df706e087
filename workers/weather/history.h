/*
 * history.h - what was last published for one location, per hour: the change detection that
 * keeps an unchanged forecast from being published again (and so keeps its older issued_at).
 *
 * Rule: an hour of a response is published when its (kind, values) differ from the last
 * published record of that (location, hour), or when none was published. An hour whose values
 * are all null carries nothing and is never published (a provider's hole must not shadow an
 * earlier real value downstream); hours before the retention cut are ignored and forgotten, so
 * the history is bounded by the response length plus the retention (past_days + 1 day).
 * Values compare bit for bit.
 *
 * The history also remembers which hours the last good response held, so an unchanged answer
 * (HTTP 304, or a byte-identical body) can be replayed at a later clock time: the hours that
 * went from FORECAST to OBSERVED in between are then published again as OBSERVED.
 *
 * Ownership: wx_history_t is embedded in its location (zero-initialised = empty);
 * wx_history_fini releases it. Thread-safety: none (the poller's thread).
 * Errors: HVS_ENOMEM only; on failure the history is unchanged.
 */
#ifndef WX_HISTORY_H
#define WX_HISTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hvs/time.h"
#include "openmeteo.h"

typedef struct wx_hist_entry {
    int32_t hour; /* hours since the epoch */
    uint8_t kind, present;
    uint8_t in_last; /* part of the last good response */
    double v[WX_NVARS];
} wx_hist_entry_t;

typedef struct wx_history {
    wx_hist_entry_t *e; /* sorted by hour */
    size_t n, cap;
} wx_history_t;

/*
 * Compare `hours` (strictly increasing, as wx_openmeteo_parse gives them) with the history:
 * writes into *changed the indexes (into hours) of the ones to publish, *nchanged of them, in
 * order. `changed` must have room for n entries. Nothing is recorded yet: call wx_history_apply
 * for those actually published.
 */
void wx_history_diff(const wx_history_t *hist, const wx_hour_t *hours, size_t n, hvs_ms_t cut,
                     size_t *changed, size_t *nchanged);

/*
 * Record the response: the hours at `published` (indexes into hours) as last published, every
 * hour of the response as the last response, and forget hours before `cut`.
 */
int wx_history_apply(wx_history_t *hist, const wx_hour_t *hours, size_t n, const size_t *published,
                     size_t npublished, hvs_ms_t cut);

/* The last good response again, kinds classified at `now` (for an unchanged answer). */
int wx_history_last_response(const wx_history_t *hist, hvs_ms_t now, wx_hours_t *out);

size_t wx_history_size(const wx_history_t *hist);
void wx_history_clear(wx_history_t *hist);
void wx_history_fini(wx_history_t *hist);

#endif
