/*
 * hvsctl topology as a real process against a real hvs-devbroker:
 *  - a file with bad lines (missing latitude, unknown holiday region, duplicate apartment,
 *    area <= 0, a building twice, not JSON, a CSV row disagreeing with its building) loads
 *    nothing: exit 1, every error named by its line, the topic still empty;
 *  - the sample JSON lines and CSV (tests/data/topology.sample.*) load: "loaded N buildings",
 *    each record read back from `topology` keyed by its building, its fields compared one by
 *    one with values written here (ISO dates converted independently with timegm);
 *  - list prints one line per building with the area rule's result; show prints the JSON and
 *    "not forecastable: no heated area" for a building with neither heated_area_m2 nor an area
 *    on every apartment;
 *  - delete writes a tombstone: list and show no longer have it, and a topology follower
 *    (hvs_topology, what every worker reads) that had the building drops it.
 */
#include <jansson.h>
#include <math.h>
#include <time.h>

#include "hvs/kafka.h"
#include "hvs/log.h"
#include "hvs/serde.h"
#include "hvs/topology.h"
#include "hvs_test.h"

static hvs_test_proc_t broker;
static char env[256];

static void stop(void) { hvs_test_proc_stop(&broker); }

static void start(void) {
    if (broker.pid)
        return;
    HVS_REQUIRE(hvs_test_devbroker_start(&broker, "--partitions 3") == 0, "devbroker");
    hvs_test_cleanup(stop);
    snprintf(env, sizeof env, "env HVS_KAFKA_BROKERS=%s HVS_KAFKA_FETCH_WAIT_MAX_MS=10",
             broker.addr);
}

/* Run `hvsctl ARGS` with stderr folded into *out; the exit status. */
static int hvsctl(const char *args, char **out) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s %s %s 2>&1", env, HVS_TEST_HVSCTL, args);
    size_t len;
    return hvs_test_run(cmd, NULL, 0, out, &len);
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    HVS_REQUIRE(f && fputs(text, f) >= 0 && fclose(f) == 0, "write %s", path);
}

static int64_t ms_of_date(int y, int m, int d) {
    struct tm tm = {.tm_year = y - 1900, .tm_mon = m - 1, .tm_mday = d};
    return (int64_t)timegm(&tm) * 1000;
}

/* The topic's records by key (latest wins; a tombstone: JSON null), read with hvsctl tail. */
static json_t *topic_state(void) {
    json_t *all = hvs_test_tail_json(env, "topology", NULL);
    HVS_REQUIRE(all, "hvsctl tail topology");
    json_t *st = json_object();
    size_t i;
    json_t *m;
    json_array_foreach(all, i, m) {
        const char *k = json_string_value(json_object_get(m, "key"));
        json_t *v = json_object_get(m, "value");
        if (k)
            json_object_set(st, k, v ? v : json_null());
    }
    json_decref(all);
    return st;
}

static bool has_line(const char *out, const char *want) { return out && strstr(out, want); }

/* ---- nothing half-loaded -------------------------------------------------------------------- */

static void test_bad_file_loads_nothing(void) {
    start();
    char path[128], *out = NULL;
    snprintf(path, sizeof path, "/tmp/hvs-topo-bad-%d.jsonl", (int)getpid());
#define OK_B(id)                                                                                   \
    "{\"building_id\":\"" id "\",\"archetype\":\"passive\",\"commissioning_date\":0,"              \
    "\"latitude\":47.0,\"longitude\":8.0,\"heated_area_m2\":100.0,\"apartments\":[]}\n"
    write_file(path, OK_B("B1") /* line 1: valid */
               "{\"building_id\":\"B12\",\"archetype\":\"passive\",\"commissioning_date\":0,"
               "\"longitude\":8.0,\"apartments\":[]}\n" /* line 2: no latitude */
               "{\"building_id\":\"B13\",\"archetype\":\"passive\",\"commissioning_date\":0,"
               "\"latitude\":47.0,\"longitude\":8.0,\"holiday_region\":\"XX-NOPE\","
               "\"apartments\":[]}\n" /* line 3: unknown region */
               "\n"                   /* line 4: blank, skipped */
               "{\"building_id\":\"B15\",\"archetype\":\"passive\",\"commissioning_date\":0,"
               "\"latitude\":47.0,\"longitude\":8.0,\"heated_area_m2\":0,\"apartments\":["
               "{\"apartment_id\":\"a1\"},{\"apartment_id\":\"a1\"}]}\n" /* line 5 */
               OK_B("B1")                                                /* line 6: B1 again */
               "{\"building_id\":\"B17\",\"latitude\":-91}\n"            /* line 7 */
               "not json\n" /* line 8 */);
    char args[256];
    snprintf(args, sizeof args, "topology load %s", path);
    int rc = hvsctl(args, &out);
    HVS_CHECK(rc == 1, "exit 1 on a bad file: %d", rc);
    HVS_CHECK(has_line(out, "line 2: building B12: missing latitude"), "missing latitude: %s", out);
    HVS_CHECK(has_line(out, "line 3: building B13: unknown holiday_region \"XX-NOPE\""),
              "unknown region named");
    HVS_CHECK(has_line(out, "line 5: building B15: duplicate apartment a1") &&
                  has_line(out, "line 5: building B15: heated_area_m2 must be > 0"),
              "duplicate apartment and area <= 0");
    HVS_CHECK(has_line(out, "line 6: building B1: duplicate building (already on line 1)"),
              "building twice");
    HVS_CHECK(has_line(out, "line 7: building B17: missing archetype") &&
                  has_line(out, "line 7: building B17: latitude -91 out of range"),
              "line 7: every error of the line");
    HVS_CHECK(has_line(out, "line 8: not JSON"), "not JSON");
    HVS_CHECK(has_line(out, "on 6 lines: nothing loaded") && !has_line(out, "line 1:") &&
                  !has_line(out, "line 4:"),
              "summary; the good and blank lines not blamed: %s", out);
    free(out);
    remove(path);

    /* CSV (with a byte order mark): a row disagreeing with its building's first row, an apartment twice */
    snprintf(path, sizeof path, "/tmp/hvs-topo-bad-%d.csv", (int)getpid());
    write_file(path, "\xEF\xBB\xBF" /* a spreadsheet's byte order mark */
                     "building_id,archetype,commissioning_date,latitude,longitude,apartment_id,"
                     "apartment_area_m2\n"
                     "C1,passive,2020-01-01,47.0,8.0,a1,50\n"
                     "C1,passive,2020-01-01,47.5,8.0,a2,50\n"
                     "C1,passive,2020-01-01,47.0,8.0,a1,60\n");
    snprintf(args, sizeof args, "topology load %s", path);
    rc = hvsctl(args, &out);
    HVS_CHECK(rc == 1 && has_line(out, "line 3: building C1: latitude 47.5 differs from line 2") &&
                  has_line(out, "line 4: building C1: duplicate apartment a1 (also on line 2)"),
              "CSV rows named: rc %d %s", rc, out);
    free(out);
    remove(path);

    json_t *st = topic_state();
    HVS_CHECK(json_object_size(st) == 0, "nothing produced: %zu records on topology",
              json_object_size(st));
    json_decref(st);
}

/* ---- loads, read back field by field -------------------------------------------------------- */

static bool num_is(json_t *o, const char *k, double want) {
    json_t *v = json_object_get(o, k);
    return json_is_number(v) && fabs(json_number_value(v) - want) < 1e-9;
}
static bool str_is(json_t *o, const char *k, const char *want) {
    const char *s = json_string_value(json_object_get(o, k));
    return want ? s && strcmp(s, want) == 0 : json_is_null(json_object_get(o, k));
}
static bool null_is(json_t *o, const char *k) { return json_is_null(json_object_get(o, k)); }

static json_t *apt(json_t *b, size_t i) {
    return json_array_get(json_object_get(b, "apartments"), i);
}

static void test_load_jsonl(void) {
    start();
    char args[512], *out = NULL;
    int64_t before = (int64_t)time(NULL) * 1000;
    snprintf(args, sizeof args, "topology load %s/tests/data/topology.sample.jsonl",
             HVS_TEST_SOURCE_DIR);
    int rc = hvsctl(args, &out);
    HVS_CHECK(rc == 0 && has_line(out, "loaded 2 buildings"), "load: rc %d %s", rc, out);
    free(out);
    json_t *st = topic_state();
    json_t *zh = json_object_get(st, "bldg_zh_01"), *by = json_object_get(st, "bldg_by_02");
    HVS_REQUIRE(zh && by, "both records on topology, keyed by building");
    HVS_CHECK(str_is(zh, "building_id", "bldg_zh_01") && str_is(zh, "archetype", "modern_dense") &&
                  num_is(zh, "commissioning_date", (double)ms_of_date(2021, 9, 1)) &&
                  num_is(zh, "latitude", 47.3769) && num_is(zh, "longitude", 8.5417) &&
                  num_is(zh, "heated_area_m2", 1840.0) && num_is(zh, "construction_year", 2019) &&
                  str_is(zh, "insulation", "Minergie") && str_is(zh, "holiday_region", "CH-ZH") &&
                  str_is(zh, "team", "team-zurich") &&
                  json_is_false(json_object_get(zh, "deleted")),
              "bldg_zh_01 fields");
    int64_t upd = json_integer_value(json_object_get(zh, "updated_at"));
    HVS_CHECK(upd >= before && upd <= before + 120000, "updated_at defaults to now: %lld",
              (long long)upd);
    json_t *a0 = apt(zh, 0), *rooms = json_object_get(a0, "rooms");
    HVS_CHECK(json_array_size(json_object_get(zh, "apartments")) == 2 &&
                  str_is(a0, "apartment_id", "apt_101") && num_is(a0, "area_m2", 72.5) &&
                  num_is(a0, "floor", 1) && null_is(a0, "occupied_since") &&
                  json_array_size(rooms) == 2 &&
                  str_is(json_array_get(rooms, 0), "room_name", "living_room") &&
                  num_is(json_array_get(rooms, 0), "window_area_m2", 6.5) &&
                  num_is(json_array_get(rooms, 1), "area_m2", 14.0) &&
                  str_is(apt(zh, 1), "apartment_id", "apt_102") &&
                  num_is(apt(zh, 1), "area_m2", 95.0) &&
                  json_array_size(json_object_get(apt(zh, 1), "rooms")) == 0,
              "bldg_zh_01 apartments and rooms");
    HVS_CHECK(num_is(by, "commissioning_date", 1262304000000.0) && null_is(by, "heated_area_m2") &&
                  null_is(by, "construction_year") && null_is(by, "team") &&
                  str_is(by, "holiday_region", "DE-BY") &&
                  json_array_size(json_object_get(by, "apartments")) == 3 &&
                  num_is(apt(by, 0), "occupied_since", (double)ms_of_date(2010, 2, 1)) &&
                  num_is(apt(by, 0), "floor", 0) && num_is(apt(by, 2), "area_m2", 84.5),
              "bldg_by_02 fields (absent optional fields null)");
    json_decref(st);
}

static void test_load_csv(void) {
    start();
    char args[512], *out = NULL;
    snprintf(args, sizeof args, "topology load %s/tests/data/topology.sample.csv",
             HVS_TEST_SOURCE_DIR);
    int rc = hvsctl(args, &out);
    HVS_CHECK(rc == 0 && has_line(out, "loaded 2 buildings"), "load csv: rc %d %s", rc, out);
    free(out);
    json_t *st = topic_state();
    json_t *be = json_object_get(st, "bldg_be_03"), *ge = json_object_get(st, "bldg_ge_04");
    HVS_REQUIRE(be && ge, "both CSV buildings on topology");
    HVS_CHECK(str_is(be, "archetype", "passive") &&
                  num_is(be, "commissioning_date", (double)ms_of_date(2023, 10, 1)) &&
                  num_is(be, "latitude", 46.948) && num_is(be, "longitude", 7.4474) &&
                  null_is(be, "heated_area_m2") && num_is(be, "construction_year", 2022) &&
                  str_is(be, "insulation", "Minergie-P, triple glazing") &&
                  str_is(be, "holiday_region", "CH-BE") && null_is(be, "team"),
              "bldg_be_03: building columns (quoted comma, empty cells null)");
    HVS_CHECK(json_array_size(json_object_get(be, "apartments")) == 3 &&
                  str_is(apt(be, 0), "apartment_id", "apt_a1") &&
                  num_is(apt(be, 0), "area_m2", 55.0) && num_is(apt(be, 0), "floor", 0) &&
                  num_is(apt(be, 0), "occupied_since", (double)ms_of_date(2023, 11, 1)) &&
                  str_is(apt(be, 2), "apartment_id", "apt_a3") &&
                  num_is(apt(be, 2), "area_m2", 81.5) && num_is(apt(be, 2), "floor", 2) &&
                  null_is(apt(be, 2), "occupied_since"),
              "bldg_be_03: one apartment per row, in order");
    HVS_CHECK(num_is(ge, "heated_area_m2", 2400.0) && str_is(ge, "team", "team-geneva") &&
                  null_is(ge, "insulation") &&
                  json_array_size(json_object_get(ge, "apartments")) == 2 &&
                  null_is(apt(ge, 1), "area_m2") && num_is(apt(ge, 1), "floor", 4),
              "bldg_ge_04");
    json_decref(st);
}

/* ---- list, show, delete; the followers' view ------------------------------------------------ */

static void test_list_show(void) {
    start();
    char path[128], args[256], *out = NULL;
    snprintf(path, sizeof path, "/tmp/hvs-topo-noarea-%d.jsonl", (int)getpid());
    write_file(path, "{\"building_id\":\"bldg_na\",\"archetype\":\"passive\","
                     "\"commissioning_date\":\"2022-01-01\",\"latitude\":47.0,\"longitude\":8.0,"
                     "\"apartments\":[{\"apartment_id\":\"x1\",\"area_m2\":40.0},"
                     "{\"apartment_id\":\"x2\"}]}\n");
    snprintf(args, sizeof args, "topology load %s", path);
    int rc = hvsctl(args, &out);
    HVS_CHECK(rc == 0 && has_line(out, "line 1: building bldg_na: warning: no heated area"),
              "a building without an area loads, with a warning: %s", out);
    free(out);
    remove(path);
    rc = hvsctl("topology list", &out);
    HVS_CHECK(rc == 0 && has_line(out, "5 buildings on topology"), "list: %s", out);
    /* the area column: given, derived from the apartments, or none */
    const char *want[][4] = {{"bldg_be_03", "passive", "CH-BE", "218.0 (apartments)"},
                             {"bldg_ge_04", "modern_dense", "CH-GE", "2400.0"},
                             {"bldg_na", "passive", "-", "- (not forecastable)"}};
    for (size_t i = 0; i < 3; i++) {
        const char *l = out ? strstr(out, want[i][0]) : NULL;
        char line[256] = "";
        if (l)
            sscanf(l, "%255[^\n]", line);
        HVS_CHECK(l && strstr(line, want[i][1]) && strstr(line, want[i][2]) &&
                      strstr(line, want[i][3]),
                  "list line of %s: %s", want[i][0], line);
    }
    free(out);
    rc = hvsctl("topology show bldg_na", &out);
    json_error_t je;
    json_t *j = out ? json_loadb(out, strcspn(out, "#"), 0, &je) : NULL;
    HVS_CHECK(rc == 0 && j && str_is(j, "building_id", "bldg_na") &&
                  has_line(out, "# not forecastable: no heated area (heated_area_m2 absent; 1 of 2 "
                                "apartments without area_m2)"),
              "show: the JSON, then the diagnosis: %s", out);
    json_decref(j);
    free(out);
    rc = hvsctl("topology show bldg_be_03", &out);
    HVS_CHECK(rc == 0 && has_line(out, "# heated area: 218.0 m2 (derived"), "derived area shown");
    free(out);
    rc = hvsctl("topology show nope", &out);
    HVS_CHECK(rc == 1 && has_line(out, "no building nope"), "unknown building: exit 1");
    free(out);
}

static void test_delete_tombstone(void) {
    start();
    hvs_err_t err = {0};
    hvs_serde_t *serde = NULL;
    hvs_topology_t *topo = NULL;
    hvs_kafka_conf_t kc = {
        .brokers = broker.addr, .group = "t", .client_id = "test", .fetch_wait_max_ms = 10};
    HVS_REQUIRE(hvs_serde_new(NULL, &serde, &err) == 0 &&
                    hvs_topology_new(&kc, serde, "topology", &topo, &err) == 0,
                "follower: %s", err.msg);
    hvs_topology_poll(topo, 20000);
    const hvs_building_t *ge = hvs_topology_find(topo, "bldg_ge_04");
    HVS_CHECK(ge && ge->napts == 2 && hvs_building_area(ge) == 2400.0 &&
                  isnan(hvs_building_area(hvs_topology_find(topo, "bldg_na"))) &&
                  hvs_building_area(hvs_topology_find(topo, "bldg_be_03")) == 218.0,
              "the follower has the loaded buildings and their areas");
    char *out = NULL;
    int rc = hvsctl("topology delete bldg_ge_04", &out);
    HVS_CHECK(rc == 0 && has_line(out, "deleted bldg_ge_04"), "delete: rc %d %s", rc, out);
    free(out);
    for (int i = 0; i < 250 && hvs_topology_find(topo, "bldg_ge_04"); i++) {
        usleep(20000);
        hvs_topology_poll(topo, 0);
    }
    HVS_CHECK(!hvs_topology_find(topo, "bldg_ge_04") && hvs_topology_find(topo, "bldg_be_03"),
              "the tombstone removed the building from the follower's view, only it");
    json_t *st = topic_state();
    HVS_CHECK(json_is_null(json_object_get(st, "bldg_ge_04")), "a null value keyed bldg_ge_04");
    json_decref(st);
    rc = hvsctl("topology list", &out);
    HVS_CHECK(rc == 0 && !has_line(out, "bldg_ge_04") && has_line(out, "4 buildings"),
              "list without it: %s", out);
    free(out);
    rc = hvsctl("topology show bldg_ge_04", &out);
    HVS_CHECK(rc == 1 && has_line(out, "was removed (tombstone"), "show: removed: %s", out);
    free(out);
    rc = hvsctl("topology delete bldg_ge_04", &out);
    HVS_CHECK(rc == 1 && has_line(out, "no building bldg_ge_04"), "deleting it again: refused");
    free(out);
    hvs_topology_destroy(topo);
    hvs_serde_destroy(serde);
}

/* A region of the user's calendar file (HVS_CALENDAR_FILE) is known to the loader as to the
 * workers; without the file the same building is refused for its region. */
static void test_user_region_from_calendar_file(void) {
    start();
    char cal[128], path[128], args[512], *out = NULL;
    snprintf(cal, sizeof cal, "/tmp/hvs-topo-cal-%d.ini", (int)getpid());
    snprintf(path, sizeof path, "/tmp/hvs-topo-user-region-%d.jsonl", (int)getpid());
    write_file(cal, "[XX-LAKE]\nparent = NO\nholiday = 06-23 Lake Day\n");
    write_file(path, "{\"building_id\":\"L1\",\"archetype\":\"passive\","
                     "\"commissioning_date\":0,\"latitude\":60.0,\"longitude\":10.0,"
                     "\"heated_area_m2\":100.0,\"holiday_region\":\"XX-LAKE\","
                     "\"apartments\":[]}\n");
    snprintf(args, sizeof args, "topology load --dry-run %s", path);
    int rc = hvsctl(args, &out);
    HVS_CHECK(rc == 1 && has_line(out, "XX-LAKE"), "refused without the file: rc %d: %s", rc,
              out ? out : "");
    free(out);
    out = NULL;
    char cmd[1024];
    size_t len;
    snprintf(cmd, sizeof cmd, "%s HVS_CALENDAR_FILE=%s %s %s 2>&1", env, cal, HVS_TEST_HVSCTL,
             args);
    rc = hvs_test_run(cmd, NULL, 0, &out, &len);
    HVS_CHECK(rc == 0, "accepted with the file: rc %d: %s", rc, out ? out : "");
    free(out);
    unlink(cal);
    unlink(path);
}

static const hvs_test_case_t cases[] = {
    {"bad_file_loads_nothing_and_names_lines", test_bad_file_loads_nothing},
    {"jsonl_loaded_and_read_back", test_load_jsonl},
    {"csv_loaded_and_read_back", test_load_csv},
    {"list_and_show_with_area_diagnosis", test_list_show},
    {"delete_tombstone_removes_from_follower", test_delete_tombstone},
    {"user_region_from_calendar_file", test_user_region_from_calendar_file},
    HVS_TEST_CASES_END,
};

int main(int argc, char **argv) {
    hvs_log_init("test", HVS_LOG_ERROR, NULL);
    return hvs_test_main(cases, argc, argv);
}
