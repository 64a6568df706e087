/*
 * feedback: Feedback records through the one writer and the one reader (feedback.h) and the real
 * serde: every label and its name, round trips with and without the optional fields, the wire
 * header (schema id of Feedback), records refused on both sides with their reasons, and the
 * bytes read by an independent Avro implementation (python3-avro, feedback_read.py).
 */
#include <jansson.h>
#include <stdlib.h>

#include "hvs/feedback.h"
#include "hvs/log.h"
#include "hvs/serde.h"
#include "hvs_test.h"

static const hvs_feedback_t full = {.alert_id = "apt_001_003#2024-12-02#RULE_STUCK_VALVE",
                                    .building_id = "bldg_001",
                                    .apartment_id = "apt_001_003",
                                    .technician_id = "tech-north",
                                    .label = HVS_FEEDBACK_TRUE_POSITIVE,
                                    .root_cause = "stuck_valve",
                                    .comment = "valve in the kitchen replaced \xc3\xa9",
                                    .labelled_at = 1733097600123LL};

static const hvs_feedback_t bare = {.alert_id = "bldg_002#2024-12-03#ANOMALY",
                                    .building_id = "bldg_002",
                                    .technician_id = "t",
                                    .label = HVS_FEEDBACK_UNSURE,
                                    .labelled_at = -5};

static void test_label_names(void) {
    const char *names[] = {"TRUE_POSITIVE", "FALSE_POSITIVE", "UNSURE"};
    for (int i = 0; i < 3; i++) {
        HVS_CHECK_EQ_STR(hvs_feedback_label_name((hvs_feedback_label_t)i), names[i]);
        hvs_feedback_label_t l = (hvs_feedback_label_t)-1;
        HVS_CHECK(hvs_feedback_label_parse(names[i], &l) == 0 && (int)l == i, "parse %s", names[i]);
    }
    hvs_feedback_label_t l = HVS_FEEDBACK_UNSURE;
    HVS_CHECK(hvs_feedback_label_name((hvs_feedback_label_t)3) == NULL, "3 is no label");
    HVS_CHECK(hvs_feedback_label_name((hvs_feedback_label_t)-1) == NULL, "-1 is no label");
    HVS_CHECK(hvs_feedback_label_parse("true_positive", &l) == HVS_EINVAL, "exact symbols only");
    HVS_CHECK(hvs_feedback_label_parse("", &l) == HVS_EINVAL, "empty");
    HVS_CHECK(hvs_feedback_label_parse(NULL, &l) == HVS_EINVAL && l == HVS_FEEDBACK_UNSURE,
              "NULL, out untouched");
}

static int opt_eq(const char *a, const char *b) { return (!a && !b) || (a && b && !strcmp(a, b)); }

static int same(const hvs_feedback_t *a, const hvs_feedback_t *b) {
    return opt_eq(a->alert_id, b->alert_id) && opt_eq(a->building_id, b->building_id) &&
           opt_eq(a->apartment_id, b->apartment_id) && opt_eq(a->technician_id, b->technician_id) &&
           a->label == b->label && opt_eq(a->root_cause, b->root_cause) &&
           opt_eq(a->comment, b->comment) && a->labelled_at == b->labelled_at;
}

/* Writer -> bytes -> serde decoder -> reader: the same record, for every label, with and without
 * the optional fields; the header carries the Feedback schema id. */
static void test_round_trip(void) {
    hvs_err_t err = {0};
    hvs_serde_t *s;
    HVS_REQUIRE(hvs_serde_new(NULL, &s, &err) == 0, "serde: %s", err.msg);
    hvs_feedback_writer_t *w;
    hvs_decoder_t *d;
    HVS_REQUIRE(hvs_feedback_writer_new(s, &w, &err) == 0 &&
                    hvs_decoder_new(s, HVS_SCHEMA_FEEDBACK, &d, &err) == 0,
                "writer, decoder: %s", err.msg);
    for (int withopt = 0; withopt < 2; withopt++)
        for (int l = 0; l < 3; l++) {
            hvs_feedback_t f = withopt ? full : bare;
            f.label = (hvs_feedback_label_t)l;
            const void *buf;
            size_t len;
            int32_t id = -1;
            avro_value_t *v;
            hvs_feedback_t got;
            HVS_REQUIRE(hvs_feedback_encode(w, &f, &buf, &len, &err) == 0, "encode: %s", err.msg);
            HVS_CHECK(hvs_serde_read_header(buf, len, &id, &err) == 0 && id == 10,
                      "wire header id %d (schema-ids.tsv: Feedback is 10)", (int)id);
            HVS_REQUIRE(hvs_decoder_decode(d, buf, len, &v, &err) == 0, "decode: %s", err.msg);
            HVS_CHECK(hvs_feedback_read(v, &got, &err) == 0, "read: %s", err.msg);
            HVS_CHECK(same(&got, &f), "round trip with%s optionals, label %s", withopt ? "" : "out",
                      hvs_feedback_label_name(f.label));
            /* NULL optionals are Avro nulls, not empty strings */
            if (!withopt)
                HVS_CHECK(!got.apartment_id && !got.root_cause && !got.comment, "nulls");
            /* the strings point into the decoded value */
            const char *in_v = hvs_serde_field_str(v, "alert_id");
            HVS_CHECK(got.alert_id == in_v, "no copy");
        }
    HVS_CHECK_EQ_INT(hvs_feedback_sent(w), 0);
    hvs_decoder_destroy(d);
    hvs_feedback_writer_destroy(w);
    hvs_serde_destroy(s);
}

/* What the writer refuses to write, with the reason; nothing is encoded. */
static void test_encode_refuses(void) {
    hvs_err_t err = {0};
    hvs_serde_t *s;
    hvs_feedback_writer_t *w;
    HVS_REQUIRE(hvs_serde_new(NULL, &s, &err) == 0 && hvs_feedback_writer_new(s, &w, &err) == 0,
                "writer: %s", err.msg);
    struct {
        hvs_feedback_t f;
        const char *reason;
    } bad[8];
    for (int i = 0; i < 8; i++)
        bad[i].f = full;
    bad[0].f.alert_id = NULL, bad[0].reason = HVS_FEEDBACK_R_NO_ALERT_ID;
    bad[1].f.alert_id = "", bad[1].reason = HVS_FEEDBACK_R_NO_ALERT_ID;
    bad[2].f.building_id = NULL, bad[2].reason = HVS_FEEDBACK_R_NO_BUILDING;
    bad[3].f.building_id = "", bad[3].reason = HVS_FEEDBACK_R_NO_BUILDING;
    bad[4].f.technician_id = NULL, bad[4].reason = HVS_FEEDBACK_R_NO_TECHNICIAN;
    bad[5].f.technician_id = "", bad[5].reason = HVS_FEEDBACK_R_NO_TECHNICIAN;
    bad[6].f.label = (hvs_feedback_label_t)3, bad[6].reason = HVS_FEEDBACK_R_BAD_LABEL;
    bad[7].f.label = (hvs_feedback_label_t)-1, bad[7].reason = HVS_FEEDBACK_R_BAD_LABEL;
    for (int i = 0; i < 8; i++) {
        const void *buf = NULL;
        size_t len = 0;
        hvs_err_clear(&err);
        int rc = hvs_feedback_encode(w, &bad[i].f, &buf, &len, &err);
        HVS_CHECK(rc == HVS_EINVAL && !strcmp(err.reason, bad[i].reason) && !buf && !len,
                  "case %d: rc %d reason %s (%s), expected %s", i, rc, err.reason, err.msg,
                  bad[i].reason);
    }
    /* the message names the alert */
    hvs_feedback_t f = full;
    f.technician_id = "";
    hvs_feedback_send(w, NULL, &f, &err);
    HVS_CHECK(strstr(err.msg, full.alert_id) != NULL && hvs_feedback_sent(w) == 0,
              "send refuses before queueing: %s", err.msg);
    hvs_feedback_writer_destroy(w);
    hvs_serde_destroy(s);
}

/* What the reader refuses: records that decode (the schema allows empty strings) but say
 * nothing usable, and a label outside the enum in a value built by hand. */
static void test_read_refuses(void) {
    hvs_err_t err = {0};
    hvs_serde_t *s;
    hvs_encoder_t *e;
    hvs_decoder_t *d;
    HVS_REQUIRE(hvs_serde_new(NULL, &s, &err) == 0 &&
                    hvs_encoder_new(s, HVS_SCHEMA_FEEDBACK, NULL, &e, &err) == 0 &&
                    hvs_decoder_new(s, HVS_SCHEMA_FEEDBACK, &d, &err) == 0,
                "serde: %s", err.msg);
#define REC(a, b, t, l)                                                                            \
    "{\"alert_id\":\"" a "\",\"building_id\":\"" b "\",\"apartment_id\":null,"                     \
    "\"technician_id\":\"" t "\",\"label\":\"" l "\",\"root_cause\":null,\"comment\":null,"        \
    "\"labelled_at\":7}"
    struct {
        const char *json, *reason;
    } cases[] = {
        {REC("", "bldg_1", "t", "TRUE_POSITIVE"), HVS_FEEDBACK_R_NO_ALERT_ID},
        {REC("x#2024-01-01#ANOMALY", "", "t", "FALSE_POSITIVE"), HVS_FEEDBACK_R_NO_BUILDING},
        {REC("x#2024-01-01#ANOMALY", "bldg_1", "", "UNSURE"), HVS_FEEDBACK_R_NO_TECHNICIAN},
        {REC("x#2024-01-01#ANOMALY", "bldg_1", "t", "UNSURE"), NULL},
    };
#undef REC
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const void *buf;
        size_t len;
        avro_value_t *v;
        hvs_feedback_t got;
        const char *json = cases[i].json;
        HVS_REQUIRE(hvs_serde_value_from_json(s, hvs_encoder_value(e), json, strlen(json), &err) ==
                            0 &&
                        hvs_encoder_encode(e, &buf, &len, &err) == 0 &&
                        hvs_decoder_decode(d, buf, len, &v, &err) == 0,
                    "case %zu: %s", i, err.msg);
        hvs_err_clear(&err);
        int rc = hvs_feedback_read(v, &got, &err);
        if (cases[i].reason)
            HVS_CHECK(rc == HVS_EINVAL && !strcmp(err.reason, cases[i].reason),
                      "case %zu: rc %d reason %s, expected %s", i, rc, err.reason, cases[i].reason);
        else
            HVS_CHECK(rc == 0 && got.label == HVS_FEEDBACK_UNSURE && got.labelled_at == 7,
                      "case %zu accepted: %s", i, err.msg);
    }
    /* an enum index outside the symbols (a value built in memory, not decodable bytes) */
    avro_value_t *v = hvs_encoder_value(e), f;
    HVS_REQUIRE(hvs_serde_value_from_json(s, v, cases[3].json, strlen(cases[3].json), &err) == 0,
                "fill");
    HVS_REQUIRE(avro_value_get_by_name(v, "label", &f, NULL) == 0, "label field");
    hvs_feedback_t got;
    HVS_REQUIRE(avro_value_set_enum(&f, 5) == 0, "avro-c takes any enum index in memory");
    HVS_CHECK(hvs_feedback_read(v, &got, &err) == HVS_EINVAL &&
                  !strcmp(err.reason, HVS_FEEDBACK_R_BAD_LABEL),
              "label 5: %s", err.reason);
    /* a record of another kind has none of the fields */
    hvs_encoder_t *ea;
    HVS_REQUIRE(hvs_encoder_new(s, HVS_SCHEMA_BUILDING, NULL, &ea, &err) == 0, "encoder");
    HVS_CHECK(hvs_feedback_read(hvs_encoder_value(ea), &got, &err) == HVS_EINVAL &&
                  !strcmp(err.reason, HVS_FEEDBACK_R_NO_ALERT_ID),
              "a Building value: %s", err.reason);
    hvs_encoder_destroy(ea);
    hvs_decoder_destroy(d);
    hvs_encoder_destroy(e);
    hvs_serde_destroy(s);
}

/* python3-avro reads the writer's bytes: header, every field, nothing left over. */
static void test_python_reads(void) {
    if (!HVS_TEST_PYTHON3[0]) {
        printf("skipped: no python3\n");
        return;
    }
    hvs_err_t err = {0};
    hvs_serde_t *s;
    hvs_feedback_writer_t *w;
    HVS_REQUIRE(hvs_serde_new(NULL, &s, &err) == 0 && hvs_feedback_writer_new(s, &w, &err) == 0,
                "writer: %s", err.msg);
    hvs_feedback_t recs[3] = {full, bare, full};
    recs[2].label = HVS_FEEDBACK_FALSE_POSITIVE;
    recs[2].root_cause = "vacation";
    recs[2].comment = NULL;
    char paths[3][128], cmd[1024];
    int n = snprintf(cmd, sizeof cmd,
                     "%s %s/tests/common/feedback_read.py %s/schemas/Feedback.avsc",
                     HVS_TEST_PYTHON3, HVS_TEST_SOURCE_DIR, HVS_TEST_SOURCE_DIR);
    for (int i = 0; i < 3; i++) {
        const void *buf;
        size_t len;
        HVS_REQUIRE(hvs_feedback_encode(w, &recs[i], &buf, &len, &err) == 0, "encode: %s", err.msg);
        snprintf(paths[i], sizeof paths[i], "/tmp/hvs-test-feedback-%d-%d.bin", (int)getpid(), i);
        FILE *f = fopen(paths[i], "wb");
        HVS_REQUIRE(f && fwrite(buf, 1, len, f) == len && fclose(f) == 0, "write %s", paths[i]);
        n += snprintf(cmd + n, sizeof cmd - (size_t)n, " %s", paths[i]);
    }
    char *out = NULL;
    int rc = hvs_test_run(cmd, NULL, 0, &out, NULL);
    HVS_CHECK(rc == 0 && out, "python3-avro: exit %d", rc);
    json_t *js[4] = {0};
    int lines = out ? hvs_test_json_lines(out, js, 4) : 0;
    HVS_CHECK(lines == 3, "3 records read, %d lines", lines);
    for (int i = 0; i < lines && i < 3; i++) {
        json_t *v = json_object_get(js[i], "value");
        const hvs_feedback_t *f = &recs[i];
        HVS_CHECK(json_integer_value(json_object_get(js[i], "magic")) == 0 &&
                      json_integer_value(json_object_get(js[i], "id")) == 10 &&
                      json_integer_value(json_object_get(js[i], "rest")) == 0,
                  "record %d: header and length", i);
        HVS_CHECK_EQ_STR(json_string_value(json_object_get(v, "alert_id")), f->alert_id);
        HVS_CHECK_EQ_STR(json_string_value(json_object_get(v, "building_id")), f->building_id);
        HVS_CHECK_EQ_STR(json_string_value(json_object_get(v, "technician_id")), f->technician_id);
        HVS_CHECK_EQ_STR(json_string_value(json_object_get(v, "label")),
                         hvs_feedback_label_name(f->label));
        HVS_CHECK(opt_eq(json_string_value(json_object_get(v, "apartment_id")), f->apartment_id) &&
                      opt_eq(json_string_value(json_object_get(v, "root_cause")), f->root_cause) &&
                      opt_eq(json_string_value(json_object_get(v, "comment")), f->comment),
                  "record %d: optional fields", i);
        HVS_CHECK(!f->apartment_id == json_is_null(json_object_get(v, "apartment_id")),
                  "record %d: null apartment", i);
        HVS_CHECK_EQ_INT(json_integer_value(json_object_get(v, "labelled_at")), f->labelled_at);
    }
    hvs_test_json_lines_free(js, lines < 4 ? lines : 4);
    free(out);
    for (int i = 0; i < 3; i++)
        remove(paths[i]);
    hvs_feedback_writer_destroy(w);
    hvs_serde_destroy(s);
}

static const hvs_test_case_t cases[] = {
    {"label_names_and_parse", test_label_names},
    {"round_trip_every_label_with_and_without_optionals", test_round_trip},
    {"writer_refuses_records_without_ids_or_verdict", test_encode_refuses},
    {"reader_refuses_records_without_ids_or_verdict", test_read_refuses},
    {"python3_avro_reads_the_bytes", test_python_reads},
    HVS_TEST_CASES_END,
};

int main(int argc, char **argv) {
    hvs_log_init("test", HVS_LOG_WARN, NULL);
    return hvs_test_main(cases, argc, argv);
}
