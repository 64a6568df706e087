/*
 * test_topology_it - the topology follower over a real hvs-devbroker: Building records produced
 * as Avro come back with every field the workers use (archetype, holiday region, commissioning,
 * location, area, sorted apartments, partition, team: "" when absent); a record written with
 * Building v1 (schema id 3, before `team`) still reads; a newer record replaces a building and
 * bumps its version; deleted = true and a tombstone remove one; an undecodable record is counted
 * and skipped while the rest still applies. The heated area every worker uses
 * (hvs_building_area): heated_area_m2, else the sum of the apartments' areas when every one has
 * one, else NaN.
 */
#include <math.h>

#include "hvs/embedded.h"
#include "hvs/kafka.h"
#include "hvs/log.h"
#include "hvs/serde.h"
#include "hvs/topology.h"
#include "hvs_test.h"

static hvs_serde_t *serde;
static hvs_encoder_t *enc;
static hvs_producer_t *prod;

/* A Building as JSON; team NULL leaves the field out (what a v1 record cannot carry). */
static void building_json(char *json, size_t cap, const char *id, const char *region, double lat,
                          int napts, bool deleted, const char *team) {
    char apts[2048] = "", tm[128] = "";
    size_t o = 0;
    /* apartments listed in reverse order: the follower sorts them */
    for (int i = napts - 1; i >= 0; i--)
        o += (size_t)snprintf(apts + o, sizeof apts - o,
                              "%s{\"apartment_id\":\"apt_%02d\",\"area_m2\":70.0,\"floor\":1,"
                              "\"rooms\":[],\"occupied_since\":null}",
                              o ? "," : "", i);
    if (team)
        snprintf(tm, sizeof tm, ",\"team\":\"%s\"", team);
    snprintf(
        json, cap,
        "{\"building_id\":\"%s\",\"archetype\":\"passive\",\"commissioning_date\":1577836800000,"
        "\"latitude\":%.4f,\"longitude\":8.5417,\"heated_area_m2\":2400.5,"
        "\"construction_year\":2015,\"insulation\":null,\"holiday_region\":%s%s%s,"
        "\"apartments\":[%s],\"updated_at\":1700000000000,\"deleted\":%s%s}",
        id, lat, region ? "\"" : "", region ? region : "null", region ? "\"" : "", apts,
        deleted ? "true" : "false", tm);
}

static void send_raw(const char *id, const void *value, size_t len);

static void send_building_team(const char *id, const char *region, double lat, int napts,
                               bool deleted, const char *team) {
    char json[4096];
    building_json(json, sizeof json, id, region, lat, napts, deleted, team);
    hvs_err_t err = {0};
    avro_value_t *v = hvs_encoder_value(enc);
    HVS_REQUIRE(hvs_serde_value_from_json(serde, v, json, strlen(json), &err) == 0, "json: %s",
                err.msg);
    const void *buf;
    size_t len;
    HVS_REQUIRE(hvs_encoder_encode(enc, &buf, &len, &err) == 0, "encode: %s", err.msg);
    HVS_REQUIRE(hvs_producer_send(prod, "topology", RD_KAFKA_PARTITION_UA, id, strlen(id), buf, len,
                                  &err) == 0,
                "send: %s", err.msg);
}

static void send_building(const char *id, const char *region, double lat, int napts, bool deleted) {
    send_building_team(id, region, lat, napts, deleted, NULL);
}

/* A Building written by a producer still on Building v1 (history/Building.v1.avsc, schema id 3,
 * before `team` existed): the Avro body under its own id, as that producer would send it. */
static void send_building_v1(const char *id, const char *region) {
    char json[4096];
    building_json(json, sizeof json, id, region, 46.5, 2, false, NULL);
    const struct hvs_embedded_file *f = hvs_embedded_find("history/Building.v1.avsc");
    HVS_REQUIRE(f, "Building v1 compiled in");
    avro_schema_t v1;
    HVS_REQUIRE(avro_schema_from_json_length((const char *)f->data, f->len, &v1) == 0, "parse v1");
    avro_value_iface_t *iface = avro_generic_class_from_schema(v1);
    avro_value_t val;
    HVS_REQUIRE(avro_generic_value_new(iface, &val) == 0, "v1 value");
    hvs_err_t err = {0};
    HVS_REQUIRE(hvs_serde_value_from_json(serde, &val, json, strlen(json), &err) == 0,
                "v1 json: %s", err.msg);
    char buf[4096] = {0, 0, 0, 0, 3}; /* id 3 = history/Building.v1.avsc in schema-ids.tsv */
    avro_writer_t w = avro_writer_memory(buf + 5, sizeof buf - 5);
    HVS_REQUIRE(avro_value_write(w, &val) == 0, "write v1: %s", avro_strerror());
    size_t len = 5 + (size_t)avro_writer_tell(w);
    avro_writer_free(w);
    avro_value_decref(&val);
    avro_value_iface_decref(iface);
    avro_schema_decref(v1);
    send_raw(id, buf, len);
}

static void send_raw(const char *id, const void *value, size_t len) {
    hvs_err_t err = {0};
    HVS_REQUIRE(hvs_producer_send(prod, "topology", RD_KAFKA_PARTITION_UA, id, strlen(id), value,
                                  len, &err) == 0,
                "send: %s", err.msg);
}

/* The fixture the cases share, started by the first case that needs it: a devbroker with 4
 * partitions, and a follower that has read the topic holding the records below. */
static hvs_test_proc_t broker;
static hvs_topology_t *topo;

static void stop_follower(void) {
    hvs_topology_destroy(topo);
    hvs_encoder_destroy(enc);
    hvs_producer_destroy(prod);
    hvs_serde_destroy(serde);
    hvs_test_proc_stop(&broker);
}

static hvs_topology_t *follower(void) {
    if (topo)
        return topo;
    HVS_REQUIRE(hvs_test_devbroker_start(&broker, "--partitions 4") == 0, "devbroker");
    hvs_test_cleanup(stop_follower);
    hvs_err_t err = {0};
    HVS_REQUIRE(hvs_serde_new(NULL, &serde, &err) == 0, "serde");
    hvs_kafka_conf_t kc = {
        .brokers = broker.addr, .group = "t", .client_id = "test", .fetch_wait_max_ms = 10};
    HVS_REQUIRE(hvs_producer_new(&kc, &prod, &err) == 0, "producer: %s", err.msg);
    HVS_REQUIRE(hvs_encoder_new(serde, HVS_SCHEMA_BUILDING, "topology", &enc, &err) == 0, "enc");

    send_building("bldg_b", "CH-BE", 46.95, 3, false); /* no team: the default team */
    send_building_team("bldg_a", "CH-ZH", 47.37, 2, false, "team-b");
    send_building("bldg_c", NULL, 46.20, 1, false);
    send_building("bldg_d", "CH-GE", 46.20, 1, false);
    send_raw("bldg_x", "\x00\x00\x00\x00\x03garbage", 12); /* Building's id, then no Building */
    send_building_team("bldg_a", "CH-ZH", 47.40, 4, false, "team-a"); /* a newer bldg_a */
    send_building_v1("bldg_v1", "CH-BS");          /* written by a Building v1 producer (id 3) */
    send_building("bldg_c", NULL, 46.20, 1, true); /* decommissioned */
    send_raw("bldg_d", NULL, 0);                   /* tombstone */
    send_building("bldg_{a}", "CH-ZH", 47.0, 1, false);     /* braces: skipped (bad_id) */
    send_building("bldg_\\u0085", "CH-ZH", 47.0, 1, false); /* a C1 control: skipped */
    HVS_REQUIRE(hvs_producer_flush(prod, 10000, &err) == 0, "flush: %s", err.msg);

    HVS_REQUIRE(hvs_topology_new(&kc, serde, "topology", &topo, &err) == 0, "topology: %s",
                err.msg);
    hvs_topology_poll(topo, 20000);
    return topo;
}

/* Read from the beginning: the buildings that remain, sorted, a newer record replacing one with
 * every field the workers use. */
static void test_newer_record_wins(void) {
    hvs_topology_t *t = follower();
    HVS_CHECK(hvs_topology_caught_up(t), "caught up");
    size_t n;
    const hvs_building_t *all = hvs_topology_buildings(t, &n);
    HVS_CHECK(n == 3 && strcmp(all[0].id, "bldg_a") == 0 && strcmp(all[1].id, "bldg_b") == 0 &&
                  strcmp(all[2].id, "bldg_v1") == 0,
              "buildings a, b and v1 remain, sorted: %zu", n);
    const hvs_building_t *a = hvs_topology_find(t, "bldg_a");
    HVS_CHECK(a && a->napts == 4 && strcmp(a->apts[0], "apt_00") == 0 &&
                  strcmp(a->apts[3], "apt_03") == 0,
              "newer record wins, apartments sorted");
    HVS_CHECK(a && a->version == 2 && fabs(a->latitude - 47.40) < 1e-9 &&
                  fabs(a->longitude - 8.5417) < 1e-9,
              "version %llu, lat %g", a ? (unsigned long long)a->version : 0, a ? a->latitude : 0);
    HVS_CHECK(a && strcmp(a->archetype, "passive") == 0 &&
                  strcmp(a->holiday_region, "CH-ZH") == 0 && a->commissioning == 1577836800000LL &&
                  fabs(a->heated_area_m2 - 2400.5) < 1e-9,
              "archetype, region, commissioning, area");
    HVS_CHECK(a && strcmp(a->team, "team-a") == 0, "the newer record's team: %s",
              a ? a->team : "?");
    const hvs_building_t *b = hvs_topology_find(t, "bldg_b");
    HVS_CHECK(b && b->partition >= 0 && b->partition < 4 && b->version == 1, "partition %d",
              b ? b->partition : -1);
    HVS_CHECK(b && strcmp(b->team, "") == 0, "no team: \"\" (the default team), got \"%s\"",
              b ? b->team : "?");
}

/* A record a Building v1 producer wrote (schema id 3, no `team`) still comes through, every
 * field the workers use with it, and reads as the default team (""). */
static void test_v1_record_reads(void) {
    hvs_topology_t *t = follower();
    const hvs_building_t *b = hvs_topology_find(t, "bldg_v1");
    HVS_CHECK(b, "the v1 record applied");
    if (!b)
        return;
    HVS_CHECK(strcmp(b->team, "") == 0, "v1: default team, got \"%s\"", b->team);
    HVS_CHECK(b->napts == 2 && strcmp(b->apts[0], "apt_00") == 0 &&
                  strcmp(b->archetype, "passive") == 0 && strcmp(b->holiday_region, "CH-BS") == 0 &&
                  fabs(b->latitude - 46.5) < 1e-9 && b->commissioning == 1577836800000LL,
              "v1: apartments, archetype, region, location, commissioning");
}

/* deleted = true and a tombstone remove a building; an undecodable record and records whose
 * building id fails the id rule (ids.h) are counted and skipped. */
static void test_removals_and_bad_record(void) {
    hvs_topology_t *t = follower();
    HVS_CHECK(!hvs_topology_find(t, "bldg_c"), "deleted = true removes it");
    HVS_CHECK(!hvs_topology_find(t, "bldg_d"), "a tombstone removes it");
    HVS_CHECK(hvs_topology_bad(t) == 3, "undecodable and bad-id records counted: %llu",
              (unsigned long long)hvs_topology_bad(t));
    HVS_CHECK(!hvs_topology_find(t, "bldg_{a}"), "a brace id is not a known building");
}

static void test_apartment_lookup(void) {
    hvs_topology_t *t = follower();
    HVS_CHECK(hvs_topology_apartments(t, "bldg_b") == 3 && hvs_topology_apartments(t, "nope") == -1,
              "apartment counts");
    HVS_CHECK(hvs_topology_has_apartment(t, "bldg_b", "apt_02") &&
                  !hvs_topology_has_apartment(t, "bldg_b", "apt_09"),
              "apartment lookup");
}

/* Later records arrive while it follows. */
static void test_follows_later_records(void) {
    hvs_topology_t *t = follower();
    hvs_err_t err = {0};
    send_building("bldg_e", "CH-LU", 47.05, 2, false);
    hvs_producer_flush(prod, 10000, &err);
    int applied = 0;
    for (int i = 0; i < 200 && !hvs_topology_find(t, "bldg_e"); i++) {
        usleep(20000); /* once caught up, poll only takes what is already fetched */
        applied += hvs_topology_poll(t, 0);
    }
    const hvs_building_t *e = hvs_topology_find(t, "bldg_e");
    HVS_CHECK(e && applied == 1 && strcmp(e->holiday_region, "CH-LU") == 0, "followed: %d",
              applied);
}

/* A Building given as JSON text. */
static void send_json(const char *id, const char *json) {
    hvs_err_t err = {0};
    avro_value_t *v = hvs_encoder_value(enc);
    const void *buf;
    size_t len;
    HVS_REQUIRE(hvs_serde_value_from_json(serde, v, json, strlen(json), &err) == 0 &&
                    hvs_encoder_encode(enc, &buf, &len, &err) == 0,
                "json %s: %s", id, err.msg);
    send_raw(id, buf, len);
}

#define AREA_BUILDING(id, area, apts)                                                              \
    "{\"building_id\":\"" id "\",\"archetype\":\"passive\",\"commissioning_date\":0,"              \
    "\"latitude\":47.0,\"longitude\":8.0,\"heated_area_m2\":" area ",\"holiday_region\":null,"     \
    "\"apartments\":[" apts "],\"updated_at\":1,\"deleted\":false}"
#define APT(id, area) "{\"apartment_id\":\"" id "\",\"area_m2\":" area "}"

/* The one area rule: given heated_area_m2 wins; else the apartments' sum when every apartment
 * has an area; else NaN - computed by the follower from the record and by the pure function. */
static void test_heated_area_derived(void) {
    hvs_topology_t *t = follower();
    hvs_err_t err = {0};
    send_json("bldg_f", AREA_BUILDING("bldg_f", "null", APT("f1", "70.0") "," APT("f2", "55.5")));
    send_json("bldg_g", AREA_BUILDING("bldg_g", "null", APT("g1", "70.0") "," APT("g2", "null")));
    send_json("bldg_h", AREA_BUILDING("bldg_h", "null", ""));
    send_json("bldg_i", AREA_BUILDING("bldg_i", "300.0", APT("i1", "70.0") "," APT("i2", "null")));
    HVS_REQUIRE(hvs_producer_flush(prod, 10000, &err) == 0, "flush: %s", err.msg);
    for (int i = 0; i < 250 && !(hvs_topology_find(t, "bldg_f") && hvs_topology_find(t, "bldg_g") &&
                                 hvs_topology_find(t, "bldg_h") && hvs_topology_find(t, "bldg_i"));
         i++) {
        usleep(20000);
        hvs_topology_poll(t, 0);
    }
    const hvs_building_t *f = hvs_topology_find(t, "bldg_f"), *g = hvs_topology_find(t, "bldg_g"),
                         *h = hvs_topology_find(t, "bldg_h"), *i = hvs_topology_find(t, "bldg_i");
    HVS_REQUIRE(f && g && h && i, "the four buildings arrived");
    HVS_CHECK(isnan(f->heated_area_m2) && hvs_building_area(f) == 70.0 + 55.5 &&
                  strcmp(hvs_building_area_source(f), "apartments") == 0,
              "no heated_area_m2, every apartment with an area: their sum (%g)",
              hvs_building_area(f));
    HVS_CHECK(isnan(hvs_building_area(g)) && strcmp(hvs_building_area_source(g), "none") == 0,
              "one apartment without an area: none (%g)", hvs_building_area(g));
    HVS_CHECK(isnan(hvs_building_area(h)) && strcmp(hvs_building_area_source(h), "none") == 0,
              "no apartments: none");
    HVS_CHECK(hvs_building_area(i) == 300.0 &&
                  strcmp(hvs_building_area_source(i), "heated_area_m2") == 0,
              "heated_area_m2 given: it wins (%g)", hvs_building_area(i));
    const hvs_building_t *a = hvs_topology_find(t, "bldg_a");
    HVS_CHECK(a && hvs_building_area(a) == 2400.5 && a->apts_area_m2 == 4 * 70.0,
              "bldg_a: given area, apartments' sum kept beside it");
    double xs[] = {10.0, 20.0, NAN}, neg[] = {10.0, -1.0};
    HVS_CHECK(hvs_topology_area(NAN, xs, 2) == 30.0 && isnan(hvs_topology_area(NAN, xs, 3)) &&
                  hvs_topology_area(5.0, xs, 3) == 5.0 && hvs_topology_area(0.0, xs, 2) == 30.0 &&
                  isnan(hvs_topology_area(NAN, neg, 2)) && isnan(hvs_topology_area(NAN, xs, 0)),
              "hvs_topology_area: given > 0 wins, else a full sum of positive areas, else NaN");
    HVS_CHECK(isnan(hvs_building_area(NULL)), "unknown building: NaN");
}

static const hvs_test_case_t cases[] = {
    {"newer_record_replaces_building_with_every_field", test_newer_record_wins},
    {"building_v1_record_reads_as_default_team", test_v1_record_reads},
    {"deleted_and_tombstone_remove_bad_record_skipped", test_removals_and_bad_record},
    {"apartments_counted_and_looked_up", test_apartment_lookup},
    {"follows_records_produced_later", test_follows_later_records},
    {"heated_area_given_or_derived_from_apartments", test_heated_area_derived},
    HVS_TEST_CASES_END,
};

int main(int argc, char **argv) {
    hvs_log_init("test", HVS_LOG_WARN, NULL);
    return hvs_test_main(cases, argc, argv);
}
