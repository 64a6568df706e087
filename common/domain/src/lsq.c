/* lsq.c - small dense linear systems (lsq.h). */
#include "hvs/lsq.h"

#include <math.h>

int hvs_lsq_solve(size_t n, double *a, double *b, double *x) {
    if (n == 0 || n > HVS_LSQ_MAX)
        return -1;
    for (size_t c = 0; c < n; c++) {
        size_t p = c;
        for (size_t r = c + 1; r < n; r++)
            if (fabs(a[r * n + c]) > fabs(a[p * n + c]))
                p = r;
        if (!(fabs(a[p * n + c]) >= 1e-300))
            return -1;
        for (size_t k = 0; k < n; k++) {
            double t = a[c * n + k];
            a[c * n + k] = a[p * n + k], a[p * n + k] = t;
        }
        double t = b[c];
        b[c] = b[p], b[p] = t;
        for (size_t r = c + 1; r < n; r++) {
            double m = a[r * n + c] / a[c * n + c];
            for (size_t k = c; k < n; k++)
                a[r * n + k] -= m * a[c * n + k];
            b[r] -= m * b[c];
        }
    }
    for (size_t c = n; c-- > 0;) {
        double s = b[c];
        for (size_t k = c + 1; k < n; k++)
            s -= a[c * n + k] * x[k];
        x[c] = s / a[c * n + c];
    }
    return 0;
}
