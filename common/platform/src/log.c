/*
 * JSON-lines logger. One line per call, assembled in a stack buffer (truncated, never split, at
 * 8 KiB) and written with a single fwrite under a mutex.
 */
#include "hvs/log.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define LINE_MAX_BYTES 8192

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_int g_level = HVS_LOG_INFO;
static FILE *g_out;
static char g_worker[64] = "hvs";

void hvs_log_init(const char *worker, hvs_log_level_t level, FILE *out) {
    pthread_mutex_lock(&g_lock);
    snprintf(g_worker, sizeof g_worker, "%s", worker ? worker : "hvs");
    g_out = out;
    pthread_mutex_unlock(&g_lock);
    atomic_store(&g_level, (int)level);
}

void hvs_log_set_level(hvs_log_level_t level) { atomic_store(&g_level, (int)level); }

bool hvs_log_enabled(hvs_log_level_t level) { return (int)level >= atomic_load(&g_level); }

static const char *const level_names[] = {"debug", "info", "warn", "error"};

const char *hvs_log_level_name(hvs_log_level_t level) {
    return (level >= HVS_LOG_DEBUG && level <= HVS_LOG_ERROR) ? level_names[level] : "info";
}

int hvs_log_level_parse(const char *s, hvs_log_level_t *out) {
    if (!s)
        return HVS_EINVAL;
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *out = (hvs_log_level_t)i;
            return HVS_OK;
        }
    }
    if (strcasecmp(s, "warning") == 0) {
        *out = HVS_LOG_WARN;
        return HVS_OK;
    }
    return HVS_EINVAL;
}

typedef struct line {
    char buf[LINE_MAX_BYTES];
    size_t len;
} line_t;

static void put_raw(line_t *l, const char *s, size_t n) {
    if (l->len + n > sizeof l->buf - 2) /* keep room for "}\n" */
        n = sizeof l->buf - 2 - l->len;
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

static void put_str(line_t *l, const char *s) { put_raw(l, s, strlen(s)); }

/* JSON string with escapes; bytes >= 0x80 pass through (UTF-8 stays UTF-8). */
static void put_json_string(line_t *l, const char *s) {
    put_raw(l, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        char esc[8];
        switch (*p) {
        case '"': put_raw(l, "\\\"", 2); break;
        case '\\': put_raw(l, "\\\\", 2); break;
        case '\n': put_raw(l, "\\n", 2); break;
        case '\r': put_raw(l, "\\r", 2); break;
        case '\t': put_raw(l, "\\t", 2); break;
        default:
            if (*p < 0x20) {
                snprintf(esc, sizeof esc, "\\u%04x", *p);
                put_str(l, esc);
            } else {
                put_raw(l, (const char *)p, 1);
            }
        }
    }
    put_raw(l, "\"", 1);
}

static void put_field(line_t *l, const hvs_log_field_t *f) {
    char num[64];
    put_raw(l, ",", 1);
    put_json_string(l, f->key);
    put_raw(l, ":", 1);
    switch (f->type) {
    case HVS_LF_STR: put_json_string(l, f->v.s); break;
    case HVS_LF_INT:
        snprintf(num, sizeof num, "%lld", f->v.i);
        put_str(l, num);
        break;
    case HVS_LF_DBL:
        if (isfinite(f->v.d)) {
            snprintf(num, sizeof num, "%.17g", f->v.d);
            put_str(l, num);
        } else {
            put_str(l, "null"); /* JSON has no NaN/Inf */
        }
        break;
    case HVS_LF_BOOL: put_str(l, f->v.b ? "true" : "false"); break;
    }
}

void hvs_log_emit(hvs_log_level_t level, const char *component, const hvs_log_field_t *fields,
                  size_t nfields, const char *fmt, ...) {
    line_t l;
    l.len = 0;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char tsbuf[80];
    snprintf(tsbuf, sizeof tsbuf, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
    char msg[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);

    put_str(&l, "{\"ts\":\"");
    put_str(&l, tsbuf);
    put_str(&l, "\",\"level\":\"");
    put_str(&l, hvs_log_level_name(level));
    put_str(&l, "\",\"worker\":");
    pthread_mutex_lock(&g_lock);
    put_json_string(&l, g_worker);
    FILE *out = g_out ? g_out : stdout;
    pthread_mutex_unlock(&g_lock);
    put_str(&l, ",\"component\":");
    put_json_string(&l, component ? component : "main");
    put_str(&l, ",\"msg\":");
    put_json_string(&l, msg);
    for (size_t i = 0; i < nfields; i++)
        put_field(&l, &fields[i]);
    l.buf[l.len++] = '}';
    l.buf[l.len++] = '\n';

    pthread_mutex_lock(&g_lock);
    fwrite(l.buf, 1, l.len, out);
    fflush(out);
    pthread_mutex_unlock(&g_lock);
}

/* ---- rate limit ------------------------------------------------------------------------------ */

#define LIMIT_WINDOW_MS 60000

/* The minute of slot i is over: say what was not logged, start a new one at now. */
static void limit_roll(hvs_log_limit_t *l, size_t i, long long now, const char *component,
                       const char *what) {
    if (l->slot[i].dropped)
        hvs_log_warn(component,
                     "... and %llu more %s (%s) in the last minute, not logged one by one",
                     l->slot[i].dropped, what, l->slot[i].reason);
    l->slot[i].start = now;
    l->slot[i].n = 0;
    l->slot[i].dropped = 0;
}

bool hvs_log_limit_take(hvs_log_limit_t *l, const char *reason, long long now_ms,
                        const char *component, const char *what) {
    size_t i = 0;
    while (i < l->nslots && strcmp(l->slot[i].reason, reason) != 0)
        i++;
    if (i == l->nslots) {
        if (l->nslots < HVS_LOG_LIMIT_REASONS) {
            l->nslots++;
            snprintf(l->slot[i].reason, sizeof l->slot[i].reason, "%s",
                     l->nslots == HVS_LOG_LIMIT_REASONS ? "other" : reason);
            l->slot[i].start = now_ms;
        } else {
            i = HVS_LOG_LIMIT_REASONS - 1; /* the shared last slot */
        }
    }
    if (now_ms - l->slot[i].start >= LIMIT_WINDOW_MS)
        limit_roll(l, i, now_ms, component, what);
    if (l->slot[i].n < (unsigned)(l->per_minute > 0 ? l->per_minute : 10)) {
        l->slot[i].n++;
        return true;
    }
    l->slot[i].dropped++;
    return false;
}

void hvs_log_limit_flush(hvs_log_limit_t *l, long long now_ms, const char *component,
                         const char *what) {
    for (size_t i = 0; i < l->nslots; i++)
        if (l->slot[i].dropped && now_ms - l->slot[i].start >= LIMIT_WINDOW_MS)
            limit_roll(l, i, now_ms, component, what);
}
