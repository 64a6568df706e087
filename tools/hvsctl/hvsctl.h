/*
 * hvsctl internals: one file per command, plus reader.c (read a topic's partitions without a
 * consumer group: no commits, nothing changes for the pipeline's groups).
 * Every command returns a process exit status: 0 done, 1 infrastructure failure (model, alerts:
 * also refused or not found), 2 usage.
 */
#ifndef HVSCTL_H
#define HVSCTL_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stdint.h>

#include "hvs/app.h"

int hvsctl_topics(hvs_app_t *app, int argc, char **argv);
int hvsctl_tail(hvs_app_t *app, int argc, char **argv);
int hvsctl_ingest(hvs_app_t *app, int argc, char **argv);
int hvsctl_dlq(hvs_app_t *app, int argc, char **argv);
int hvsctl_model(hvs_app_t *app, int argc, char **argv);
int hvsctl_train(hvs_app_t *app, int argc, char **argv);
int hvsctl_alerts(hvs_app_t *app, int argc, char **argv);
int hvsctl_weather(hvs_app_t *app, int argc, char **argv);
int hvsctl_score(hvs_app_t *app, int argc, char **argv);
int hvsctl_topology(hvs_app_t *app, int argc, char **argv);

/* Does argv hold --help / -h? */
bool hvsctl_wants_help(int argc, char **argv);
/* Parse a non-negative integer option value; -1 on error (message printed). */
long hvsctl_parse_count(const char *opt, const char *value);

typedef struct hvsctl_read_opts {
    const char *topic;
    int32_t partition;   /* -1 = all */
    bool from_beginning; /* else the last `tail` messages of each partition */
    long tail;
    long max;       /* stop after this many messages; 0 = no limit */
    bool follow;    /* keep reading new messages */
    int timeout_ms; /* metadata and fetch timeout */
} hvsctl_read_opts_t;

/* Called for each message; return non-zero to stop. */
typedef int (*hvsctl_read_fn)(void *opaque, const rd_kafka_message_t *m);

/* Read per opts; 0 ok, 1 infrastructure failure (message printed on stderr). */
int hvsctl_read_topic(hvs_app_t *app, const hvsctl_read_opts_t *opts, hvsctl_read_fn fn,
                      void *opaque);

/* Read per opts, decoding each value into the schema of `kind` (-1 = its writer schema);
 * fn gets the decoder to decode with. 0 ok, 1 failure (printed on stderr). */
typedef struct hvs_decoder hvs_decoder_t;
typedef int (*hvsctl_decoded_fn)(hvs_decoder_t *dec, const rd_kafka_message_t *m);
int hvsctl_read_decoded(hvs_app_t *app, const hvsctl_read_opts_t *opts, int kind,
                        hvsctl_decoded_fn fn);

#endif
