/*
 * state.h - the forecaster's state in Redis, written by the stage runner in one transaction
 * with the offsets it covers (stage.h), so a restart resumes exactly where the forecasts were
 * acknowledged (docs/design.md section 12 has the layout):
 *   hvs:{B}:fc:h:-, hvs:{B}:fc:wx, hvs:{B}:fc:ents, hvs:fc:part:<P>
 *                       the building's hour and weather rings (featstore.h, namespace "fc")
 *   hvs:{B}:fc:st       STRING "3 <agg_time> <wx_time> <issued> <ood_day> <next_run> <since>"
 *                       (ms, the minimum int64 for none; "2 ..." without <since> still loads)
 *   hvs:{B}:fc:acc      HASH slot -> "<hour>" then per point "\n<bucket> <pred> <version>"
 *                       (accuracy points waiting for their actual; ids hold no newline)
 *   hvs:{B}:fc:latest   STRING the latest forecast's JSON (output.h), with a TTL
 *   hvs:fc:acc:<P>      HASH "<name>:<version>" -> "<backtest_wape> <bad_days> <judged>"
 *                       then per bucket and day "\n<bucket> <day> <sum_err> <sum_actual> <n>"
 *
 * Ownership: loaded buildings are adopted by the engine. Thread-safety: the consume loop's.
 * Errors: HVS_ENOMEM; HVS_EREDIS; HVS_ESERDE "bad_state" naming a key that does not parse.
 */
#ifndef FC_STATE_H
#define FC_STATE_H

#include "engine.h"
#include "hvs/redis.h"

/* Queue every change (rings, building fields, accuracy points, the latest forecast with a
 * TTL of latest_ttl_ms, versions' accuracy) into batch; clears the marks. */
int fc_state_save(fc_t *g, hvs_redis_batch_t *batch, int64_t latest_ttl_ms, hvs_err_t *err);
/* Load partition p's buildings and versions' accuracy into the engine; *n gets the buildings. */
int fc_state_load_partition(fc_t *g, hvs_redis_t *r, hvs_redis_batch_t *batch, int32_t p, size_t *n,
                            hvs_err_t *err);

#endif
