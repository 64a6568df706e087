/*
 * test_train_gate - the classifier's gate (train.h): the Wilson lower bound against values
 * computed by hand from the formula, and the gate's verdict on backtests of every kind.
 */
#include <math.h>
#include <string.h>

#include "hvs_test.h"
#include "train.h"

static void test_wilson(void) {
    /* (p + z^2/2n - z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n), z = 1.2816 (one-sided 90 %) */
    HVS_CHECK_NEAR(tr_wilson_lower(1, 2, 1.2816), 0.164245, 1e-5);
    HVS_CHECK_NEAR(tr_wilson_lower(6, 10, 1.2816), 0.401345, 1e-5);
    HVS_CHECK_NEAR(tr_wilson_lower(3, 6, 1.2816), 0.268205, 1e-5);
    HVS_CHECK_NEAR(tr_wilson_lower(0, 5, 1.2816), 0.0, 1e-12);
    HVS_CHECK(isnan(tr_wilson_lower(0, 0, 1.2816)), "no ranked days: no bound");
    /* the same precision on more days is surer */
    HVS_CHECK(tr_wilson_lower(50, 100, 1.2816) > tr_wilson_lower(5, 10, 1.2816), "more days");
    /* the flywheel's week-5 classifier at 20 buildings: 1 fault in 2 ranked days (0.5) against
     * a chance of 0.2 was approved before the bound; the bound says it is not evidence */
    HVS_CHECK(!(tr_wilson_lower(1, 2, 1.2816) > 0.2), "1 of 2 is not surely above 0.2");
    HVS_CHECK(tr_wilson_lower(6, 10, 1.2816) > 0.2, "6 of 10 is");
}

/* A classifier's backtest: precision@k from `faults` of `ranked` labelled days in the top k,
 * against chance, and the champion's precision (NaN: none). */
static tr_result_t backtest(size_t faults, size_t ranked, double chance, double champion) {
    tr_result_t r;
    memset(&r, 0, sizeof r);
    r.metrics.precision_at_k = ranked ? (double)faults / (double)ranked : NAN;
    r.metrics.recall_at_k = 0.3;
    r.naive.precision_at_k = chance;
    r.ranked_faults = faults, r.ranked_labelled = ranked;
    r.has_champion = !isnan(champion);
    r.champion.precision_at_k = champion;
    return r;
}

static void test_gate(void) {
    tr_config_t c;
    memset(&c, 0, sizeof c);
    c.top_k = 10, c.auto_approve = true, c.min_improvement = 0.02;
    tr_result_t r = backtest(1, 2, 0.2, NAN); /* 0.5 > 0.2, but on 2 days */
    tr_gate_classifier(&c, &r);
    HVS_CHECK(r.status == HVS_MODEL_REJECTED && strstr(r.reason, "not surely above chance"),
              "1 of 2: rejected (%s)", r.reason);
    r = backtest(6, 10, 0.2, NAN);
    tr_gate_classifier(&c, &r);
    HVS_CHECK(r.status == HVS_MODEL_APPROVED, "6 of 10 against 0.2: approved (%s)", r.reason);
    r = backtest(1, 10, 0.2, NAN);
    tr_gate_classifier(&c, &r);
    HVS_CHECK(r.status == HVS_MODEL_REJECTED && strstr(r.reason, "does not beat chance"),
              "below chance: rejected (%s)", r.reason);
    r = backtest(0, 0, 0.2, NAN);
    tr_gate_classifier(&c, &r);
    HVS_CHECK(r.status == HVS_MODEL_REJECTED && strstr(r.reason, "no labelled held-out days"),
              "nothing ranked: rejected (%s)", r.reason);
    r = backtest(6, 10, 0.2, 0.6); /* sure, but not better than the champion */
    tr_gate_classifier(&c, &r);
    HVS_CHECK(r.status == HVS_MODEL_PENDING_APPROVAL, "ties the champion: a person decides (%s)",
              r.reason);
    c.auto_approve = false;
    r = backtest(60, 100, 0.2, NAN);
    tr_gate_classifier(&c, &r);
    HVS_CHECK(r.status == HVS_MODEL_PENDING_APPROVAL, "without auto-approval: pending (%s)",
              r.reason);
}

static const hvs_test_case_t cases[] = {
    {"classifier_gate", test_gate},
    {"wilson_lower_bound", test_wilson},
    HVS_TEST_CASES_END,
};

int main(int argc, char **argv) { return hvs_test_main(cases, argc, argv); }
