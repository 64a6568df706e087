/*
 * persist.h - the aggregator's state in Redis, written after the batch's outputs are
 * acknowledged and before its offsets are committed; read back when a partition is assigned.
 *
 * Key layout (docs/design.md §5; every building key carries the building as hash tag):
 *   hvs:{B}:agg:meta        HASH  t15, t60: `through` of each window size (epoch ms)
 *   hvs:{B}:agg:apts        SET   apartment ids with stored samples
 *   hvs:{B}:agg:s:<apt>     HASH  field "d" -> the series directory (format 1): 0x01, then per
 *                                  series in creation order (its slot) <code><room length byte>
 *                                  <room> (code: agg_kind_code 'h' 'w' 't' 's' 'v' 'u');
 *                                  field = block start in hours since the epoch (blocks of
 *                                  AGG_PERSIST_BLOCK_MS) -> the block's samples, format 1:
 *                                  0x01, varint start hour, then per instant varint time step
 *                                  (whole seconds flagged), varint value count, per value
 *                                  varint slot + value (a scaled integer m/10^k, k <= 3, when
 *                                  that gives the same double bit for bit, else the 8 raw
 *                                  bytes). Varints are LEB128; persist.c and docs/design.md
 *                                  §5 say it byte by byte.
 *                                  Read too, never written: text hour buckets of before
 *                                  (field = hour start ms, entries "<t>[+]" then per value US
 *                                  <code><room> GS <%.17g>, separated by RS; text starts with
 *                                  a digit, format 1 with 0x01); an apartment loaded from them
 *                                  has its key rewritten whole at the next save.
 *   hvs:{B}:agg:mk          HASH  "<15|60>:<block hour>:<apt or empty>" -> the markers of the
 *                                  windows in that 6-hour block (format 1: 0x01, then per
 *                                  window varint offset in windows, varint revision, 8 bytes
 *                                  of output hash); text markers of before
 *                                  ("<15|60>:<window start>:<apt>" -> "<rev> <hash>") still
 *                                  load, and the building's next save rewrites its hash
 *   hvs:{B}:agg:dq          HASH  "<UTC day start>:<apt>" -> the meter's day account
 *                                  (account.h): "<alerted 0|1>" then " <hour>:<counted kWh>:
 *                                  <uncounted kWh>" per published hour; deleted with the day
 *   hvs:agg:part:<P>        SET   buildings of input partition P (found again on assignment)
 *   hvs:agg:wm              HASH  P -> watermark of partition P at the last persisted batch
 * Every write is idempotent (whole buckets, markers by window): a batch applied twice leaves the
 * same state, so a crash between the Redis write and the offset commit is harmless.
 *
 * Ownership: borrows everything. Thread-safety: none. Errors: HVS_EREDIS / HVS_ENOMEM; a stored
 * value that does not parse is HVS_ESERDE with the key named (state written by something else).
 */
#ifndef AGG_PERSIST_H
#define AGG_PERSIST_H

#include "aggregate.h"
#include "hvs/redis.h"

/* Write every building's pending changes, and the watermarks of the given partitions:
 * agg_persist_prepare then agg_persist_exec. */
int agg_persist_save(hvs_redis_t *r, hvs_redis_batch_t *batch, agg_t *g, const int32_t *partitions,
                     const hvs_ms_t *watermarks, size_t nparts, hvs_err_t *err);
/* The two halves, so the worker can encode the state while the broker acknowledges the
 * batch's outputs, and send it only once they are acknowledged. prepare resets `batch` and
 * takes g's pending changes into it (after it, g has none: if the batch is not executed, the
 * process must not go on with g). */
int agg_persist_prepare(hvs_redis_batch_t *batch, agg_t *g, const int32_t *partitions,
                        const hvs_ms_t *watermarks, size_t nparts, hvs_err_t *err);
int agg_persist_exec(hvs_redis_t *r, hvs_redis_batch_t *batch, hvs_err_t *err);

/* Load the stored state of partition p into g; *wm = its stored watermark (HVS_MS_NONE if none).
 * Buildings already in g are left alone. */
int agg_persist_load(hvs_redis_t *r, hvs_redis_batch_t *batch, agg_t *g, int32_t p, hvs_ms_t *wm,
                     hvs_err_t *err);

/* Samples are stored per apartment in blocks of this many ms (UTC-aligned). */
#define AGG_PERSIST_BLOCK_MS (6 * 3600 * 1000LL)
hvs_ms_t agg_persist_block_of(hvs_ms_t t);

/* Serialise an apartment's block starting at `start` (format 1); returns the length needed
 * (0 = empty block; > cap: nothing usable written). */
size_t agg_persist_bucket(const agg_apartment_t *a, hvs_ms_t start, char *buf, size_t cap);
/* Serialise its series directory (field "d"); returns the length needed. */
size_t agg_persist_series(const agg_apartment_t *a, char *buf, size_t cap);
/* Parse a stored directory into a; load it before the blocks, into an apartment without
 * series. */
int agg_persist_parse_series(agg_apartment_t *a, const char *v, size_t len, hvs_err_t *err);
/* Parse one stored bucket into a: a format-1 block (its directory already parsed) or a text
 * hour bucket written before format 1 (a->stored_text set: the next save rewrites the key). A
 * value that does not parse is HVS_ESERDE "bad_state" naming the apartment; never a crash. */
int agg_persist_parse_bucket(agg_apartment_t *a, const char *v, size_t len, hvs_err_t *err);

#endif
