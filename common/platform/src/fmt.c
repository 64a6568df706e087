#include "hvs/fmt.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Decimal digits of v backwards from end; returns the first. */
static char *digits(uint64_t v, char *end) {
    do {
        *--end = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return end;
}

size_t hvs_fmt_int64(char *out, int64_t v) {
    char tmp[24], *e = tmp + sizeof tmp;
    uint64_t m = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    char *p = digits(m, e);
    if (v < 0)
        *--p = '-';
    memcpy(out, p, (size_t)(e - p));
    return (size_t)(e - p);
}

/*
 * When (double)k / 10^d == v, the string "k with d decimals" names the rational k / 10^d, whose
 * nearest double strtod returns — the same one the correctly rounded division gave.
 */
size_t hvs_fmt_double(char *out, double v) {
    static const double pow10[] = {1, 10, 100, 1000, 10000};
    if (isnan(v)) {
        memcpy(out, "nan", 3);
        return 3;
    }
    if (isinf(v)) {
        memcpy(out, v < 0 ? "-inf" : "inf", v < 0 ? 4 : 3);
        return v < 0 ? 4 : 3;
    }
    if (v > -1e12 && v < 1e12) {
        for (int d = 0; d <= 4; d++) {
            long long k = llround(v * pow10[d]);
            if ((double)k / pow10[d] != v)
                continue;
            char tmp[32], *e = tmp + sizeof tmp, *p = e;
            uint64_t m = (uint64_t)(k < 0 ? -k : k);
            for (int i = 0; i < d; i++) {
                *--p = (char)('0' + m % 10);
                m /= 10;
            }
            if (d > 0)
                *--p = '.';
            p = digits(m, p);
            if (k < 0 || (k == 0 && signbit(v)))
                *--p = '-';
            memcpy(out, p, (size_t)(e - p));
            return (size_t)(e - p);
        }
    }
    int w = snprintf(out, HVS_FMT_MAX, "%.17g", v);
    return w > 0 ? (size_t)w : 0;
}

void hvs_strbuf_printf(hvs_strbuf_t *b, const char *fmt, ...) {
    if (b->oom)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = true;
            return;
        }
        if (b->p && (size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = (b->cap + (size_t)n + 1) * 2;
        char *np = realloc(b->p, cap);
        if (!np) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
}

void hvs_strbuf_put(hvs_strbuf_t *b, const char *s, size_t n) {
    if (b->oom)
        return;
    if (!b->p || b->cap - b->len < n + 1) {
        size_t cap = (b->cap + n + 1) * 2;
        char *np = realloc(b->p, cap);
        if (!np) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

void hvs_strbuf_json_str(hvs_strbuf_t *b, const char *s) {
    hvs_strbuf_put(b, "\"", 1);
    for (const char *c = s;;) {
        size_t run = strcspn(c, "\"\\\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e"
                                "\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d"
                                "\x1e\x1f");
        hvs_strbuf_put(b, c, run);
        c += run;
        if (!*c)
            break;
        if (*c == '"' || *c == '\\')
            hvs_strbuf_printf(b, "\\%c", *c);
        else
            hvs_strbuf_printf(b, "\\u%04x", (unsigned char)*c);
        c++;
    }
    hvs_strbuf_put(b, "\"", 1);
}

void hvs_strbuf_json_num(hvs_strbuf_t *b, double x) {
    char t[HVS_FMT_MAX];
    size_t n = isfinite(x) ? hvs_fmt_double(t, x) : 0;
    if (n)
        hvs_strbuf_put(b, t, n);
    else
        hvs_strbuf_put(b, "null", 4);
}
