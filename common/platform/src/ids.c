/* ids.c - the one id rule (see hvs/ids.h). */
#include "hvs/ids.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

/*
 * Decode the UTF-8 sequence at s[i] (n bytes in all) into *cp and its length *len. NULL when
 * it is well-formed, else what is wrong with it (for the message). Written out by hand rather
 * than with mbrtowc: the C library's answer depends on the locale, and glibc's accepts some
 * sequences (surrogates) that a Redis key or a JSON log line must not carry.
 */
static const char *decode(const unsigned char *s, size_t n, size_t i, uint32_t *cp, size_t *len) {
    unsigned char b = s[i];
    size_t need;
    uint32_t min;
    if (b < 0x80) {
        *cp = b;
        *len = 1;
        return NULL;
    }
    if (b < 0xC0)
        return "a continuation byte without a lead byte";
    if (b < 0xC2)
        return "an overlong encoding"; /* C0, C1 only ever encode ASCII again */
    if (b < 0xE0)
        need = 1, min = 0x80, *cp = b & 0x1Fu;
    else if (b < 0xF0)
        need = 2, min = 0x800, *cp = b & 0x0Fu;
    else if (b < 0xF5)
        need = 3, min = 0x10000, *cp = b & 0x07u;
    else
        return "a code point above U+10FFFF or a byte UTF-8 never uses";
    for (size_t k = 1; k <= need; k++) {
        if (i + k >= n || (s[i + k] & 0xC0) != 0x80)
            return "a truncated sequence";
        *cp = (*cp << 6) | (s[i + k] & 0x3Fu);
    }
    if (*cp < min)
        return "an overlong encoding";
    if (*cp >= 0xD800 && *cp <= 0xDFFF)
        return "a UTF-16 surrogate";
    if (*cp > 0x10FFFF)
        return "a code point above U+10FFFF";
    *len = need + 1;
    return NULL;
}

int hvs_id_check_n(const char *id, size_t len, const char *field, hvs_err_t *err) {
    if (!id || len == 0)
        return hvs_err_set(err, HVS_EINVAL, HVS_ID_R_BAD, "%s is empty", field);
    if (len > HVS_ID_MAX)
        return hvs_err_set(err, HVS_EINVAL, HVS_ID_R_TOO_LONG, "%s is %zu bytes, at most %d", field,
                           len, HVS_ID_MAX);
    const unsigned char *s = (const unsigned char *)id;
    for (size_t i = 0; i < len;) {
        uint32_t cp = 0;
        size_t step = 0;
        const char *bad = decode(s, len, i, &cp, &step);
        if (bad)
            return hvs_err_set(err, HVS_EINVAL, HVS_ID_R_BAD,
                               "%s is not valid UTF-8 at byte %zu (0x%02x: %s)", field, i, s[i],
                               bad);
        if (cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F))
            return hvs_err_set(err, HVS_EINVAL, HVS_ID_R_BAD,
                               "%s has a control character (U+%04X) at byte %zu", field,
                               (unsigned)cp, i);
        if (cp == '{' || cp == '}')
            return hvs_err_set(err, HVS_EINVAL, HVS_ID_R_BAD,
                               "%s has '%c' at byte %zu (braces would break the Redis hash tag)",
                               field, (char)cp, i);
        i += step;
    }
    return HVS_OK;
}

int hvs_id_check(const char *id, const char *field, hvs_err_t *err) {
    /* one byte past the limit is enough to tell "too long" */
    return hvs_id_check_n(id, id ? strnlen(id, HVS_ID_MAX + 1) : 0, field, err);
}

/* At most 64 bytes of a key, bytes outside printable ASCII as \xNN: a key is arbitrary bytes,
 * and the message goes into logs and dead letters. */
static void printable(char *out, size_t cap, const void *key, size_t len) {
    const unsigned char *k = key;
    size_t o = 0;
    for (size_t i = 0; i < len && i < 64 && o + 5 < cap; i++) {
        if (k[i] >= 0x20 && k[i] < 0x7F && k[i] != '"' && k[i] != '\\')
            out[o++] = (char)k[i];
        else
            o += (size_t)snprintf(out + o, cap - o, "\\x%02x", k[i]);
    }
    if (len > 64 && o + 4 < cap)
        o += (size_t)snprintf(out + o, cap - o, "...");
    out[o] = '\0';
}

int hvs_id_check_key(const rd_kafka_message_t *m, const char *building_id, hvs_err_t *err) {
    if (!m->key)
        return hvs_err_set(err, HVS_EINVAL, HVS_ID_R_KEY_MISMATCH,
                           "the record has no key; its building_id is \"%.100s\"", building_id);
    size_t n = strlen(building_id);
    if (m->key_len == n && memcmp(m->key, building_id, n) == 0)
        return HVS_OK;
    char shown[300];
    printable(shown, sizeof shown, m->key, m->key_len);
    return hvs_err_set(err, HVS_EINVAL, HVS_ID_R_KEY_MISMATCH,
                       "the record's key \"%s\" differs from its building_id \"%.100s\"", shown,
                       building_id);
}
