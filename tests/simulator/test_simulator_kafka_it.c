/*
 * test_simulator_kafka_it - the simulator against the real devbroker: what it publishes to
 * readings.raw decodes to exactly what the same seed writes as JSON lines (broken records
 * included, each as its own kind), topology carries every building with its team (HVS_SIM_TEAMS),
 * the messy output drives `hvsctl ingest` into every dead-letter reason the simulator injects,
 * and the messy imperfections (duplicates, reordering, meter replacements) are really in the
 * data.
 */
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hvs/kafka.h"
#include "hvs/log.h"
#include "hvs/reading.h"
#include "hvs/serde.h"
#include "hvs/topics.h"
#include "hvs_test.h"
#include "sim_data.h"

static char g_dir[256];

#define MESSY                                                                                      \
    "--seed 5 --start 2024-11-01T00:00:00Z --days 4 --buildings 3 --apartments-per-building 6 "    \
    "--dup-rate 0.02 --ooo-rate 0.03 --late-batch-rate 0.2 --gap-rate 0.05 --skew-fraction 0.2 "   \
    "--meter-replacement-rate 20 --malformed-rate 0.01"

/* A record as a canonical string: apartment, time and every value. */
static char *canon(const char *apt, int64_t ts, const char *const *types, const char *const *rooms,
                   const double *values, size_t n) {
    char buf[4096];
    int off = snprintf(buf, sizeof buf, "%s|%lld", apt, (long long)ts);
    for (size_t i = 0; i < n && off < (int)sizeof buf - 64; i++)
        off += snprintf(buf + off, sizeof buf - (size_t)off, "|%s:%s:%.1f", types[i],
                        rooms[i] ? rooms[i] : "-", values[i]);
    return strdup(buf);
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Canonical strings of the JSON lines that parse; *syntax = lines that do not (NaN apart). */
static size_t canon_jsonl(const char *txt, size_t len, char ***out, size_t *syntax, size_t *nan) {
    size_t cap = 1024, n = 0;
    char **v = malloc(cap * sizeof *v);
    *syntax = *nan = 0;
    for (const char *p = txt; p < txt + len;) {
        const char *nl = memchr(p, '\n', (size_t)(txt + len - p));
        size_t l = nl ? (size_t)(nl - p) : (size_t)(txt + len - p);
        hvs_reading_t *r = calloc(1, sizeof *r);
        hvs_err_t err;
        if (hvs_reading_parse_json(p, l, r, &err) == 0) {
            const char *types[HVS_READING_MAX_SENSORS], *rooms[HVS_READING_MAX_SENSORS];
            double vals[HVS_READING_MAX_SENSORS];
            for (size_t i = 0; i < r->n; i++) {
                types[i] = r->v[i].sensor_type;
                rooms[i] = r->v[i].room_name[0] ? r->v[i].room_name : NULL;
                vals[i] = r->v[i].value;
            }
            if (n == cap)
                v = realloc(v, (cap *= 2) * sizeof *v);
            v[n++] = canon(r->apartment_id, r->timestamp, types, rooms, vals, r->n);
        } else if (!strcmp(err.reason, HVS_READING_R_NON_FINITE)) {
            (*nan)++;
        } else {
            (*syntax)++;
        }
        free(r);
        p = nl ? nl + 1 : txt + len;
    }
    qsort(v, n, sizeof *v, cmp_str);
    *out = v;
    return n;
}

static void free_strs(char **v, size_t n) {
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static char *run(const char *cmd, size_t *len) {
    char *out = NULL;
    int rc = hvs_test_run(cmd, NULL, 0, &out, len);
    HVS_REQUIRE(rc == 0, "command failed (%d): %s", rc, cmd);
    return out;
}

/* What the consumer of readings.raw, topology and sim.labels saw. */
typedef struct kafka_seen {
    hvs_decoder_t *dec, *dec_bld;
    hvs_reading_codec_t *codec;
    hvs_reading_t *r;
    char **got; /* canonical records without NaN */
    size_t cap, ngot, truncated, nan_got, buildings, labels;
    char teams[8][40]; /* "<building id>=<team>" of the first Building records, "=" when none */
    int32_t bld_schema_id;
} kafka_seen_t;

static void see_message(void *opaque, const rd_kafka_message_t *m) {
    kafka_seen_t *ks = opaque;
    hvs_reading_t *r = ks->r;
    hvs_err_t err;
    const char *topic = rd_kafka_topic_name(m->rkt);
    if (!strcmp(topic, "topology")) {
        avro_value_t *b;
        HVS_REQUIRE(hvs_decoder_decode(ks->dec_bld, m->payload, m->len, &b, &err) == 0,
                    "Building decode: %s", err.msg);
        ks->bld_schema_id = hvs_decoder_last_schema_id(ks->dec_bld);
        const char *team = hvs_serde_field_str(b, "team");
        if (ks->buildings < sizeof ks->teams / sizeof ks->teams[0])
            snprintf(ks->teams[ks->buildings], sizeof ks->teams[0], "%s=%s",
                     hvs_serde_field_str(b, "building_id"), team ? team : "");
        ks->buildings++;
        return;
    }
    if (!strcmp(topic, "sim.labels")) {
        ks->labels++;
        return;
    }
    avro_value_t *v;
    if (hvs_decoder_decode(ks->dec, m->payload, m->len, &v, &err) != 0) {
        ks->truncated += !strcmp(err.reason, HVS_SERDE_R_TRUNCATED) ||
                         !strcmp(err.reason, HVS_SERDE_R_AVRO);
        return;
    }
    HVS_REQUIRE(hvs_reading_from_avro(ks->codec, v, r, &err) == 0, "from avro: %s", err.msg);
    bool has_nan = false;
    const char *types[HVS_READING_MAX_SENSORS], *rooms[HVS_READING_MAX_SENSORS];
    double vals[HVS_READING_MAX_SENSORS];
    for (size_t k = 0; k < r->n; k++) {
        types[k] = r->v[k].sensor_type;
        rooms[k] = r->v[k].room_name[0] ? r->v[k].room_name : NULL;
        vals[k] = r->v[k].value;
        has_nan |= isnan(vals[k]);
    }
    HVS_CHECK((size_t)m->key_len == strlen(r->building_id) &&
                  !memcmp(m->key, r->building_id, m->key_len),
              "message key is not the building id");
    if (has_nan) {
        ks->nan_got++;
        return;
    }
    if (ks->ngot == ks->cap)
        ks->got = realloc(ks->got, (ks->cap *= 2) * sizeof *ks->got);
    ks->got[ks->ngot++] = canon(r->apartment_id, r->timestamp, types, rooms, vals, r->n);
}

/* ---- fixtures, started on first use ------------------------------------------------------ */

static hvs_test_proc_t broker;
static char *jsonl; /* the messy run as JSON lines */
static size_t jlen;
static char **want; /* its canonical records (sorted) */
static size_t nwant, syntax, nan_lines;
static kafka_seen_t seen; /* the same seed published to Kafka, read back */
static bool have_seen;

static void teardown(void) {
    free(seen.r);
    free_strs(seen.got, seen.ngot);
    free_strs(want, nwant);
    free(jsonl);
    hvs_test_proc_stop(&broker);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    hvs_test_run(cmd, NULL, 0, NULL, NULL);
}

static void need_dir(void) {
    if (g_dir[0])
        return;
    hvs_log_init("test", HVS_LOG_WARN, NULL);
    snprintf(g_dir, sizeof g_dir, "/tmp/hvs-sim-kafka-XXXXXX");
    HVS_REQUIRE(mkdtemp(g_dir), "mkdtemp");
    hvs_test_cleanup(teardown);
}

static void need_broker(void) {
    need_dir();
    if (broker.pid)
        return;
    HVS_REQUIRE(hvs_test_devbroker_start(&broker, NULL) == 0, "devbroker");
}

static void need_jsonl(void) {
    need_dir();
    if (jsonl)
        return;
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s --out jsonl " MESSY " 2>%s/jsonl.log", HVS_TEST_SIMULATOR, g_dir);
    jsonl = run(cmd, &jlen);
    nwant = canon_jsonl(jsonl, jlen, &want, &syntax, &nan_lines);
    printf("jsonl: %zu records, %zu cut lines, %zu with NaN\n", nwant, syntax, nan_lines);
}

/* The same seed published to the broker (readings.raw, topology, sim.labels), read back. */
static void need_kafka(void) {
    if (have_seen)
        return;
    need_broker();
    need_jsonl();
    char cmd[2048];
    size_t klen;
    snprintf(cmd, sizeof cmd,
             "HVS_KAFKA_BROKERS=%s %s --out kafka " MESSY
             " --labels-topic sim.labels 2>%s/kafka.log",
             broker.addr, HVS_TEST_SIMULATOR, g_dir);
    free(run(cmd, &klen));

    hvs_serde_t *s;
    hvs_err_t err;
    HVS_REQUIRE(hvs_serde_new(NULL, &s, &err) == 0, "serde");
    hvs_decoder_t *dec, *dec_bld;
    hvs_reading_codec_t *codec;
    HVS_REQUIRE(hvs_decoder_new(s, HVS_SCHEMA_READING, &dec, &err) == 0, "decoder");
    HVS_REQUIRE(hvs_decoder_new(s, HVS_SCHEMA_BUILDING, &dec_bld, &err) == 0, "Building decoder");
    HVS_REQUIRE(hvs_reading_codec_new(s, &codec, &err) == 0, "codec");
    const char *topics[] = {"readings.raw", "topology", "sim.labels"};
    kafka_seen_t k = {.dec = dec,
                      .dec_bld = dec_bld,
                      .codec = codec,
                      .r = calloc(1, sizeof(hvs_reading_t)),
                      .cap = nwant + 1024};
    k.got = malloc(k.cap * sizeof *k.got);
    hvs_test_tail_t t = {.brokers = broker.addr,
                         .topics = topics,
                         .ntopics = 3,
                         .group = "simtest",
                         .assign_ms = 20000,
                         .timeout_ms = 30000,
                         .idle_ms = 3000,
                         .poll_ms = 200,
                         .batch = 512,
                         .commit = true};
    hvs_test_tail(&t, see_message, &k);
    qsort(k.got, k.ngot, sizeof *k.got, cmp_str);
    printf("kafka: %zu records, %zu undecodable, %zu with NaN, %zu buildings, %zu labels\n", k.ngot,
           k.truncated, k.nan_got, k.buildings, k.labels);
    hvs_reading_codec_destroy(codec);
    hvs_decoder_destroy(dec);
    hvs_decoder_destroy(dec_bld);
    hvs_serde_destroy(s);
    k.dec = NULL;
    k.dec_bld = NULL;
    k.codec = NULL;
    seen = k;
    have_seen = true;
}

static void test_messy_run_breaks_records(void) {
    need_jsonl();
    HVS_CHECK(syntax > 0 && nan_lines > 0, "the messy run should break some records (%zu, %zu)",
              syntax, nan_lines);
}

static void test_kafka_equals_jsonl(void) {
    need_kafka();
    size_t ngot = seen.ngot;
    char **got = seen.got;
    HVS_CHECK_EQ_INT(ngot, nwant);
    size_t same = 0;
    for (size_t i = 0; i < ngot && i < nwant; i++)
        same += strcmp(got[i], want[i]) == 0;
    HVS_CHECK(same == nwant, "%zu of %zu records equal between Kafka and JSON lines", same, nwant);
}

static void test_broken_records(void) {
    need_kafka();
    size_t truncated = seen.truncated, nan_got = seen.nan_got;
    HVS_CHECK_EQ_INT(truncated, syntax);
    HVS_CHECK_EQ_INT(nan_got, nan_lines);
}

static int cmp_team(const void *a, const void *b) { return strcmp(a, b); }

/* Every building on topology, as the current Building (schema id 20: v4, with `meter` on the
 * building and on each apartment), each with its team: the default 2 teams round-robin over the
 * buildings in order. */
static void test_topology_and_labels(void) {
    need_kafka();
    size_t buildings = seen.buildings, labels = seen.labels;
    HVS_CHECK_EQ_INT(buildings, 3);
    HVS_CHECK(labels > 0, "labels topic empty");
    HVS_CHECK_EQ_INT(seen.bld_schema_id, 20);
    if (buildings != 3)
        return;
    qsort(seen.teams, 3, sizeof seen.teams[0], cmp_team); /* partitions interleave them */
    HVS_CHECK(!strcmp(seen.teams[0], "bldg_001=team-a") &&
                  !strcmp(seen.teams[1], "bldg_002=team-b") &&
                  !strcmp(seen.teams[2], "bldg_003=team-a"),
              "teams: %s %s %s", seen.teams[0], seen.teams[1], seen.teams[2]);
}

/* The teams of the buildings in a --topology-out file of a short run with `setting`: each line's
 * "team" joined by spaces, "-" for a line without one. */
static void topology_out_teams(const char *setting, char *teams, size_t cap) {
    need_dir();
    char cmd[2048], path[512];
    snprintf(path, sizeof path, "%s/teams.topology", g_dir);
    snprintf(cmd, sizeof cmd,
             "%s %s --out jsonl --seed 3 --start 2024-11-01T00:00:00Z --days 0.05 --buildings 4 "
             "--apartments-per-building 2 --topology-out %s >/dev/null 2>&1",
             setting, HVS_TEST_SIMULATOR, path);
    free(run(cmd, NULL));
    FILE *f = fopen(path, "r");
    HVS_REQUIRE(f, "open %s", path);
    char line[16384];
    size_t o = 0;
    teams[0] = 0;
    while (fgets(line, sizeof line, f)) {
        json_t *b = json_loads(line, 0, NULL);
        HVS_REQUIRE(b, "topology line is JSON: %.80s", line);
        json_t *t = json_object_get(b, "team");
        o += (size_t)snprintf(teams + o, cap - o, "%s%s", o ? " " : "",
                              t ? json_string_value(t) : "-");
        json_decref(b);
    }
    fclose(f);
}

/* HVS_SIM_TEAMS: building i gets team-<letter i % teams>; 0 leaves the field out (null: the
 * default team). */
static void test_teams_setting(void) {
    char teams[256];
    topology_out_teams("", teams, sizeof teams);
    HVS_CHECK(!strcmp(teams, "team-a team-b team-a team-b"), "default 2 teams: %s", teams);
    topology_out_teams("HVS_SIM_TEAMS=3", teams, sizeof teams);
    HVS_CHECK(!strcmp(teams, "team-a team-b team-c team-a"), "3 teams: %s", teams);
    topology_out_teams("HVS_SIM_TEAMS=0", teams, sizeof teams);
    HVS_CHECK(!strcmp(teams, "- - - -"), "no teams: %s", teams);
}

/* The same lines through hvsctl ingest: every injected kind has its dead-letter reason. (After
 * the Kafka read-back: ingest adds to readings.raw.) */
static void test_ingest_dead_letters(void) {
    need_kafka();
    char cmd[2048];
    char path[512];
    snprintf(path, sizeof path, "%s/messy.jsonl", g_dir);
    FILE *f = fopen(path, "w");
    HVS_REQUIRE(f && fwrite(jsonl, 1, jlen, f) == jlen && fclose(f) == 0, "write %s", path);
    snprintf(cmd, sizeof cmd, "HVS_KAFKA_BROKERS=%s %s ingest %s 2>/dev/null", broker.addr,
             HVS_TEST_HVSCTL, path);
    size_t olen;
    char *summary = run(cmd, &olen);
    printf("%s", summary);
    static const char *const reasons[] = {"json_syntax", "non_finite", "value_out_of_range",
                                          "unknown_sensor"};
    for (size_t i = 0; i < 4; i++)
        HVS_CHECK(strstr(summary, reasons[i]) != NULL, "hvsctl ingest saw no %s", reasons[i]);
    free(summary);
}

/* ---- the messy imperfections are in the data ---------------------------------------------- */

static sim_data_t *messy;
static size_t dups, back; /* counted on the data as delivered, before any sorting */

static void messy_teardown(void) {
    if (messy) {
        sim_data_fini(messy);
        free(messy);
    }
}

static sim_data_t *need_messy(void) {
    if (messy)
        return messy;
    need_dir();
    char cmd[2048];
    size_t len;
    snprintf(cmd, sizeof cmd,
             "%s --out jsonl " MESSY " --labels-out %s/m.labels --topology-out %s/m.topology "
             "2>/dev/null",
             HVS_TEST_SIMULATOR, g_dir, g_dir);
    char *out = run(cmd, &len);
    char lp[512], tp[512];
    snprintf(lp, sizeof lp, "%s/m.labels", g_dir);
    snprintf(tp, sizeof tp, "%s/m.topology", g_dir);
    sim_data_t *d = calloc(1, sizeof *d);
    sim_data_load(d, out, len, lp, NULL, tp);

    /* Duplicates: identical lines. Reordering: an apartment's timestamps going back. */
    for (int b = 0; b < 3; b++)
        for (int a = 0; a < 6; a++) {
            sd_series_t *s = &d->apt[b][a];
            for (size_t i = 1; i < s->n; i++)
                back += s->ev[i].ts < s->ev[i - 1].ts && s->ev[i].line != s->ev[i - 1].line;
        }
    char **lines;
    size_t syn, nn;
    size_t n = canon_jsonl(out, len, &lines, &syn, &nn);
    for (size_t i = 1; i < n; i++)
        dups += strcmp(lines[i], lines[i - 1]) == 0;
    free_strs(lines, n);
    printf("messy: %zu duplicate records, %zu steps back in time\n", dups, back);
    free(out);
    messy = d;
    hvs_test_cleanup(messy_teardown);
    return messy;
}

static void test_duplicates_and_reordering(void) {
    need_messy();
    HVS_CHECK(dups > 0, "no duplicates delivered");
    HVS_CHECK(back > 0, "nothing delivered out of order");
}

/* Counters, sorted by time, go down only at labelled meter replacements. */
static void test_counters_restart_where_labelled(void) {
    sim_data_t *d = need_messy();
    size_t replacements = 0, unexplained = 0, explained = 0;
    for (size_t i = 0; i < d->nlabels; i++)
        replacements += strncmp(d->labels[i].type, "meter_replacement", 17) == 0;
    for (int b = 0; b < 3; b++)
        for (int a = 0; a < 6; a++) {
            sd_series_t *s = &d->apt[b][a];
            sd_sort(s);
            double last[2] = {-1, -1};
            int64_t last_ts[2] = {0, 0};
            for (size_t i = 0; i < s->n; i++) {
                int k = s->ev[i].sensor;
                double v = s->ev[i].value;
                if (k > 1 || !(v >= 0))
                    continue; /* broken on purpose: dead-lettered downstream */
                if (v < last[k] - 1e-9) {
                    bool labelled = false;
                    for (size_t j = 0; j < d->nlabels; j++) {
                        sd_label_t *l = &d->labels[j];
                        /* Replaced between this counter's previous report and this one
                         * (2 h of slack for skewed clocks). */
                        if (l->building == b && l->apartment == a &&
                            !strncmp(l->type, "meter_replacement", 17) &&
                            l->start <= s->ev[i].ts + 2 * 3600000LL &&
                            l->start >= last_ts[k] - 2 * 3600000LL)
                            labelled = true;
                    }
                    if (labelled)
                        explained++;
                    else
                        unexplained++, printf("counter %d of %d/%d down %.1f -> %.1f at %lld\n", k,
                                              b, a, last[k], v, (long long)s->ev[i].ts);
                }
                last[k] = v;
                last_ts[k] = s->ev[i].ts;
            }
        }
    printf("meter replacements labelled %zu, counter restarts seen %zu\n", replacements, explained);
    HVS_CHECK(replacements > 0, "no meter replacement injected");
    HVS_CHECK(explained > 0, "no counter restart seen");
    HVS_CHECK_EQ_INT(unexplained, 0);
}

static void test_delivery_labels(void) {
    sim_data_t *d = need_messy();
    static const char *const kinds[] = {"gap", "late_batch", "clock_skew"};
    for (size_t k = 0; k < 3; k++) {
        size_t c = 0;
        for (size_t i = 0; i < d->nlabels; i++)
            c += !strcmp(d->labels[i].type, kinds[k]) && !strcmp(d->labels[i].category, "delivery");
        HVS_CHECK(c > 0, "no %s label", kinds[k]);
    }
}

static const hvs_test_case_t cases[] = {
    {"messy_run_breaks_records", test_messy_run_breaks_records},
    {"kafka_records_equal_jsonl", test_kafka_equals_jsonl},
    {"broken_records_kept_apart", test_broken_records},
    {"topology_and_labels_published", test_topology_and_labels},
    {"teams_setting_on_topology_out", test_teams_setting},
    {"ingest_dead_letters_every_kind", test_ingest_dead_letters},
    {"duplicates_and_reordering_delivered", test_duplicates_and_reordering},
    {"counters_restart_only_where_labelled", test_counters_restart_where_labelled},
    {"delivery_labels_present", test_delivery_labels},
    HVS_TEST_CASES_END,
};

int main(int argc, char **argv) { return hvs_test_main(cases, argc, argv); }
