/*
 * state.h - the refresher's state in Redis, written by the stage runner in one transaction with
 * the offsets it covers (stage.h), so a restart resumes exactly where the refreshes were
 * acknowledged and makes the same ticks again (docs/design.md section 8 has the layout):
 *   hvs:{B}:rf:ring    STRING RF_RING_HOURS slots by hour modulo RF_RING_HOURS, each an
 *                      rf_hour_t in native byte order (28 bytes: int32 hour since the epoch,
 *                      int32 issued_at minute of the served baseline, float served baseline
 *                      kWh, 4 floats quarter kWh; NaN unknown); written by SETRANGE of the
 *                      slots that changed once the string holds the whole ring
 *   hvs:{B}:rf:base    STRING the kept baselines: "rfb2", their count (uint32), then each an
 *                      rf_baseline_t in native byte order, newest first (120 bytes: issued_at,
 *                      first_hour, version, model, npoints, then RF_BASE_POINTS floats of yhat,
 *                      lo, hi), model = 1 + the index of its name among the NUL-terminated
 *                      names that follow
 *   hvs:{B}:rf:latest  STRING the newest refresh's JSON (output.h), TTL latest_ttl_ms (written
 *                      apart, rf_state_save_latest)
 *   hvs:rf:part:<P>    SET the partition's buildings
 *   hvs:rf:tick:<P>    STRING "1 <last_tick> <wm_agg> <wm_base>" (ms; the minimum int64: none):
 *                      the newest tick of its buildings, the newest quarter's end and
 *                      baseline's issue
 *   hvs:rf:lag:<P>     HASH building -> its last tick, for the buildings whose last tick is not
 *                      the partition's (waiting for their baseline; the others' is)
 *
 * Ownership: loaded buildings belong to the engine. Thread-safety: the consume loop's.
 * Errors: HVS_ENOMEM; HVS_EREDIS; HVS_ESERDE "bad_state" naming a key that does not parse.
 */
#ifndef RF_STATE_H
#define RF_STATE_H

#include "engine.h"
#include "hvs/redis.h"

/* Queue every change (ring slots, baselines, partitions' sets and ticks) into batch (the
 * runner's, executed with the offsets in one transaction); clears the marks. */
int rf_state_save(rf_t *g, hvs_redis_batch_t *batch, hvs_err_t *err);

/* Write the buildings' latest refreshes (b->latest, freed) with their TTL, outside the state's
 * transaction: pipelined in chunks of RF_LATEST_CHUNK, so readers' GETs are served between
 * them (a tick's transaction of NB SETs held every reader for up to 0.3 s in bench_refresher).
 * A latest is a cache of what was acknowledged: written again the same by a replay, lost with
 * the state only until the next tick. Call once the outputs are acknowledged. */
#define RF_LATEST_CHUNK 512
int rf_state_save_latest(rf_t *g, hvs_redis_t *r, hvs_redis_batch_t *batch, int64_t latest_ttl_ms,
                         hvs_err_t *err);
/* Load partition p (its tick and buildings) into the engine; *n gets the buildings. */
int rf_state_load_partition(rf_t *g, hvs_redis_t *r, hvs_redis_batch_t *batch, int32_t p, size_t *n,
                            hvs_err_t *err);

#endif
