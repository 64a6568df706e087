/*
 * state.h - the refresher's state in Redis, written by the stage runner in one transaction with
 * the offsets it covers (stage.h), so a restart resumes exactly where the refreshes were
 * acknowledged and makes the same ticks again (docs/design.md section 8 has the layout):
 *   hvs:{B}:rf:ring    STRING RF_RING_HOURS slots by hour modulo RF_RING_HOURS, each an
 *                      rf_hour_t in native byte order (28 bytes: int32 hour since the epoch,
 *                      int32 issued_at minute of the served baseline, float served baseline
 *                      kWh, 4 floats quarter kWh; NaN unknown); written by SETRANGE of the
 *                      slots that changed once the string holds the whole ring
 *   hvs:{B}:rf:base    STRING the kept baselines, newest first, one per line:
 *                      "<issued_at> <first_hour> <version> <model>" then " <y> <lo> <hi>" per
 *                      point (%.9g: floats exactly; nan for none), model last on its line
 *                      before the numbers' line ("<model>\n<numbers>")
 *   hvs:{B}:rf:latest  STRING the newest refresh's JSON (output.h), TTL latest_ttl_ms
 *   hvs:rf:part:<P>    SET the partition's buildings
 *   hvs:rf:tick:<P>    STRING "1 <last_tick> <wm_agg> <wm_base>" (ms; the minimum int64: none)
 *
 * Ownership: loaded buildings belong to the engine. Thread-safety: the consume loop's.
 * Errors: HVS_ENOMEM; HVS_EREDIS; HVS_ESERDE "bad_state" naming a key that does not parse.
 */
#ifndef RF_STATE_H
#define RF_STATE_H

#include "engine.h"
#include "hvs/redis.h"

/* Queue every change (ring slots, baselines, the latest refresh with its TTL, partitions'
 * sets and ticks) into batch; clears the marks and frees the latest JSONs written. */
int rf_state_save(rf_t *g, hvs_redis_batch_t *batch, int64_t latest_ttl_ms, hvs_err_t *err);
/* Load partition p (its tick and buildings) into the engine; *n gets the buildings. */
int rf_state_load_partition(rf_t *g, hvs_redis_t *r, hvs_redis_batch_t *batch, int32_t p, size_t *n,
                            hvs_err_t *err);

#endif
