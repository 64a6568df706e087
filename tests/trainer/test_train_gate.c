/*
 * test_train_gate - the classifier gate's confidence bound (train.h): the Wilson lower bound
 * against values computed by hand from the formula, and the cases the gate exists for.
 */
#include <math.h>

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

static const hvs_test_case_t cases[] = {
    {"wilson_lower_bound", test_wilson},
    HVS_TEST_CASES_END,
};

int main(int argc, char **argv) { return hvs_test_main(cases, argc, argv); }
