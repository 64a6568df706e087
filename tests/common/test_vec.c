/* test_vec - hvs_vec_grow: capacities double from `first`, contents survive, an impossible
 * size fails without touching the array; a sorted index kept by HVS_VEC_BSEARCH_STR and
 * hvs_vec_open. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "hvs/vec.h"
#include "hvs_test.h"

/* hvs_vec_grow: doubling capacities, contents kept, refusals. */
static void test_grow(void) {
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
}

/* a sorted index of pointers kept by search + open: 500 keys in a scrambled order */
static void test_sorted_index(void) {
    typedef struct {
        char id[16];
    } item_t;
    static item_t items[500];
    item_t **idx = NULL;
    size_t ni = 0, ci = 0;
    for (int k = 0; k < 500; k++) {
        int v = (k * 211) % 500; /* 211 is prime to 500: every value once */
        snprintf(items[k].id, sizeof items[k].id, "b%03d", v);
        size_t at;
        bool found;
        HVS_VEC_BSEARCH_STR(idx, ni, ->id, items[k].id, at, found);
        HVS_REQUIRE(!found, "%s not there yet", items[k].id);
        item_t **g = hvs_vec_grow(idx, &ci, ni + 1, sizeof *idx, 8);
        HVS_REQUIRE(g, "grow");
        idx = g;
        hvs_vec_open(idx, ni, at, sizeof *idx);
        idx[at] = &items[k];
        ni++;
    }
    int sorted = 1;
    for (size_t k = 1; k < ni; k++)
        sorted &= strcmp(idx[k - 1]->id, idx[k]->id) < 0;
    HVS_CHECK(ni == 500 && sorted && strcmp(idx[0]->id, "b000") == 0 &&
                  strcmp(idx[499]->id, "b499") == 0,
              "index sorted after scrambled inserts");
    size_t at;
    bool found;
    HVS_VEC_BSEARCH_STR(idx, ni, ->id, "b123", at, found);
    HVS_CHECK(found && at == 123 && strcmp(idx[at]->id, "b123") == 0, "found b123 at %zu", at);
    HVS_VEC_BSEARCH_STR(idx, ni, ->id, "b1235", at, found);
    HVS_CHECK(!found && at == 124, "b1235 would go at 124: %zu", at);
    HVS_VEC_BSEARCH_STR(idx, ni, ->id, "c", at, found);
    HVS_CHECK(!found && at == 500, "after the last: %zu", at);
    HVS_VEC_BSEARCH_STR(idx, (size_t)0, ->id, "b1", at, found);
    HVS_CHECK(!found && at == 0, "empty array");
    free(idx);
}

static const hvs_test_case_t cases[] = {
    {"grow", test_grow},
    {"sorted_index", test_sorted_index},
    HVS_TEST_CASES_END,
};

int main(int argc, char **argv) { return hvs_test_main(cases, argc, argv); }
