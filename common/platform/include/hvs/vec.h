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

#include <stdbool.h>
#include <stddef.h>

/* arr (may be NULL) with room for at least `need` elements of `size` bytes: arr itself when
 * *cap suffices, else reallocated to max(first, 2 * *cap, need) with *cap updated. */
void *hvs_vec_grow(void *arr, size_t *cap, size_t need, size_t size, size_t first);

/* Binary search of an array sorted by a string member: `arr[i] MEMBER` is the key of element
 * i (MEMBER is the access path, e.g. `->id` or `.id`). Sets `pos` to the key's index (found =
 * true) or to where it would be inserted (found = false). Needs <string.h>. */
#define HVS_VEC_BSEARCH_STR(arr, n, MEMBER, key, pos, found)                                       \
    do {                                                                                           \
        size_t lo_ = 0, hi_ = (n);                                                                 \
        (found) = false;                                                                           \
        while (lo_ < hi_) {                                                                        \
            size_t mid_ = lo_ + (hi_ - lo_) / 2;                                                   \
            int c_ = strcmp((arr)[mid_] MEMBER, (key));                                            \
            if (c_ == 0) {                                                                         \
                lo_ = mid_;                                                                        \
                (found) = true;                                                                    \
                break;                                                                             \
            }                                                                                      \
            if (c_ < 0)                                                                            \
                lo_ = mid_ + 1;                                                                    \
            else                                                                                   \
                hi_ = mid_;                                                                        \
        }                                                                                          \
        (pos) = lo_;                                                                               \
    } while (0)

/* Opens a hole at index i of an array of n elements of `size` bytes (room for n + 1 already
 * grown): elements i..n-1 move up by one; the caller then writes element i and counts n + 1. */
void hvs_vec_open(void *arr, size_t n, size_t i, size_t size);

#endif
