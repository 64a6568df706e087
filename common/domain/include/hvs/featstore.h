/*
 * featstore.h - the feature state of buildings (their entities' hour rings and their weather
 * ring, features.h) in memory and in Redis. The features worker writes it; every worker that
 * computes features later (forecaster, refresher, trainer) reads the same keys, so serving and
 * training see one state.
 *
 * Key layout (docs/design.md section 5; R = HVS_FS_HOURS ring slots, slot = hour / 1 h mod R, the
 * hour stamped in each value, so a slot left from an older hour reads as empty and rewriting a
 * slot is idempotent):
 *   hvs:{B}:fs:h:<entity>   HASH "b<k>" -> block k of the ring: slots [k * 24, (k + 1) * 24), binary
 *                           (hvs_fs_encode_block; entity "-" = the building itself; numbers
 *                           exact); a field "<slot>" -> "<hour> <revision> <use> <water> <room>
 *                           <setpoint> <gap> ..." (text, one slot) is the format before blocks:
 *                           still loaded, and replaced by blocks at the entity's next save
 *   hvs:{B}:fs:wx           HASH "b<k>" -> block k of the weather ring, binary
 *                           (hvs_fs_encode_wx_block: each hour's records, oldest issue first);
 *                           a field "<slot>" -> "<hour>" then per record "|<issued_at> <obs 0|1>
 *                           <temp> <rh> <cloud> <ghi> <wind>" (text, one slot) is the format
 *                           before blocks: still loaded, and the key replaced by blocks at the
 *                           building's next save
 *   hvs:{B}:fs:ents         SET  entity ids with a ring
 *   hvs:fs:part:<P>         SET  buildings of input partition P (found again on assignment)
 *   hvs:fs:epoch:<P>        STRING written with partition P's first state: its absence while
 *                           the consumer group has committed offsets means Redis lost the state
 * "fs" is the namespace of the features worker's state; a worker that keeps its own copy of
 * the same rings (the forecaster: "fc", so its state follows its own offsets) passes its
 * namespace to the _ns forms and every key above has it in place of "fs".
 *
 * Ownership: buildings and entities are owned by their building (hvs_fs_building_destroy frees
 * it all); the store borrows its Redis client. Ids are copied.
 * Thread-safety: none (one consume loop).
 * Errors: HVS_ENOMEM; HVS_EREDIS from Redis; a stored value that does not parse is HVS_ESERDE
 * naming the key (state written by something else); a building id that cannot address a key
 * (ids.h; callers validate ids where they enter, so this is defence in depth) is HVS_EINVAL
 * "bad_id" naming it. hvs_fs_partition leaves out, with a warning, stored ids that fail the
 * id rule (written before it was enforced).
 */
#ifndef HVS_FEATSTORE_H
#define HVS_FEATSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hvs/err.h"
#include "hvs/features.h"
#include "hvs/redis.h"

#define HVS_FS_HOURS 336      /* 14 days: 168 h windows plus revisions and lateness */
#define HVS_FS_BUILDING "-"   /* entity id of the building-level series */
#define HVS_FS_NS "fs"        /* the features worker's key namespace */
#define HVS_FS_BLOCK_HOURS 24 /* slots per stored block of an entity's ring */
#define HVS_FS_BLOCKS (HVS_FS_HOURS / HVS_FS_BLOCK_HOURS)

typedef struct hvs_fs_entity {
    char *id;
    hvs_feat_hour_t hours[HVS_FS_HOURS];
    uint64_t dirty[(HVS_FS_HOURS + 63) / 64]; /* slots changed since the last save */
    bool legacy; /* loaded with fields of one slot each: deleted at the next save */
} hvs_fs_entity_t;

typedef struct hvs_fs_building {
    char *id;
    int32_t partition;
    hvs_feat_wx_hour_t wx[HVS_FS_HOURS];
    uint64_t wx_dirty[(HVS_FS_HOURS + 63) / 64];
    bool wx_legacy; /* weather loaded from fields of one slot each: replaced at the next save */
    hvs_fs_entity_t **ents; /* sorted by id */
    size_t nents, capents;
    bool meta_dirty; /* entity set or partition membership to write */
    char ns[8];      /* key namespace (HVS_FS_NS unless made by an _ns form) */
} hvs_fs_building_t;

hvs_fs_building_t *hvs_fs_building_new(const char *id, int32_t partition);
/* The same in namespace ns (at most 7 bytes, else NULL). */
hvs_fs_building_t *hvs_fs_building_new_ns(const char *id, int32_t partition, const char *ns);
void hvs_fs_building_destroy(hvs_fs_building_t *b);
/* The entity, created (empty ring) when absent if create; NULL if absent or ENOMEM. */
hvs_fs_entity_t *hvs_fs_entity(hvs_fs_building_t *b, const char *id, bool create);

/* Store an hour (its hour field says which). A revision lower than the stored one of the same
 * hour is ignored. Returns 1 changed, 0 unchanged. */
int hvs_fs_put_hour(hvs_fs_entity_t *e, const hvs_feat_hour_t *h);
/* Store a weather record of an hour (hvs_feat_wx_add rules). 1 changed, 0 unchanged. */
int hvs_fs_put_weather(hvs_fs_building_t *b, hvs_ms_t hour, const hvs_feat_wx_t *rec);
/* The weather records of an hour (NULL when the slot holds another hour). */
const hvs_feat_wx_hour_t *hvs_fs_weather(const hvs_fs_building_t *b, hvs_ms_t hour);

/* The history view features.h computes from (borrowed pointers into b and e). */
void hvs_fs_view(const hvs_fs_building_t *b, const hvs_fs_entity_t *e, hvs_ms_t commissioning,
                 hvs_feat_history_t *out);

/* Queue b's changes (dirty slots, entity set, partition membership, the partition's epoch
 * marker) into batch; clears the dirty marks. */
int hvs_fs_save(hvs_redis_batch_t *batch, hvs_fs_building_t *b, hvs_err_t *err);

/* Buildings stored for partition p (*ids malloc'd, each id malloc'd: free with
 * hvs_fs_ids_free), and whether its epoch marker exists. */
int hvs_fs_partition(hvs_redis_t *r, hvs_redis_batch_t *batch, int32_t p, char ***ids, size_t *n,
                     bool *has_epoch, hvs_err_t *err);
void hvs_fs_ids_free(char **ids, size_t n);
int hvs_fs_partition_ns(hvs_redis_t *r, hvs_redis_batch_t *batch, const char *ns, int32_t p,
                        char ***ids, size_t *n, bool *has_epoch, hvs_err_t *err);
/* Load one building's rings (NULL *out when nothing is stored). */
int hvs_fs_load(hvs_redis_t *r, hvs_redis_batch_t *batch, const char *id, int32_t partition,
                hvs_fs_building_t **out, hvs_err_t *err);
int hvs_fs_load_ns(hvs_redis_t *r, hvs_redis_batch_t *batch, const char *ns, const char *id,
                   int32_t partition, hvs_fs_building_t **out, hvs_err_t *err);

/* Block k of a ring (slots [k * HVS_FS_BLOCK_HOURS, ...), the layout atop featstore.c) into buf
 * (nothing past cap; returns the length needed), and back into out[0..HVS_FS_BLOCK_HOURS) (-1 if
 * it does not parse, or an hour does not belong to its slot). */
size_t hvs_fs_encode_block(const hvs_feat_hour_t *ring, size_t block, char *buf, size_t cap);
int hvs_fs_decode_block(const char *v, size_t len, size_t block, hvs_feat_hour_t *out);
/* Block k of a weather ring, the same way (records exact, oldest issue first). */
size_t hvs_fs_encode_wx_block(const hvs_feat_wx_hour_t *ring, size_t block, char *buf, size_t cap);
int hvs_fs_decode_wx_block(const char *v, size_t len, size_t block, hvs_feat_wx_hour_t *out);
/* A ring of nslots slots (any length: the trainer's window) by UTC day, the layout in
 * featstore.c: the ring's hours of day `day` (hvs_fs_day_of) into buf (nothing past cap;
 * returns the length needed, 0 when the ring holds no hour of that day), and back into
 * out[0..24) (hour i of the day; HVS_MS_NONE where none is stored; -1 if it does not parse or
 * names another day). */
int64_t hvs_fs_day_of(hvs_ms_t hour);
size_t hvs_fs_encode_day(const hvs_feat_hour_t *ring, size_t nslots, int64_t day, char *buf,
                         size_t cap);
int hvs_fs_decode_day(const char *v, size_t len, int64_t day, hvs_feat_hour_t *out);
/* The weather of such a ring by UTC day, the same way (the layout in featstore.c); at most
 * HVS_FS_WX_DAY_MAX bytes. */
size_t hvs_fs_encode_wx_day(const hvs_feat_wx_hour_t *ring, size_t nslots, int64_t day, char *buf,
                            size_t cap);
int hvs_fs_decode_wx_day(const char *v, size_t len, int64_t day, hvs_feat_wx_hour_t *out);
#define HVS_FS_WX_DAY_MAX (12 + 24 * (30 + HVS_FEAT_WX_KEEP * (30 + 5 * 9)))
/* Encodings of one slot (for tests, the trainer's history of before day fields, and state of
 * the format before blocks): value into buf, returns the length needed. */
size_t hvs_fs_encode_hour(const hvs_feat_hour_t *h, char *buf, size_t cap);
size_t hvs_fs_encode_wx(const hvs_feat_wx_hour_t *w, char *buf, size_t cap);
int hvs_fs_decode_hour(const char *v, size_t len, hvs_feat_hour_t *out);
int hvs_fs_decode_wx(const char *v, size_t len, hvs_feat_wx_hour_t *out);

#endif
