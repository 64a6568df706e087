/*
 * log.h - JSON lines on stdout: {"ts":"...","level":"info","worker":"...","component":"...",
 * "msg":"...", <fields>}.
 *
 * Contract:
 *  - hvs_log_init once at start (before threads); until then logs go to stdout at level info
 *    with worker "hvs".
 *  - The level is checked before anything is formatted (use the hvs_log_* macros).
 *  - Each line is written with one fwrite under a mutex: lines from threads never interleave.
 *  - Field keys and string values are JSON-escaped; nothing passed in is retained or freed.
 */
#ifndef HVS_LOG_H
#define HVS_LOG_H

#include <stdbool.h>
#include <stdio.h>

#include "hvs/err.h"

typedef enum hvs_log_level {
    HVS_LOG_DEBUG = 0,
    HVS_LOG_INFO = 1,
    HVS_LOG_WARN = 2,
    HVS_LOG_ERROR = 3,
} hvs_log_level_t;

typedef enum hvs_log_ftype { HVS_LF_STR, HVS_LF_INT, HVS_LF_DBL, HVS_LF_BOOL } hvs_log_ftype_t;

typedef struct hvs_log_field {
    const char *key;
    hvs_log_ftype_t type;
    union {
        const char *s;
        long long i;
        double d;
        int b;
    } v;
} hvs_log_field_t;

/* Field constructors: HVS_LF_S("topic", name), HVS_LF_I("offset", off), ... */
#define HVS_LFS(k, val) ((hvs_log_field_t){.key = (k), .type = HVS_LF_STR, .v.s = (val)})
#define HVS_LFI(k, val) ((hvs_log_field_t){.key = (k), .type = HVS_LF_INT, .v.i = (long long)(val)})
#define HVS_LFD(k, val) ((hvs_log_field_t){.key = (k), .type = HVS_LF_DBL, .v.d = (double)(val)})
#define HVS_LFB(k, val) ((hvs_log_field_t){.key = (k), .type = HVS_LF_BOOL, .v.b = !!(val)})

/* `out` NULL = stdout. `worker` is copied. */
void hvs_log_init(const char *worker, hvs_log_level_t level, FILE *out);
void hvs_log_set_level(hvs_log_level_t level);
/* "debug" | "info" | "warn" | "error" (case-insensitive): 0, else HVS_EINVAL. */
int hvs_log_level_parse(const char *s, hvs_log_level_t *out);
const char *hvs_log_level_name(hvs_log_level_t level);
bool hvs_log_enabled(hvs_log_level_t level);

/* Write one line; prefer the macros, which skip formatting below the level. */
void hvs_log_emit(hvs_log_level_t level, const char *component, const hvs_log_field_t *fields,
                  size_t nfields, const char *fmt, ...) HVS_PRINTF(5, 6);

#define HVS_LOG_(lvl, comp, ...)                                                                   \
    do {                                                                                           \
        if (hvs_log_enabled(lvl))                                                                  \
            hvs_log_emit(lvl, comp, NULL, 0, __VA_ARGS__);                                         \
    } while (0)
#define hvs_log_debug(comp, ...) HVS_LOG_(HVS_LOG_DEBUG, comp, __VA_ARGS__)
#define hvs_log_info(comp, ...) HVS_LOG_(HVS_LOG_INFO, comp, __VA_ARGS__)
#define hvs_log_warn(comp, ...) HVS_LOG_(HVS_LOG_WARN, comp, __VA_ARGS__)
#define hvs_log_error(comp, ...) HVS_LOG_(HVS_LOG_ERROR, comp, __VA_ARGS__)

/* With structured fields: hvs_log_fields(HVS_LOG_WARN, "dlq", "sent", HVS_LFS("reason", r)). */
#define hvs_log_fields(lvl, comp, msg, ...)                                                        \
    do {                                                                                           \
        if (hvs_log_enabled(lvl)) {                                                                \
            const hvs_log_field_t hvs_lf_[] = {__VA_ARGS__};                                       \
            hvs_log_emit(lvl, comp, hvs_lf_, sizeof hvs_lf_ / sizeof hvs_lf_[0], "%s", msg);       \
        }                                                                                          \
    } while (0)

/*
 * Rate limit for a stream of like lines (dead letters, skipped records), so a poison storm
 * cannot flood the logs: per reason, at most `per_minute` lines in a minute; the rest are counted
 * and summed up in one warn line "<component>: ... and K more <what> (<reason>) in the last
 * minute" when that minute is over (at the next take of the reason, or at a flush - call flush
 * regularly, e.g. once per poll, so a storm that stopped is still summed up). The first
 * HVS_LOG_LIMIT_REASONS distinct reasons get a slot each; later ones share the last slot (then
 * named "other"). Zero-initialise; per_minute 0 means 10. Times are monotonic ms
 * (hvs_time_mono_ms). One thread per limiter; nothing allocated.
 */
#define HVS_LOG_LIMIT_REASONS 16
typedef struct hvs_log_limit {
    int per_minute;
    size_t nslots;
    struct {
        char reason[HVS_ERR_REASON_MAX];
        long long start;            /* the slot's minute began (monotonic ms) */
        unsigned n;                 /* lines logged in it */
        unsigned long long dropped; /* lines not logged in it */
    } slot[HVS_LOG_LIMIT_REASONS];
} hvs_log_limit_t;

/* May a line of `reason` be logged now? true: log it; false: it was counted instead. */
bool hvs_log_limit_take(hvs_log_limit_t *l, const char *reason, long long now_ms,
                        const char *component, const char *what);
/* Sum up every reason whose minute is over with lines not logged. */
void hvs_log_limit_flush(hvs_log_limit_t *l, long long now_ms, const char *component,
                         const char *what);

#endif
