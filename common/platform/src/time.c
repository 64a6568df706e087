/*
 * Event time (see hvs/time.h). ISO-8601 parsing is strict: fixed field widths, real calendar
 * dates, a zone is required, nothing may trail. Times are civil-from-days arithmetic on UTC, so
 * no dependency on the process's TZ.
 */
#include "hvs/time.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

hvs_ms_t hvs_time_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (hvs_ms_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

hvs_ms_t hvs_time_mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (hvs_ms_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

hvs_ms_t hvs_time_window_start(hvs_ms_t t, hvs_ms_t size) {
    if (size <= 0)
        return t;
    hvs_ms_t r = t % size;
    if (r >= 0)
        return t - r;
    hvs_ms_t back = r + size; /* in (0, size): distance down to the floor */
    return t >= INT64_MIN + back ? t - back : INT64_MIN; /* saturate instead of overflowing */
}

hvs_ms_t hvs_time_day_start(hvs_ms_t t) { return hvs_time_window_start(t, HVS_MS_DAY); }

/* Howard Hinnant's algorithms: eras of 400 years, years starting in March. */
int64_t hvs_time_days_from_civil(int64_t y, int m, int d) {
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void hvs_time_civil_from_days(int64_t z, int64_t *y, int *m, int *d) {
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static int days_in_month(int64_t y, int m) {
    static const int dim[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return 29;
    return dim[m - 1];
}

/* Exactly n digits at s; -1 if not. */
static int digits(const char *s, int n) {
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

int hvs_time_parse_iso8601(const char *s, hvs_ms_t *out, hvs_err_t *err) {
    if (!s)
        return hvs_err_set(err, HVS_EINVAL, "bad_timestamp", "timestamp is missing");
    const char *p = s;
    int y = digits(p, 4);
    if (y < 0 || p[4] != '-')
        goto bad;
    int mo = digits(p + 5, 2);
    if (mo < 1 || mo > 12 || p[7] != '-')
        goto bad;
    int d = digits(p + 8, 2);
    if (d < 1 || d > days_in_month(y, mo))
        goto bad;
    p += 10;
    if (*p != 'T' && *p != 't' && *p != ' ')
        goto bad;
    p++;
    /* Every look-ahead below follows a successful digits(), so it never reads past the NUL. */
    int hh = digits(p, 2);
    if (hh < 0 || hh > 23 || p[2] != ':')
        goto bad;
    int mi = digits(p + 3, 2);
    if (mi < 0 || mi > 59)
        goto bad;
    p += 5;
    int ss = 0, ms = 0;
    if (*p == ':') {
        ss = digits(p + 1, 2);
        if (ss < 0 || ss > 59) /* leap seconds are not representable in epoch ms */
            goto bad;
        p += 3;
        if (*p == '.' || *p == ',') {
            p++;
            int nd = 0, scale = 100;
            while (*p >= '0' && *p <= '9') {
                if (nd < 3)
                    ms += (*p - '0') * scale;
                scale /= 10;
                nd++;
                p++;
            }
            if (nd == 0 || nd > 9)
                goto bad;
        }
    }
    int offset_min;
    if (*p == 'Z' || *p == 'z') {
        offset_min = 0;
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh = digits(p + 1, 2);
        if (oh < 0 || oh > 23)
            goto bad;
        int colon = p[3] == ':';
        int om = digits(p + 3 + colon, 2);
        if (om < 0 || om > 59)
            goto bad;
        offset_min = (oh * 60 + om) * (*p == '-' ? -1 : 1);
        p += 5 + colon;
    } else {
        return hvs_err_set(
            err, HVS_EINVAL, "bad_timestamp",
            "timestamp \"%.64s\" has no zone (Z or +hh:mm); local time is not guessed", s);
    }
    if (*p != '\0')
        goto bad;
    int64_t days = hvs_time_days_from_civil(y, mo, d);
    *out = ((days * 24 + hh) * 60 + mi - offset_min) * HVS_MS_MINUTE + ss * HVS_MS_SECOND + ms;
    return HVS_OK;
bad:
    return hvs_err_set(err, HVS_EINVAL, "bad_timestamp",
                       "timestamp \"%.64s\" is not ISO-8601 (e.g. 2024-10-27T10:30:00Z)", s);
}

char *hvs_time_format_iso8601(hvs_ms_t t, char *buf, size_t buflen) {
    hvs_ms_t day = hvs_time_day_start(t);
    int64_t y;
    int m, d;
    hvs_time_civil_from_days(day / HVS_MS_DAY, &y, &m, &d);
    hvs_ms_t rem = t - day;
    int hh = (int)(rem / HVS_MS_HOUR), mi = (int)(rem / HVS_MS_MINUTE % 60);
    int ss = (int)(rem / HVS_MS_SECOND % 60), ms = (int)(rem % 1000);
    snprintf(buf, buflen, "%04lld-%02d-%02dT%02d:%02d:%02d.%03dZ", (long long)y, m, d, hh, mi, ss,
             ms);
    return buf;
}

bool hvs_time_plausible(hvs_ms_t t, hvs_ms_t now, hvs_ms_t max_future_ms) {
    return t >= HVS_MS_MIN_EVENT && t <= now + max_future_ms;
}

typedef struct wm_part {
    int32_t partition;
    hvs_ms_t max_event; /* max event time seen */
    hvs_ms_t last_seen; /* wall time of the last event */
    hvs_ms_t floor;     /* highest watermark already reported (idle advance): never go below */
} wm_part_t;

struct hvs_watermark {
    hvs_ms_t ooo;
    hvs_ms_t idle;
    wm_part_t *parts;
    size_t n, cap;
};

hvs_watermark_t *hvs_watermark_new(hvs_ms_t out_of_orderness_ms, hvs_ms_t idle_timeout_ms) {
    hvs_watermark_t *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->ooo = out_of_orderness_ms;
    w->idle = idle_timeout_ms;
    return w;
}

void hvs_watermark_destroy(hvs_watermark_t *w) {
    if (!w)
        return;
    free(w->parts);
    free(w);
}

static wm_part_t *find_part(const hvs_watermark_t *w, int32_t partition) {
    for (size_t i = 0; i < w->n; i++)
        if (w->parts[i].partition == partition)
            return &w->parts[i];
    return NULL;
}

static hvs_ms_t part_watermark(const hvs_watermark_t *w, const wm_part_t *p, hvs_ms_t now);

void hvs_watermark_observe(hvs_watermark_t *w, int32_t partition, hvs_ms_t t, hvs_ms_t now) {
    wm_part_t *p = find_part(w, partition);
    if (p) {
        /* Keep what idleness earned: an event after a quiet spell must not move windows that
         * were already closed back into the open. */
        p->floor = part_watermark(w, p, now);
    } else {
        if (w->n == w->cap) {
            size_t cap = w->cap ? w->cap * 2 : 16;
            wm_part_t *np = realloc(w->parts, cap * sizeof *np);
            if (!np)
                return; /* the partition simply stays unknown: watermark does not advance */
            w->parts = np;
            w->cap = cap;
        }
        p = &w->parts[w->n++];
        p->partition = partition;
        p->max_event = t;
        p->floor = HVS_MS_NONE;
    }
    if (t > p->max_event)
        p->max_event = t;
    p->last_seen = now;
}

hvs_ms_t hvs_time_add_sat(hvs_ms_t a, hvs_ms_t b) {
    if (b > 0 && a > INT64_MAX - b)
        return INT64_MAX;
    if (b < 0 && a < INT64_MIN - b)
        return INT64_MIN;
    return a + b;
}

hvs_ms_t hvs_watermark_rule(hvs_ms_t max_event, hvs_ms_t last_seen, hvs_ms_t floor,
                            hvs_ms_t out_of_orderness_ms, hvs_ms_t idle_timeout_ms, hvs_ms_t now) {
    hvs_ms_t wm = hvs_time_add_sat(max_event, out_of_orderness_ms > 0 ? -out_of_orderness_ms : 0);
    if (idle_timeout_ms > 0 && last_seen != HVS_MS_NONE && now - last_seen > idle_timeout_ms)
        wm = hvs_time_add_sat(wm, now - last_seen - idle_timeout_ms);
    return wm > floor ? wm : floor;
}

/* A partition's watermark (the rule above). */
static hvs_ms_t part_watermark(const hvs_watermark_t *w, const wm_part_t *p, hvs_ms_t now) {
    return hvs_watermark_rule(p->max_event, p->last_seen, p->floor, w->ooo, w->idle, now);
}

hvs_ms_t hvs_watermark_partition(const hvs_watermark_t *w, int32_t partition, hvs_ms_t now) {
    const wm_part_t *p = find_part(w, partition);
    return p ? part_watermark(w, p, now) : HVS_MS_NONE;
}

hvs_ms_t hvs_watermark_current(const hvs_watermark_t *w, hvs_ms_t now) {
    hvs_ms_t min = HVS_MS_NONE;
    for (size_t i = 0; i < w->n; i++) {
        hvs_ms_t wm = part_watermark(w, &w->parts[i], now);
        if (min == HVS_MS_NONE || wm < min)
            min = wm;
    }
    return min;
}

void hvs_watermark_touch(hvs_watermark_t *w, int32_t partition, hvs_ms_t now) {
    wm_part_t *p = find_part(w, partition);
    if (!p)
        return;
    p->floor = part_watermark(w, p, now);
    p->last_seen = now;
}

void hvs_watermark_remove(hvs_watermark_t *w, int32_t partition) {
    wm_part_t *p = find_part(w, partition);
    if (p)
        *p = w->parts[--w->n];
}
