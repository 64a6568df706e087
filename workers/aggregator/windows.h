/*
 * windows.h - what one apartment (or one building) consumed and how warm it was over one window,
 * computed from its samples (samples.h). A pure function of the stored samples: the same
 * samples give the same result bit for bit, whatever order they arrived in — which is what
 * makes replays, crashes and rebalances invisible in the final aggregates.
 *
 * The attribution rule (docs/design.md §4, worked examples in docs/internals/aggregator-attribution.md; S = sampling interval, 15 min; G = silence threshold;
 * Lmax = longest interpolation; Lcap = longest interval examined for liveness):
 *
 *  Liveness. Devices sample every S and send only what changed, so an apartment that sends
 *  nothing has not necessarily stopped. Between two consecutive instants r_j < r_{j+1} at which
 *  the apartment sent anything, it is alive if r_{j+1} - r_j <= G; otherwise it was alive for
 *  [r_j, r_j + S) and the rest is a gap (the device was silent). After its newest instant it is
 *  taken as alive for G (provisionally: a later record revises that).
 *
 *  Counters (heating kWh, hot-water litres). Consecutive values (t_a, v_a), (t_b, v_b) of one
 *  counter: the increase d = v_b - v_a happened in (t_a, t_b].
 *   - If the apartment was alive throughout [t_a, t_b] (and t_b - t_a <= Lcap), the missing
 *     samples in between mean "unchanged": d happened in the last sampling interval,
 *     (max(t_a, t_b - S), t_b] — unless d is more than max_rate could deliver in one interval:
 *     a device that sends on change would have reported it earlier, so reports were lost and
 *     that interval is a gap too.
 *   - Across a real gap, d is spread linearly over (max(t_a, t_b - Lmax), t_b] and the windows
 *     it reaches are INTERPOLATED.
 *   Each window gets d times the share of that interval inside it, so the windows of an
 *   apartment sum exactly to its counter span (energy is conserved). A sample stamped 10:00
 *   covers consumption up to 10:00 and so belongs to the window ending at 10:00.
 *   A drop (v_b < v_a) is a meter replacement when v_b is plausible as consumption since zero
 *   over (t_a, t_b] (then d = v_b, flag meter_replaced), otherwise a counter reset (d = 0, flag
 *   counter_reset). An increase above max_rate x max(t_b - t_a, S) is an implausible jump
 *   (d = 0, flag implausible_jump). Never negative, never giant. The heating energy such a jump
 *   refused is the uncounted_kwh of the window its end falls in (which is then PARTIAL, not
 *   COMPLETE). Heating values are in the meter's unit (heat_unit_kwh kWh each): every
 *   difference, capacity and result is in kWh.
 *   A window's consumption is unknown (null) when the counter has no value before the window's
 *   end, or the apartment went silent after the counter's newest value before the window ended
 *   and nothing has closed that gap yet.
 *
 *  Gauges (room temperature, setpoint): a value holds from its time until the next value of
 *  the same room, over the time the apartment was alive; mean = time-weighted over rooms and
 *  alive time, min/max over the values that held, comfort gap = setpoint - room temperature
 *  over the time both were known.
 *
 *  Rooms (apartment windows only; building windows have none). Every room with a value of any
 *  per-room sensor stamped before we is listed, sorted by name (strcmp: byte order). Per room,
 *  over the same alive stretches as the gauges above: temperature mean, min, max and standard
 *  deviation (time-weighted), setpoint mean and valve mean, each null when no value of it held
 *  while the apartment was alive. readings_seen = distinct times in [ws, we) at which the room
 *  reported anything (any sensor; unlike the apartment's (ws, we], a gauge value at ws belongs
 *  to the window it starts). temp_changes = temperature values stamped in [ws, we) that differ
 *  from the room's previous temperature value, however old (the one carried in included); a
 *  room's very first value has nothing to differ from and is not counted.
 *
 *  Completeness: readings_expected = window / S; readings_seen = instants in (ws, we];
 *  quality SILENT (never alive in the window, nothing interpolated), INTERPOLATED (a gap
 *  interpolated into it), PARTIAL (alive only part of the window, or energy uncounted), else
 *  COMPLETE.
 *
 * Building windows combine apartment results: sums of known consumption, time-weighted gauges
 * over every room, apartments reporting (alive in the window) against apartments known.
 *
 * Ownership: results are plain values. Thread-safety: pure functions.
 */
#ifndef AGG_WINDOWS_H
#define AGG_WINDOWS_H

#include <stdbool.h>
#include <stdint.h>

#include "samples.h"

typedef struct agg_params {
    hvs_ms_t sample_ms;       /* S */
    hvs_ms_t silence_ms;      /* G */
    hvs_ms_t max_interp_ms;   /* Lmax */
    hvs_ms_t max_pair_ms;     /* Lcap */
    double max_rate_per_h[2]; /* plausible maximum: heating kW, hot water l/h (the meter's) */
    double heat_unit_kwh;     /* kWh per unit of the heating counter's values (0 = 1: kWh) */
} agg_params_t;

/* The symbols of the AggregateQuality enum, in schema order. */
typedef enum agg_quality {
    AGG_Q_COMPLETE = 0,
    AGG_Q_PARTIAL,
    AGG_Q_SILENT,
    AGG_Q_INTERPOLATED,
    AGG_Q_UNKNOWN
} agg_quality_t;

enum {
    AGG_F_COUNTER_RESET = 1u,
    AGG_F_METER_REPLACED = 2u,
    AGG_F_IMPLAUSIBLE_JUMP = 4u,
    AGG_F_LATE_DATA = 8u,
};
#define AGG_FLAG_COUNT 4
const char *agg_flag_name(int bit_index); /* "counter_reset", ... */
const char *agg_quality_name(agg_quality_t q);

/* Most rooms one apartment window lists: every room has at least one per-room series. */
#define AGG_MAX_ROOMS AGG_MAX_SERIES

/* One room of an apartment window (sums, like the apartment's gauges; agg_room_* turn them into
 * what is published). */
typedef struct agg_room_result {
    const char *room; /* borrowed from the samples' series: valid while they are unchanged */
    double temp_sum, temp_ms, temp_min, temp_max;
    /* deviations from temp_ref (the first temperature that held), so that a flat room has a
     * standard deviation of exactly 0 rather than the rounding noise of E[x^2] - E[x]^2 */
    double temp_ref, temp_dev_sum, temp_dev_sq;
    double sp_sum, sp_ms;
    double valve_sum, valve_ms;
    int seen;    /* readings_seen */
    int changes; /* temp_changes */
} agg_room_result_t;

typedef struct agg_result {
    hvs_ms_t ws, we;
    bool has_use[2]; /* [AGG_HEAT], [AGG_WATER] known */
    double use[2];   /* consumption in the window */
    bool interpolated;
    double temp_sum, temp_ms; /* integral of room temperature (degC x ms) and its time */
    double temp_min, temp_max;
    double sp_sum, sp_ms;
    double gap_sum, gap_ms;
    hvs_ms_t covered_ms; /* alive time */
    hvs_ms_t span_ms;    /* time the apartment existed in the window */
    int seen, expected;
    unsigned flags;
    agg_quality_t quality;
    double uncounted_kwh; /* heating energy refused as implausible jumps ending in (ws, we] */
    int reporting, known; /* building results only */
    int nrooms;           /* apartment results only; rooms[] sorted by name */
    /* last: the computations clear only what comes before it, and rooms[0, nrooms) */
    agg_room_result_t rooms[AGG_MAX_ROOMS];
} agg_result_t;

/* A room's time-weighted temperature standard deviation (temp_ms > 0). */
double agg_room_temp_std(const agg_room_result_t *r);

/* Was the apartment alive throughout [ta, tb] for counter k rising by d there (liveness rule,
 * and an increase small enough for one sampling interval)? */
bool agg_pair_alive(const agg_samples_t *a, const agg_params_t *p, int k, hvs_ms_t ta, hvs_ms_t tb,
                    double d);
/* The counted increase between two values of counter k, and its flag (0 if none). */
double agg_counter_delta(const agg_params_t *p, int k, hvs_ms_t ta, double va, hvs_ms_t tb,
                         double vb, unsigned *flag);

/* Apartment window [ws, we). exists = false when the apartment had no instant before we. */
bool agg_window_apartment(const agg_samples_t *a, const agg_params_t *p, hvs_ms_t ws, hvs_ms_t we,
                          agg_result_t *out);
/* The same without the rooms (nrooms = 0): for windows only summed into a building's. */
bool agg_window_apartment_totals(const agg_samples_t *a, const agg_params_t *p, hvs_ms_t ws,
                                 hvs_ms_t we, agg_result_t *out);

/* Building: begin, add each apartment's result in a fixed order (apartment id order: sums of
 * doubles depend on order), finish with the number of apartments known. */
void agg_window_building_begin(agg_result_t *b, hvs_ms_t ws, hvs_ms_t we);
void agg_window_building_add(agg_result_t *b, const agg_result_t *apt);
void agg_window_building_finish(agg_result_t *b, int known_apartments);

/* Hash of everything a consumer sees in the result, rooms included (revision detection). */
uint64_t agg_result_hash(const agg_result_t *r);

#endif
