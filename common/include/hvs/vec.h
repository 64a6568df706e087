/*
 * vec.h - growing arrays: the one place for "double the capacity when full".
 *
 *     T *arr; size_t n, cap;
 *     T *g = hvs_vec_grow(arr, &cap, n + 1, sizeof *arr, 16);
 *     if (!g) return HVS_ENOMEM;   // arr and cap untouched
 *     arr = g; arr[n++] = x;
 *
 * Ownership: the array is the caller's (free it); on failure nothing changes.
 * Thread-safety: none (the caller's array). Errors: NULL on overflow or out of memory.
 */
#ifndef HVS_VEC_H
#define HVS_VEC_H

#include <stddef.h>

/* arr (may be NULL) with room for at least `need` elements of `size` bytes: arr itself when
 * *cap suffices, else reallocated to max(first, 2 * *cap, need) with *cap updated. */
void *hvs_vec_grow(void *arr, size_t *cap, size_t need, size_t size, size_t first);

#endif
