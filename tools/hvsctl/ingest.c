/*
 * hvsctl ingest: the seeds' raw meter JSON lines -> Avro Readings on readings.raw (key =
 * building_id). A line that does not parse or validate goes to readings.dlq with its reason and
 * "FILE:LINE" as source; the run goes on. Exit 0 when the input was processed (rejects
 * included), 1 only when Kafka could not take the data.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hvs/dlq.h"
#include "hvs/kafka.h"
#include "hvs/log.h"
#include "hvs/reading.h"
#include "hvs/topics.h"
#include "hvsctl.h"

static const char *const help =
    "Usage: hvsctl ingest [FILE|-] [--topic T] [--timeout S] [--max-future-hours H]\n"
    "\n"
    "Reads JSON lines in the raw meter format (one apartment's readings at one instant):\n"
    "  {\"timestamp_str\": \"2024-10-27T10:30:00Z\", \"building_id\": \"bldg_A123\",\n"
    "   \"apartment_id\": \"apt_404\", \"readings\": [{\"sensor_type\": \"room_temp_c\",\n"
    "   \"room_name\": \"living_room\", \"value\": 21.5}, ...]}\n"
    "from FILE (or standard input) and produces them to readings.raw (or --topic) as Avro,\n"
    "keyed by building_id. Invalid lines go to the topic's dead-letter topic with the reason.\n"
    "Prints a summary of accepted and rejected lines by reason.\n"
    "  --timeout S            give up when Kafka has not acknowledged everything (default 30)\n"
    "  --max-future-hours H   how far ahead of now a timestamp may be (default 24)\n"
    "Lines longer than 64 KiB are rejected (line_too_long; the dead letter keeps the first\n"
    "64 KiB). Blank lines are skipped.\n"
    "Exit status: 0 input processed (even with rejected lines), 1 Kafka failure, 2 usage.";

#define MAX_REASONS 32

typedef struct tally {
    char reason[HVS_ERR_REASON_MAX];
    long count;
} tally_t;

static void count_reason(tally_t *t, size_t *n, const char *reason) {
    for (size_t i = 0; i < *n; i++)
        if (strcmp(t[i].reason, reason) == 0) {
            t[i].count++;
            return;
        }
    if (*n < MAX_REASONS) {
        snprintf(t[*n].reason, sizeof t[*n].reason, "%s", reason);
        t[(*n)++].count = 1;
    }
}

/* The sensor table, so operators see what validation accepts. */
static void print_sensors(void) {
    size_t n;
    const hvs_sensor_info_t *t = hvs_reading_sensors(&n);
    puts("\nKnown sensors (others are rejected as unknown_sensor):");
    for (size_t i = 0; i < n; i++)
        printf("  %-20s %-8s [%g, %g]%s\n", t[i].type, t[i].unit, t[i].min, t[i].max,
               t[i].cumulative ? " cumulative"
               : t[i].per_room ? " per room"
                               : "");
}

int hvsctl_ingest(hvs_app_t *app, int argc, char **argv) {
    if (hvsctl_wants_help(argc, argv)) {
        puts(help);
        print_sensors();
        return 0;
    }
    const char *path = NULL;
    const char *topic = hvs_topic_name("readings.raw");
    long timeout_s = 30, future_h = 24;
    for (int i = 0; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(argv[i], "--topic") == 0 && v)
            topic = v, i++;
        else if (strcmp(argv[i], "--timeout") == 0)
            timeout_s = hvsctl_parse_count(argv[i], v), i++;
        else if (strcmp(argv[i], "--max-future-hours") == 0)
            future_h = hvsctl_parse_count(argv[i], v), i++;
        else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            fprintf(stderr, "hvsctl ingest: unknown option %s\n", argv[i]);
            return 2;
        } else if (!path) {
            path = argv[i];
        } else {
            fprintf(stderr, "hvsctl ingest: one input at a time (%s and %s)\n", path, argv[i]);
            return 2;
        }
        if (timeout_s < 0 || future_h < 0)
            return 2;
    }
    if (!path)
        path = "-";
    FILE *in = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    if (!in) {
        fprintf(stderr, "hvsctl ingest: cannot open %s\n", path);
        return 2;
    }
    const char *label = strcmp(path, "-") == 0 ? "stdin" : path;

    hvs_err_t err;
    hvs_serde_t *s = NULL;
    hvs_producer_t *p = NULL;
    hvs_encoder_t *enc = NULL;
    hvs_reading_codec_t *codec = NULL;
    hvs_dlq_t *dlq = NULL;
    hvs_kafka_conf_t kc;
    hvs_app_kafka_conf(app, &kc);
    int rc = 1;
    if (hvs_serde_new(app->cfg.schema_registry_url, &s, &err) != 0 ||
        hvs_producer_new(&kc, &p, &err) != 0) {
        fprintf(stderr, "hvsctl ingest: %s\n", err.msg);
        goto out;
    }
    /* Fail fast when Kafka is not there, instead of queueing into the void. */
    const struct rd_kafka_metadata *md;
    rd_kafka_resp_err_t e = rd_kafka_metadata(hvs_producer_handle(p), 0, NULL, &md,
                                              (int)(timeout_s < 10 ? timeout_s : 10) * 1000);
    if (e) {
        fprintf(stderr, "hvsctl ingest: cannot reach Kafka at %s: %s\n", kc.brokers,
                rd_kafka_err2str(e));
        goto out;
    }
    rd_kafka_metadata_destroy(md);
    if (hvs_encoder_new(s, HVS_SCHEMA_READING, topic, &enc, &err) != 0 ||
        hvs_reading_codec_new(s, &codec, &err) != 0 ||
        hvs_dlq_new(p, s, "hvsctl", &dlq, &err) != 0) {
        fprintf(stderr, "hvsctl ingest: %s\n", err.msg);
        goto out;
    }

    tally_t reasons[MAX_REASONS];
    size_t nreasons = 0;
    long lineno = 0, accepted = 0, rejected = 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    static hvs_reading_t r; /* large; one reused for every line */
    hvs_ms_t now = hvs_time_now_ms();
    rc = 0;
    while ((len = getline(&line, &cap, in)) >= 0) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (len == 0)
            continue;
        char source[320];
        snprintf(source, sizeof source, "%.256s:%ld", label, lineno);
        hvs_err_t why;
        hvs_err_clear(&why);
        r.building_id[0] = '\0';
        if ((lineno & 1023) == 0) {
            now = hvs_time_now_ms();
            hvs_producer_poll(p);
            /* A delivery that failed means Kafka is not taking the data: stop now rather than
             * read the rest of a large file into a queue that will not drain. */
            if (hvs_producer_failed(p) > 0) {
                fprintf(stderr, "hvsctl ingest: Kafka rejected a delivery by line %ld; stopping\n",
                        lineno);
                rc = 1;
                break;
            }
        }
        if (hvs_reading_parse_json(line, (size_t)len, &r, &why) == 0 &&
            hvs_reading_validate(&r, now, future_h * HVS_MS_HOUR, &why) == 0) {
            const void *buf;
            size_t blen;
            if (hvs_reading_to_avro(codec, &r, source, now, hvs_encoder_value(enc), &why) == 0 &&
                hvs_encoder_encode(enc, &buf, &blen, &why) == 0) {
                if (hvs_producer_send(p, topic, RD_KAFKA_PARTITION_UA, r.building_id,
                                      strlen(r.building_id), buf, blen, &err) != 0) {
                    fprintf(stderr, "hvsctl ingest: %s\n", err.msg);
                    rc = 1;
                    break;
                }
                accepted++;
                continue;
            }
        }
        rejected++;
        count_reason(reasons, &nreasons, why.reason);
        const char *key = r.building_id[0] ? r.building_id : NULL;
        size_t keep = (size_t)len;
        if (keep > HVS_READING_LINE_MAX) {
            keep = HVS_READING_LINE_MAX; /* a dead letter must stay a sane Kafka message */
            hvs_err_wrap(&why, "dead letter keeps the first %zu bytes", keep);
        }
        if (hvs_dlq_send(dlq, topic, -1, -1, key, key ? strlen(key) : 0, line, keep, source, &why,
                         &err) != 0) {
            fprintf(stderr, "hvsctl ingest: dead-lettering %s: %s\n", source, err.msg);
            rc = 1;
            break;
        }
    }
    free(line);
    if (hvs_producer_flush(p, (int)timeout_s * 1000, &err) != 0) {
        fprintf(stderr, "hvsctl ingest: Kafka did not take everything: %s\n", err.msg);
        rc = 1;
    }
    char dlq_topic[HVS_TOPIC_NAME_MAX];
    printf("ingest %s: %ld lines, accepted %ld -> %s, rejected %ld -> %s\n", label,
           accepted + rejected, accepted, topic, rejected,
           hvs_topic_dlq_name(topic, dlq_topic, sizeof dlq_topic));
    for (size_t i = 0; i < nreasons; i++)
        printf("  rejected %-24s %ld\n", reasons[i].reason, reasons[i].count);
    fflush(stdout);
out:
    if (in != stdin)
        fclose(in);
    hvs_dlq_destroy(dlq);
    hvs_reading_codec_destroy(codec);
    hvs_encoder_destroy(enc);
    hvs_producer_destroy(p);
    hvs_serde_destroy(s);
    return rc;
}
