/*
 * state.h - the scorer's buildings and apartments in memory, by partition, and their Redis
 * state (docs/design.md section 5):
 *
 *   hvs:sc:part:<P>           set: the buildings of partition P with state
 *   hvs:{B}:sc:apts           set: the building's apartments with state
 *   hvs:{B}:sc:a:<apartment>  hash: "b<k>" -> block k of the ring (apartment.h); earlier
 *                             versions' "<slot>" -> the slot's text still load
 *
 * Every write is idempotent (a block's bytes are a function of its slots and the apartment's
 * room names), so a batch replayed onto the saved state rewrites the same values. Only blocks
 * with a slot changed since the last save are written.
 *
 * Ownership: sc_state_t owns its buildings and apartments; sc_building_t / sc_apartment_t
 * pointers stay valid until their partition is dropped or the state destroyed. The ident table
 * is the state's. Thread-safety: none (the stage's thread).
 * Errors: HVS_ENOMEM, HVS_EINVAL (a building id refused by hvs_redis_key), the Redis client's.
 */
#ifndef SC_STATE_H
#define SC_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "apartment.h"
#include "hvs/err.h"
#include "hvs/redis.h"

typedef struct sc_building {
    char *id;
    int32_t partition;
    sc_apartment_t **apts; /* sorted by id */
    size_t napts, cap;
    bool listed; /* in hvs:sc:part:<P> and with its apartments in hvs:{B}:sc:apts */
    bool new_apts;
} sc_building_t;

typedef struct sc_state {
    sc_building_t **b; /* sorted by id */
    size_t n, cap;
    sc_idents_t idents;
    char *block[SC_BLOCKS]; /* scratch for each block's bytes while saving, kept between saves */
    size_t block_cap[SC_BLOCKS];
} sc_state_t;

sc_state_t *sc_state_new(void);
void sc_state_destroy(sc_state_t *s);

/* The building (created when `create`), NULL when absent or out of memory. */
sc_building_t *sc_state_building(sc_state_t *s, const char *id, int32_t partition, bool create);
/* The apartment of b (created when `create`). */
sc_apartment_t *sc_state_apartment(sc_building_t *b, const char *id, bool create);

/* Forget partition p's buildings (its state was written before the last commit). */
void sc_state_drop_partition(sc_state_t *s, int32_t p);

/* Load partition p's buildings from Redis (replacing what memory held of them). */
int sc_state_load_partition(sc_state_t *s, hvs_redis_t *r, hvs_redis_batch_t *scratch, int32_t p,
                            size_t *nbuildings, hvs_err_t *err);

/* Append the commands that save every changed slot to `batch`, and clear the dirty marks. */
int sc_state_save(sc_state_t *s, hvs_redis_batch_t *batch, hvs_err_t *err);

#endif
