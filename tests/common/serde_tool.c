/*
 * hvs-serde-tool: wire-format Avro <-> natural JSON through the common serde layer, for the
 * cross-check against an independent Avro implementation (tests/common/avro_interop.py).
 *   hvs-serde-tool encode KIND < record.json > message.bin
 *   hvs-serde-tool decode [KIND] < message.bin > record.json
 * Exit 0 on success, 1 with the error on stderr.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hvs/log.h"
#include "hvs/serde.h"

static char *slurp(FILE *f, size_t *len) {
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap);
    size_t r;
    while (buf && (r = fread(buf + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) {
                free(buf);
                return NULL;
            }
            buf = nb;
        }
    }
    *len = n;
    return buf;
}

int main(int argc, char **argv) {
    hvs_log_init("serde-tool", HVS_LOG_ERROR, stderr);
    if (argc < 2 || (strcmp(argv[1], "encode") == 0 && argc < 3)) {
        fprintf(stderr, "usage: %s encode KIND < json | decode [KIND] < bytes\n", argv[0]);
        return 2;
    }
    hvs_serde_t *s;
    hvs_err_t err;
    if (hvs_serde_new(NULL, &s, &err) != 0) {
        fprintf(stderr, "serde: %s\n", err.msg);
        return 1;
    }
    size_t len;
    char *in = slurp(stdin, &len);
    int rc = 1;
    if (!in) {
        fprintf(stderr, "read stdin failed\n");
    } else if (strcmp(argv[1], "encode") == 0) {
        int kind = hvs_schema_kind_from_name(argv[2]);
        hvs_encoder_t *e = NULL;
        const void *buf;
        size_t blen;
        if (kind < 0)
            fprintf(stderr, "unknown record %s\n", argv[2]);
        else if (hvs_encoder_new(s, kind, NULL, &e, &err) != 0 ||
                 hvs_serde_value_from_json(s, hvs_encoder_value(e), in, len, &err) != 0 ||
                 hvs_encoder_encode(e, &buf, &blen, &err) != 0)
            fprintf(stderr, "%s: %s\n", err.reason, err.msg);
        else
            rc = fwrite(buf, 1, blen, stdout) == blen ? 0 : 1;
        hvs_encoder_destroy(e);
    } else {
        int kind = argc > 2 ? hvs_schema_kind_from_name(argv[2]) : -1;
        hvs_decoder_t *d = NULL;
        avro_value_t *v;
        char *json = NULL;
        if (hvs_decoder_new(s, kind, &d, &err) != 0 ||
            hvs_decoder_decode(d, in, len, &v, &err) != 0 ||
            hvs_serde_value_to_json(v, &json, &err) != 0)
            fprintf(stderr, "%s: %s\n", err.reason, err.msg);
        else
            rc = printf("%s\n", json) > 0 ? 0 : 1;
        free(json);
        hvs_decoder_destroy(d);
    }
    free(in);
    hvs_serde_destroy(s);
    return rc;
}
