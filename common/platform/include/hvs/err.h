/*
 * err.h - the one error convention of hvacstream.
 *
 * Contract:
 *  - Every fallible function returns int: 0 (HVS_OK) on success, a negative hvs_rc_t on failure.
 *  - It also fills an optional `hvs_err_t *err` (may be NULL) with the code, a machine-readable
 *    reason (snake_case; this is what a dead letter's `error_code` carries, e.g. "bad_magic") and
 *    a human message naming the input that failed.
 *  - hvs_err_t is a plain value: no allocation, nothing to free, safe to copy.
 *  - Thread-safety: functions here touch only the struct passed in.
 */
#ifndef HVS_ERR_H
#define HVS_ERR_H

#include <stdbool.h>
#include <stddef.h>

typedef enum hvs_rc {
    HVS_OK = 0,
    HVS_EINVAL = -1,    /* bad argument or bad input data */
    HVS_ENOMEM = -2,    /* allocation failed */
    HVS_EIO = -3,       /* file, socket, HTTP */
    HVS_ETIMEOUT = -4,  /* a bounded wait ran out */
    HVS_EKAFKA = -5,    /* librdkafka reported an error */
    HVS_EREDIS = -6,    /* hiredis/Redis reported an error */
    HVS_ESERDE = -7,    /* Avro/JSON encode or decode failed; reason says how */
    HVS_ENOTFOUND = -8, /* lookup found nothing (schema id, key, topic) */
    HVS_ECONFIG = -9,   /* configuration invalid */
    HVS_ESTATE = -10,   /* call not valid in the object's current state */
    HVS_EMODEL = -11,   /* XGBoost reported an error */
} hvs_rc_t;

#define HVS_ERR_REASON_MAX 48
#define HVS_ERR_MSG_MAX 400

typedef struct hvs_err {
    int code;                        /* hvs_rc_t, 0 when clear */
    char reason[HVS_ERR_REASON_MAX]; /* snake_case, e.g. "truncated", "unknown_schema_id" */
    char msg[HVS_ERR_MSG_MAX];       /* human text naming the failing input */
} hvs_err_t;

#if defined(__GNUC__)
#define HVS_PRINTF(fmt_idx, arg_idx) __attribute__((format(printf, fmt_idx, arg_idx)))
#define HVS_WARN_UNUSED __attribute__((warn_unused_result))
#else
#define HVS_PRINTF(fmt_idx, arg_idx)
#define HVS_WARN_UNUSED
#endif

/*
 * Fill `err` (if not NULL) and return `code` so callers can write
 *     return hvs_err_set(err, HVS_EINVAL, "bad_magic", "first byte is 0x%02x", b);
 * `reason` may be NULL (becomes the generic name of the code).
 */
int hvs_err_set(hvs_err_t *err, int code, const char *reason, const char *fmt, ...)
    HVS_PRINTF(4, 5);

/* Prefix the message already in `err` with more context ("decoding offset 42: ..."); returns err->code. */
int hvs_err_wrap(hvs_err_t *err, const char *fmt, ...) HVS_PRINTF(2, 3);

/* The reason that marks an error nothing can recover from in this process (a fatal librdkafka
 * error, a stage's unrecoverable state): the worker exits non-zero and is restarted. */
#define HVS_REASON_FATAL "fatal"

/* Whether `err` is such an error. NULL-safe (false). */
bool hvs_err_is_fatal(const hvs_err_t *err);

/* Reset to "no error". */
void hvs_err_clear(hvs_err_t *err);

/* Static name of a code, e.g. "EINVAL". Never NULL. */
const char *hvs_rc_name(int code);

#endif
