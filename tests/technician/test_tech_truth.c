/*
 * tech_truth: hvs-technician's ground truth (tools/technician/truth.h) - the labels file read as
 * it grows (a line cut in two waits for its end), labels of other categories and levels ignored,
 * a bad line refused with its number, the verdict by overlap with the evidence span (edges
 * included, the end exclusive), the most-overlapping label winning, benign names; and the
 * deterministic draws (same inputs same value, the shares they give).
 */
#include "hvs/log.h"
#include "hvs_test.h"
#include "truth.h"

#define H (3600LL * 1000)

static char path[128];

static void append(const char *text) {
    FILE *f = fopen(path, "a");
    HVS_REQUIRE(f && fputs(text, f) >= 0 && fclose(f) == 0, "append %s", path);
}

static void test_growing_file(void) {
    snprintf(path, sizeof path, "/tmp/hvs-test-tech-truth-%d.jsonl", (int)getpid());
    remove(path);
    append("");
    tech_truth_t t;
    hvs_err_t err = {0};
    HVS_REQUIRE(tech_truth_open(&t, path, &err) == 0, "open: %s", err.msg);
    HVS_CHECK_EQ_INT(t.n, 0);
    const char *cause = NULL;
    HVS_CHECK(tech_truth_judge(&t, "b", "a", 0, 10 * H, &cause) == HVS_FEEDBACK_FALSE_POSITIVE &&
                  !strcmp(cause, "no_fault_found"),
              "empty truth: %s", cause);
    append("{\"building_id\":\"b\",\"apartment_id\":\"a\",\"room\":\"kitchen\",\"category\":"
           "\"fault\",\"type\":\"stuck_valve\",\"start_ms\":36000000,\"end_ms\":72000000}\n"
           "{\"building_id\":\"b\",\"apartment_id\":null,\"category\":\"weather\",\"type\":"
           "\"storm\",\"start_ms\":0,\"end_ms\":1}\n"
           "{\"building_id\":\"b\",\"apartment_id\":\"a\",\"category\":\"benign\",\"type\":"
           "\"guests\",\"start_ms\":0,");
    HVS_CHECK(tech_truth_refresh(&t, &err) == 0 && t.n == 1 && t.ignored == 1,
              "one fault, the storm ignored, the cut line waits: n %zu ignored %zu", t.n,
              t.ignored);
    append("\"end_ms\":36000000}\n");
    HVS_CHECK(tech_truth_refresh(&t, &err) == 0 && t.n == 2, "the cut line completed: %zu", t.n);
    /* [36000000, 72000000) = hours 10..20: span [0, 10 h] touches its start */
    HVS_CHECK(tech_truth_judge(&t, "b", "a", 0, 10 * H, &cause) == HVS_FEEDBACK_TRUE_POSITIVE &&
                  !strcmp(cause, "stuck_valve"),
              "a fault beats a benign label: %s", cause);
    /* the guests' stay ends where the fault starts (exclusive); before it only the guests */
    HVS_CHECK(tech_truth_judge(&t, "b", "a", 0, 10 * H - 1, &cause) ==
                      HVS_FEEDBACK_FALSE_POSITIVE &&
                  !strcmp(cause, "guest_stay"),
              "guests -> guest_stay: %s", cause);
    HVS_CHECK(tech_truth_judge(&t, "b", "a", 20 * H, 30 * H, &cause) ==
                      HVS_FEEDBACK_FALSE_POSITIVE &&
                  !strcmp(cause, "no_fault_found"),
              "after the fault's exclusive end: %s", cause);
    HVS_CHECK(tech_truth_judge(&t, "b", "a2", 0, 30 * H, &cause) == HVS_FEEDBACK_FALSE_POSITIVE &&
                  !strcmp(cause, "no_fault_found"),
              "another apartment: %s", cause);
    /* two faults: the one overlapping most wins */
    append("{\"building_id\":\"b\",\"apartment_id\":\"a\",\"category\":\"fault\",\"type\":"
           "\"sensor_drift\",\"start_ms\":54000000,\"end_ms\":180000000}\n");
    HVS_CHECK(tech_truth_refresh(&t, &err) == 0 && t.n == 3, "3 labels");
    tech_truth_judge(&t, "b", "a", 15 * H, 40 * H, &cause);
    HVS_CHECK_EQ_STR(cause, "sensor_drift");
    tech_truth_judge(&t, "b", "a", 10 * H, 16 * H, &cause);
    HVS_CHECK_EQ_STR(cause, "stuck_valve");
    /* a line that is not a label */
    append("{\"building_id\":\"b\"}\n");
    HVS_CHECK(tech_truth_refresh(&t, &err) == HVS_EINVAL && strstr(err.msg, "line 5"),
              "bad line named: %s", err.msg);
    tech_truth_fini(&t);
    remove(path);
    HVS_CHECK(tech_truth_open(&t, path, &err) == HVS_EIO, "a missing file");
    tech_truth_fini(&t);
}

static void test_benign_names(void) {
    const char *in[] = {"vacation", "guests", "manual_override", "night_shift", "move_in"};
    const char *out[] = {"vacation", "guest_stay", "manual_override", "night_shift", "move_in"};
    for (int i = 0; i < 5; i++)
        HVS_CHECK_EQ_STR(tech_benign_cause(in[i]), out[i]);
}

static void test_draws(void) {
    char id[64];
    int below = 0, differ = 0;
    for (int i = 0; i < 20000; i++) {
        snprintf(id, sizeof id, "apt_%03d_%03d#2024-12-%02d#ANOMALY", i % 50, i / 50, 1 + i % 28);
        double u = tech_draw(7, id, 1);
        HVS_CHECK(u >= 0 && u < 1 && u == tech_draw(7, id, 1), "deterministic in [0, 1)");
        below += u < 0.2;
        differ += u != tech_draw(8, id, 1);
        differ += tech_draw(7, id, 2) != u;
    }
    HVS_CHECK(below > 3700 && below < 4300, "share below 0.2: %d of 20000", below);
    HVS_CHECK(differ == 40000, "another seed or salt, another draw: %d", differ);
}

static const hvs_test_case_t cases[] = {
    {"labels_file_read_as_it_grows_and_judged", test_growing_file},
    {"benign_types_to_root_causes", test_benign_names},
    {"draws_are_deterministic_and_uniform", test_draws},
    HVS_TEST_CASES_END,
};

int main(int argc, char **argv) {
    hvs_log_init("test", HVS_LOG_WARN, NULL);
    return hvs_test_main(cases, argc, argv);
}
