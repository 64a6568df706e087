/*
 * lsq.h - small dense linear systems for least squares fits (the trainer's refresh task and the
 * refresher's online correction solve the same few-by-few normal equations).
 *
 * Ownership: the caller's arrays. Thread-safety: pure. Errors: -1 when the system is singular
 * (a pivot below 1e-300), else 0.
 */
#ifndef HVS_LSQ_H
#define HVS_LSQ_H

#include <stddef.h>

#define HVS_LSQ_MAX 8

/* Solve a x = b for x by Gaussian elimination with partial pivoting; a (n x n, row-major) and
 * b are overwritten. n <= HVS_LSQ_MAX. */
int hvs_lsq_solve(size_t n, double *a, double *b, double *x);

#endif
