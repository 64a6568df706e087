/* test_vec - hvs_vec_grow: capacities double from `first`, contents survive, an impossible
 * size fails without touching the array. */
#include <stdint.h>

#include "hvs/vec.h"
#include "hvs_test.h"

int main(void) {
    int *a = NULL;
    size_t cap = 0, n = 0;
    for (int i = 0; i < 1000; i++) {
        int *g = hvs_vec_grow(a, &cap, n + 1, sizeof *a, 16);
        HVS_REQUIRE(g, "grow to %zu", n + 1);
        a = g;
        a[n++] = i * 7;
    }
    HVS_CHECK_EQ_INT(cap, 1024);
    int ok = 1;
    for (int i = 0; i < 1000; i++)
        ok &= a[i] == i * 7;
    HVS_CHECK(ok, "contents kept across reallocations");
    int *same = hvs_vec_grow(a, &cap, 1000, sizeof *a, 16);
    HVS_CHECK(same == a && cap == 1024, "no reallocation when it fits");
    int *big = hvs_vec_grow(a, &cap, 2000, sizeof *a, 16);
    HVS_CHECK(big && cap == 2048, "grows to the need in one call: %zu", cap);
    a = big ? big : a;
    size_t before = cap;
    HVS_CHECK(hvs_vec_grow(a, &cap, SIZE_MAX / 2, sizeof *a, 16) == NULL && cap == before,
              "overflowing request refused, capacity untouched");
    HVS_CHECK(a[999] == 999 * 7, "array untouched by the refusal");
    free(a);
    size_t c2 = 0;
    char *s = hvs_vec_grow(NULL, &c2, 1, 1, 0);
    HVS_CHECK(s && c2 == 1, "first 0 means 1: %zu", c2);
    free(s);
    return hvs_test_done();
}
