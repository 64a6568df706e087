/*
 * apartment.h - what the scorer remembers of one apartment: a ring of its last SC_RING hours,
 * each slot holding the two halves a score is made of, and their text encoding in Redis.
 *
 *   the aggregate's half (sc_agg_t)   the hour's heating and per-room evidence (mean
 *                                     temperature, setpoint, valve, how often the temperature
 *                                     changed, readings; the rules read nothing else), and
 *                                     the rules that fired when it arrived (rules.h);
 *   the vector's half (sc_model_t)    the feature vector's revision, observed and expected
 *                                     heating, the residual and its standardisation, the
 *                                     classifier's probability, the models used and the top
 *                                     contributions (score.h).
 * * Each half is written only from its own input topic, in that topic's order, and computed from
 * the halves of its own kind that the ring held at that moment; the score of an hour combines
 * the two halves as they stand (docs/design.md section 6, "Scoring"). So whatever the
 * interleaving of the two topics, the latest score of an hour is the same function of the data,
 * as long as neither topic runs more than SC_RING hours ahead of the other on a partition (a half
 * whose partner was already evicted is scored without it; counted).
 *
 * Halves are addressed by event hour (slot = hour mod SC_RING), each with its own hour stamped
 * in, so a half left over from an older hour reads as empty, a newer hour of one topic evicts
 * only that topic's half, and rewriting an hour leaves the same state.
 * Room names are kept once per apartment (at most SC_ROOMS; rooms beyond are not judged).
 *
 * Redis (docs/design.md section 5): hash hvs:{B}:sc:a:<apartment>, fields "b0".."b2", block k
 * holding slots [k * SC_BLOCK_HOURS, (k + 1) * SC_BLOCK_HOURS) in binary (sc_block_encode); a
 * block with a slot changed since the last save is written whole (dirty bits). State of earlier
 * versions, a text field per slot ("0".."71", sc_slot_encode), still loads; the apartment's next
 * save deletes those fields and writes its blocks (`legacy`).
 *
 * Ownership: sc_apartment_new copies the id; sc_apartment_destroy frees it (NULL-safe).
 * Model idents in slots are indices into the caller's ident table (sc_idents_t), which owns the
 * strings. Thread-safety: none. Errors: decode returns -1 for text it cannot read.
 */
#ifndef SC_APARTMENT_H
#define SC_APARTMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hvs/time.h"

#define SC_RING 72 /* hours: the upgrade window (48 h) and the aggregator's lateness, with margin */
#define SC_ROOMS 8
#define SC_ROOM_NAME 32
#define SC_FIRED_MAX 3
#define SC_CONTRIB_MAX 3
#define SC_IDENT_NONE 0xffff
#define SC_BLOCK_HOURS 24 /* slots per stored block: a field per slot cost Redis ~60 bytes each */
#define SC_BLOCKS (SC_RING / SC_BLOCK_HOURS)

typedef struct sc_room {
    uint8_t name;           /* index into the apartment's names */
    float temp_mean;        /* degC; NaN unknown */
    float setpoint, valve;  /* degC, percent; NaN unknown */
    uint16_t changes, seen; /* temperature changes, readings in the hour */
} sc_room_t;

typedef struct sc_fired {
    uint8_t rule;  /* sc_rule_t */
    int8_t room;   /* name index; -1 the apartment */
    uint8_t hours; /* how long its condition has held (capped at SC_RING) */
    uint8_t variant;
    float strength;   /* evidence in [0, 1] */
    float a, b, c, d; /* the numbers its reason quotes (rules.c) */
} sc_fired_t;

typedef struct sc_agg {
    hvs_ms_t hour;  /* HVS_MS_NONE: empty */
    int32_t rev;    /* the aggregate's revision; -1: none seen */
    float heat_kwh; /* NaN unknown */
    uint8_t nrooms, nfired;
    sc_room_t rooms[SC_ROOMS];
    sc_fired_t fired[SC_FIRED_MAX]; /* strongest first */
    float rule_score;               /* evidence of the rules in [0, 1] */
    bool live; /* applied in this process outside a rebuild's quiet replay (not saved) */
} sc_agg_t;

typedef struct sc_contrib {
    int16_t feature; /* index in hvs_features_names(); -1 none */
    float value;     /* the feature's value */
    float contrib;   /* its contribution (kWh, or log-odds for the classifier) */
} sc_contrib_t;

typedef struct sc_model {
    hvs_ms_t hour;                 /* HVS_MS_NONE: empty */
    int32_t rev;                   /* the feature vector's revision; -1: none seen */
    float observed;                /* kWh; NaN unknown */
    float expected;                /* kWh from the residual model; NaN without one */
    float residual_z;              /* NaN when not standardised */
    float resid_w, expected_w;     /* residual and expected kWh over the window (score.h); NaN */
    float prob;                    /* classifier probability; NaN without one */
    float outdoor_c;               /* the hour's temperature_c feature (for reasons) */
    float e_res, e_cls;            /* evidence of each in [0, 1] */
    uint16_t res_ident, cls_ident; /* ident table indices; SC_IDENT_NONE */
    uint8_t explained;             /* 0 none, 1 residual model, 2 classifier */
    uint8_t ncontrib;
    sc_contrib_t contrib[SC_CONTRIB_MAX];
    bool live; /* as sc_agg_t's */
} sc_model_t;

typedef struct sc_slot {
    sc_agg_t agg;
    sc_model_t model;
} sc_slot_t;

typedef struct sc_apartment {
    char *id;
    char names[SC_ROOMS][SC_ROOM_NAME];
    uint8_t nnames;
    sc_slot_t slots[SC_RING];
    uint64_t dirty[2]; /* slots changed since the last save */
    bool legacy;       /* loaded from text fields of one slot each: the next save deletes them */
} sc_apartment_t;

/* Model idents ("<name>:<version>") interned for the slots: index -> string. */
typedef struct sc_idents {
    char **s;
    size_t n, cap;
} sc_idents_t;

/* The index of `ident` in t, added when new; SC_IDENT_NONE on allocation failure or when full. */
uint16_t sc_ident_intern(sc_idents_t *t, const char *ident);
const char *sc_ident_get(const sc_idents_t *t, uint16_t i); /* NULL for SC_IDENT_NONE */
void sc_idents_free(sc_idents_t *t);

sc_apartment_t *sc_apartment_new(const char *id);
void sc_apartment_destroy(sc_apartment_t *a);

size_t sc_slot_index(hvs_ms_t hour);
/* The half of `hour` if the ring holds one (rev >= 0), else NULL. */
sc_agg_t *sc_agg_get(sc_apartment_t *a, hvs_ms_t hour);
sc_model_t *sc_model_get(sc_apartment_t *a, hvs_ms_t hour);
/* The half of `hour` to write, emptied first when it holds an older hour; NULL when it holds a
 * newer one (the hour is too old for the ring). Marks the slot dirty. */
sc_agg_t *sc_agg_take(sc_apartment_t *a, hvs_ms_t hour);
sc_model_t *sc_model_take(sc_apartment_t *a, hvs_ms_t hour);
void sc_agg_clear(sc_agg_t *g, hvs_ms_t hour);
void sc_model_clear(sc_model_t *m, hvs_ms_t hour);
/* Index of a room name in the apartment's table, added when new; -1 when the table is full. */
int sc_room_intern(sc_apartment_t *a, const char *name);

/* Text of a slot, both halves with their hours (with the apartment's room names and the idents'
 * strings, so a slot reads back alone); returns its length, 0 when cap is too small. */
size_t sc_slot_encode(const sc_apartment_t *a, const sc_idents_t *t, const sc_slot_t *s, char *buf,
                      size_t cap);
/* Read a slot's text into a (room names and idents interned; `live` false). Each half replaces
 * the ring's only when its hour is newer, or the same hour at a higher revision. 0, or -1 for
 * bad text (the slot is left as it was). */
int sc_slot_decode(sc_apartment_t *a, sc_idents_t *t, const char *text, size_t len);

/*
 * Block `block` (0..SC_BLOCKS-1) of a's ring in binary, pack.h varints and floats, into buf:
 *   byte 1 (the format); varint block (a value under another field's name is refused);
 *   the apartment's room names: varint count, each varint length + bytes;
 *   the block's model idents: varint count, each varint length + bytes (slots index these);
 *   per slot, in order: varint mask (SB_AGG, SB_MODEL, SB_AGG_ODD, SB_MODEL_ODD; 0 empty), then
 *     the aggregate's half: hour (zigzag varint of its ring cycle (hour / 1 h - slot) / SC_RING,
 *       or with SB_AGG_ODD of its milliseconds), varint rev + 1, floats heat_kwh, rule_score,
 *       varint nrooms, per room varint name, floats temp_mean, setpoint, valve, varints
 *       changes, seen; varint nfired, per rule varints rule, room + 1, hours, variant,
 *       floats strength, a, b, c, d;
 *     the model's half: hour as above (SB_MODEL_ODD), varint rev + 1, floats observed,
 *       expected, residual_z, resid_w, expected_w, prob, outdoor_c, e_res, e_cls, varints
 *       res_ident + 1, cls_ident + 1 (0: none), explained, ncontrib, per contribution varint
 *       feature + 1, floats value, contrib.
 * Every float reads back bit for bit (NaN is one byte). Returns the bytes the block needs;
 * nothing is written past cap, so a return above cap means "grow buf and call again".
 */
size_t sc_block_encode(const sc_apartment_t *a, const sc_idents_t *t, size_t block, char *buf,
                       size_t cap);
/* Read block `block`'s bytes into a, each half merged as sc_slot_decode's. 0, or -1 for bytes
 * that are not a whole block `block` (a left as it was) or when a's room names run out. */
int sc_block_decode(sc_apartment_t *a, sc_idents_t *t, size_t block, const char *v, size_t len);

#endif
