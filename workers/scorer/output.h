/*
 * output.h - AnomalyScore records on scores.anomaly (schemas/AnomalyScore.avsc), one encoder
 * reused for every score.
 *
 * Ownership: sc_output_new borrows the serde; the encoded bytes returned by sc_output_encode
 * are the output's, valid until the next call. Thread-safety: one thread.
 * Errors: 0, HVS_ESERDE "avro_encode" naming the apartment-hour, HVS_ENOMEM.
 */
#ifndef SC_OUTPUT_H
#define SC_OUTPUT_H

#include <stddef.h>
#include <stdint.h>

#include "hvs/err.h"
#include "hvs/serde.h"
#include "hvs/time.h"

/* ScoreStrategy symbols, in the schema's order. */
typedef enum sc_strategy {
    SC_STRATEGY_RULES = 0,
    SC_STRATEGY_RESIDUAL,
    SC_STRATEGY_CLASSIFIER,
    SC_STRATEGY_UNKNOWN,
    SC_STRATEGY_COMBINED
} sc_strategy_t;

#define SC_OUT_REASONS 8

typedef struct sc_score_out {
    const char *building, *apartment;
    hvs_ms_t hour, scored_at;
    int64_t revision;
    double score;
    double probability, expected, observed, rule_score, residual_z; /* NaN: null */
    sc_strategy_t strategy;
    const char *model_name; /* "rules" without a model */
    int model_version;
    const char *models[2];
    int nmodels;
    const char *rules[3];
    int nrules;
    const char *reasons[SC_OUT_REASONS];
    int nreasons;
} sc_score_out_t;

typedef struct sc_output sc_output_t;

int sc_output_new(hvs_serde_t *s, const char *topic, sc_output_t **out, hvs_err_t *err);
void sc_output_destroy(sc_output_t *o);
int sc_output_encode(sc_output_t *o, const sc_score_out_t *s, const void **buf, size_t *len,
                     hvs_err_t *err);

#endif
