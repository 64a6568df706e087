/*
 * delivery.h - messy delivery: what happens to records between the apartment's tablet and
 * Kafka. The simulation pushes each record at the instant it is measured; the delivery queue
 * hands them back in delivery order, with the imperfections of seed 001/004's real feeds, each
 * switchable (rate 0) and rate-configurable:
 *   duplicates      a record delivered twice, the copy 0..dup_delay_max later (duplicate = 1)
 *   out of order    a record held back 1 min..ooo_delay_max, so later ones overtake it
 *   late batches    a tablet offline for hours: everything it measured in the outage arrives
 *                   in one burst at its end plus an upload delay (some beyond 48 h, the
 *                   pipeline's allowed lateness, so the too_late path is exercised)
 *   gaps            a span whose records are never delivered at all
 *   clock skew      a fraction of apartments whose tablet clock is off by a constant (minutes,
 *                   or a whole hour: a local-time clock stamped as UTC); timestamp is shifted,
 *                   measured_at is not
 *   meter replacement  heating/hot-water counters restart from 0 at the replacement instant
 *                   (every later value of that counter is reduced by its reading at that time)
 *   malformed       a record corrupted as NaN, negative counter, unknown sensor or syntax
 *                   (sim_corruption_t; the writer renders syntax errors)
 * Every episode (gap, late batch, skew, meter replacement) is emitted as a "delivery" label
 * when it starts (late batch: with its known end). Malformed records are counted, not
 * labelled (the dead-letter topic is their ground truth).
 *
 * Deterministic: each apartment has its own random stream from (seed, building, apartment), and
 * equal delivery times are broken by push order, so the same pushes give the same pops.
 *
 * Ownership: the queue copies pushed records; pop copies out. Free with sim_delivery_destroy
 * (NULL-safe). The label sink is borrowed. Thread-safety: one thread.
 * Errors: 0 or HVS_ENOMEM (push), HVS_EINVAL for a building/apartment outside the sizes given
 * at creation.
 */
#ifndef HVS_SIM_DELIVERY_H
#define HVS_SIM_DELIVERY_H

#include <stddef.h>
#include <stdint.h>

#include "hvs/err.h"
#include "record.h"

typedef struct sim_delivery_conf {
    double dup_rate;               /* per record; default 0.005 */
    hvs_ms_t dup_delay_max_ms;     /* default 30 min */
    double ooo_rate;               /* per record; default 0.01 */
    hvs_ms_t ooo_delay_max_ms;     /* default 90 min */
    double late_batch_rate;        /* outages per apartment-day; default 0.01 */
    hvs_ms_t late_outage_max_ms;   /* default 12 h (outage length 1 h..max) */
    hvs_ms_t late_upload_max_ms;   /* default 72 h (upload 0..max after the outage) */
    double gap_rate;               /* gaps per apartment-day; default 0.003 */
    hvs_ms_t gap_max_ms;           /* default 6 h (15 min..max) */
    double skew_fraction;          /* apartments with a skewed clock; default 0.02 */
    hvs_ms_t skew_max_ms;          /* default 10 min (a tenth of skewed clocks: +1 h) */
    double meter_replacement_rate; /* per apartment-year; default 0.05 */
    double malformed_rate;         /* per record; default 0.0005 */
} sim_delivery_conf_t;

void sim_delivery_conf_default(sim_delivery_conf_t *c);
void sim_delivery_conf_clean(sim_delivery_conf_t *c); /* every rate 0 */

typedef struct sim_delivery sim_delivery_t;

/* apartments[b] = number of apartments of building b (copied). */
int sim_delivery_new(const sim_delivery_conf_t *c, uint64_t seed, size_t nbuildings,
                     const uint32_t *apartments, const sim_label_sink_t *labels,
                     sim_delivery_t **out, hvs_err_t *err);
void sim_delivery_destroy(sim_delivery_t *d);

/* A record measured at r->measured_at == now (r->timestamp equal to it on input). */
int sim_delivery_push(sim_delivery_t *d, const sim_record_t *r, hvs_err_t *err);
/* Next record due at or before `now`, in delivery order: 1 and *out filled, or 0 if none. */
int sim_delivery_pop(sim_delivery_t *d, hvs_ms_t now, sim_record_t *out);
/* At the end of a run: everything still queued, in delivery order (1/0 as pop). */
int sim_delivery_drain(sim_delivery_t *d, sim_record_t *out);
/* Records waiting. */
size_t sim_delivery_pending(const sim_delivery_t *d);

typedef struct sim_delivery_stats {
    uint64_t pushed, delivered, duplicated, reordered, late, dropped_in_gaps, skewed, malformed,
        meter_replacements;
} sim_delivery_stats_t;
void sim_delivery_get_stats(const sim_delivery_t *d, sim_delivery_stats_t *out);

#endif
