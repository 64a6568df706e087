#include "hvs/vec.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void *hvs_vec_grow(void *arr, size_t *cap, size_t need, size_t size, size_t first) {
    if (need <= *cap && arr)
        return arr;
    size_t nc = *cap ? *cap : (first ? first : 1);
    while (nc < need) {
        if (nc > SIZE_MAX / 2)
            return NULL;
        nc *= 2;
    }
    if (size && nc > SIZE_MAX / size)
        return NULL;
    void *na = realloc(arr, nc * size);
    if (!na)
        return NULL;
    *cap = nc;
    return na;
}

void hvs_vec_open(void *arr, size_t n, size_t i, size_t size) {
    char *a = arr;
    memmove(a + (i + 1) * size, a + i * size, (n - i) * size);
}
