/*
 * hvsctl dlq show: dead letters as JSON lines with their reason, error text, where the record
 * came from, and the original value (as text when it is printable UTF-8, else as hex).
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hvs/serde.h"
#include "hvs/time.h"
#include "hvs/topics.h"
#include "hvsctl.h"

static const char *const help =
    "Usage: hvsctl dlq show [--topic T] [--max N] [--follow]\n"
    "\n"
    "Prints the dead letters of T (default readings.dlq) from the beginning, one JSON object\n"
    "per line: reason, error, worker, failed_at, original topic/partition/offset, source and\n"
    "the original value (text if printable, else \"hex:...\").";

static json_t *field_json(avro_value_t *rec, const char *name) {
    avro_value_t f, b;
    if (avro_value_get_by_name(rec, name, &f, NULL) != 0)
        return json_null();
    if (avro_value_get_type(&f) == AVRO_UNION) {
        if (avro_value_get_current_branch(&f, &b) != 0)
            return json_null();
        f = b;
    }
    switch (avro_value_get_type(&f)) {
    case AVRO_STRING: {
        const char *s;
        size_t n;
        avro_value_get_string(&f, &s, &n);
        json_t *j = json_stringn(s, n ? n - 1 : 0);
        return j ? j : json_null();
    }
    case AVRO_INT32: {
        int32_t x;
        avro_value_get_int(&f, &x);
        return json_integer(x);
    }
    case AVRO_INT64: {
        int64_t x;
        avro_value_get_long(&f, &x);
        return json_integer(x);
    }
    case AVRO_BYTES: {
        const void *p;
        size_t n;
        avro_value_get_bytes(&f, &p, &n);
        const unsigned char *u = p;
        int printable = 1;
        for (size_t i = 0; i < n && printable; i++)
            printable = (u[i] >= 0x20 && u[i] != 0x7f) || u[i] == '\t';
        json_t *j = printable ? json_stringn(p, n) : NULL; /* NULL also when not UTF-8 */
        if (j)
            return j;
        char *hex = malloc(n * 2 + 5);
        if (!hex)
            return json_null();
        memcpy(hex, "hex:", 4);
        for (size_t i = 0; i < n; i++)
            snprintf(hex + 4 + i * 2, 3, "%02x", u[i]);
        hex[4 + n * 2] = '\0';
        j = json_string(hex);
        free(hex);
        return j;
    }
    case AVRO_NULL:
    default: return json_null();
    }
}

static int print_letter(hvs_decoder_t *dec, const rd_kafka_message_t *m) {
    avro_value_t *v;
    hvs_err_t err;
    json_t *line = json_object();
    json_object_set_new(line, "partition", json_integer(m->partition));
    json_object_set_new(line, "offset", json_integer(m->offset));
    if (hvs_decoder_decode(dec, m->payload, m->len, &v, &err) != 0) {
        json_object_set_new(line, "error", json_string(err.msg));
        json_object_set_new(line, "decode_reason", json_string(err.reason));
    } else {
        json_object_set_new(line, "reason", field_json(v, "error_code"));
        json_object_set_new(line, "error", field_json(v, "error_text"));
        json_object_set_new(line, "worker", field_json(v, "worker"));
        json_t *t = field_json(v, "failed_at");
        char iso[40];
        json_object_set_new(
            line, "failed_at",
            json_string(hvs_time_format_iso8601(json_integer_value(t), iso, sizeof iso)));
        json_decref(t);
        json_object_set_new(line, "original_topic", field_json(v, "original_topic"));
        json_object_set_new(line, "original_partition", field_json(v, "original_partition"));
        json_object_set_new(line, "original_offset", field_json(v, "original_offset"));
        json_object_set_new(line, "source", field_json(v, "source"));
        json_object_set_new(line, "original_key", field_json(v, "original_key"));
        json_object_set_new(line, "original_value", field_json(v, "original_value"));
    }
    char *text = json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (text)
        puts(text);
    free(text);
    json_decref(line);
    return 0;
}

int hvsctl_dlq(hvs_app_t *app, int argc, char **argv) {
    if (argc < 1 || hvsctl_wants_help(argc, argv) || strcmp(argv[0], "show") != 0) {
        puts(help);
        return argc >= 1 && hvsctl_wants_help(argc, argv) ? 0 : 2;
    }
    hvsctl_read_opts_t o = {.topic = hvs_topic_name("readings.dlq"),
                            .partition = -1,
                            .from_beginning = true,
                            .timeout_ms = 10000};
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        long x = 0;
        if (strcmp(argv[i], "--topic") == 0 && v)
            o.topic = v, i++;
        else if (strcmp(argv[i], "--follow") == 0)
            o.follow = true;
        else if (strcmp(argv[i], "--max") == 0 && (x = hvsctl_parse_count(argv[i], v)) >= 0)
            o.max = x, i++;
        else {
            if (x >= 0)
                fprintf(stderr, "hvsctl dlq show: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    return hvsctl_read_decoded(app, &o, HVS_SCHEMA_DEAD_LETTER, print_letter);
}
