/*
 * hvsctl tail TOPIC: Avro values decoded with their own writer schema, one JSON object per line:
 * {"topic","partition","offset","timestamp","key","schema_id","value"} - or "error"/"reason"
 * instead of "value" for a message that does not decode (shown, not fatal).
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hvs/serde.h"
#include "hvsctl.h"

static const char *const help =
    "Usage: hvsctl tail TOPIC [--from-beginning] [--max N] [--follow] [--partition P]\n"
    "\n"
    "Prints TOPIC's messages as JSON lines: the last 10 of each partition, or all of them with\n"
    "--from-beginning; stops at the end unless --follow (Ctrl-C stops). Values are decoded from\n"
    "Avro with the schema id in their wire header. Nothing is committed.";

/* Key as text; non-UTF-8 keys as their Latin-1 code points. */
static json_t *key_json(const rd_kafka_message_t *m) {
    if (!m->key)
        return json_null();
    json_t *k = json_stringn(m->key, m->key_len);
    if (k)
        return k;
    char *s = malloc(m->key_len * 2 + 1);
    size_t n = 0;
    for (size_t i = 0; s && i < m->key_len; i++) {
        unsigned char c = ((const unsigned char *)m->key)[i];
        if (c < 0x80)
            s[n++] = (char)c;
        else
            s[n++] = (char)(0xC0 | (c >> 6)), s[n++] = (char)(0x80 | (c & 0x3F));
    }
    k = s ? json_stringn(s, n) : json_null();
    free(s);
    return k;
}

static int print_message(hvs_decoder_t *dec, const rd_kafka_message_t *m) {
    json_t *line = json_object();
    json_object_set_new(line, "topic", json_string(rd_kafka_topic_name(m->rkt)));
    json_object_set_new(line, "partition", json_integer(m->partition));
    json_object_set_new(line, "offset", json_integer(m->offset));
    json_object_set_new(line, "timestamp", json_integer(rd_kafka_message_timestamp(m, NULL)));
    json_object_set_new(line, "key", key_json(m));
    avro_value_t *v;
    hvs_err_t err;
    char *value = NULL;
    if (hvs_decoder_decode(dec, m->payload, m->len, &v, &err) == 0 &&
        hvs_serde_value_to_json(v, &value, &err) == 0) {
        json_object_set_new(line, "schema_id", json_integer(hvs_decoder_last_schema_id(dec)));
        json_object_set_new(line, "value", json_loads(value, JSON_ALLOW_NUL, NULL));
    } else {
        json_object_set_new(line, "error", json_string(err.msg));
        json_object_set_new(line, "reason", json_string(err.reason));
    }
    free(value);
    char *text = json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (text)
        puts(text);
    free(text);
    json_decref(line);
    return 0;
}

int hvsctl_tail(hvs_app_t *app, int argc, char **argv) {
    if (argc < 1 || hvsctl_wants_help(argc, argv)) {
        puts(help);
        return argc < 1 ? 2 : 0;
    }
    hvsctl_read_opts_t o = {.topic = argv[0], .partition = -1, .tail = 10, .timeout_ms = 10000};
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        long x = 0;
        if (strcmp(argv[i], "--from-beginning") == 0)
            o.from_beginning = true;
        else if (strcmp(argv[i], "--follow") == 0)
            o.follow = true;
        else if (strcmp(argv[i], "--max") == 0 && (x = hvsctl_parse_count(argv[i], v)) >= 0)
            o.max = x, i++;
        else if (strcmp(argv[i], "--partition") == 0 && (x = hvsctl_parse_count(argv[i], v)) >= 0)
            o.partition = (int32_t)x, i++;
        else {
            if (x >= 0)
                fprintf(stderr, "hvsctl tail: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    return hvsctl_read_decoded(app, &o, -1, print_message);
}
