#include "hvs/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *hvs_rc_name(int code) {
    switch (code) {
    case HVS_OK: return "OK";
    case HVS_EINVAL: return "EINVAL";
    case HVS_ENOMEM: return "ENOMEM";
    case HVS_EIO: return "EIO";
    case HVS_ETIMEOUT: return "ETIMEOUT";
    case HVS_EKAFKA: return "EKAFKA";
    case HVS_EREDIS: return "EREDIS";
    case HVS_ESERDE: return "ESERDE";
    case HVS_ENOTFOUND: return "ENOTFOUND";
    case HVS_ECONFIG: return "ECONFIG";
    case HVS_ESTATE: return "ESTATE";
    case HVS_EMODEL: return "EMODEL";
    default: return "EUNKNOWN";
    }
}

int hvs_err_set(hvs_err_t *err, int code, const char *reason, const char *fmt, ...) {
    if (!err)
        return code;
    err->code = code;
    snprintf(err->reason, sizeof err->reason, "%s", reason ? reason : hvs_rc_name(code));
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return code;
}

int hvs_err_wrap(hvs_err_t *err, const char *fmt, ...) {
    if (!err)
        return HVS_EINVAL;
    char prefix[HVS_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    /* Assemble by hand: the result is meant to be cut at the buffer size. */
    char old[HVS_ERR_MSG_MAX];
    memcpy(old, err->msg, sizeof old);
    size_t plen = strnlen(prefix, sizeof err->msg - 1);
    memcpy(err->msg, prefix, plen);
    size_t pos = plen;
    const char *parts[2] = {": ", old};
    for (int i = 0; i < 2; i++) {
        size_t n = strnlen(parts[i], sizeof err->msg - 1 - pos);
        memcpy(err->msg + pos, parts[i], n);
        pos += n;
    }
    err->msg[pos] = '\0';
    return err->code;
}

void hvs_err_clear(hvs_err_t *err) {
    if (!err)
        return;
    err->code = 0;
    err->reason[0] = '\0';
    err->msg[0] = '\0';
}

bool hvs_err_is_fatal(const hvs_err_t *err) {
    return err && err->code != 0 && strcmp(err->reason, HVS_REASON_FATAL) == 0;
}
