/* text.c - in-place trimming and CSV splitting (text.h). */
#include "hvs/text.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hvs/vec.h"

char *hvs_text_trim(char *s) {
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

static char *skip_blanks(char *p) {
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

/*
 * Splits `line` in place. Each turn takes one cell starting at p: a quoted one is unescaped
 * onto itself (the text only shrinks), an unquoted one ends at the next comma and loses its
 * trailing blanks. The count goes on past max so the caller learns the line was too wide.
 */
int hvs_text_csv_split(char *line, char **cells, int max) {
    size_t len = strlen(line);
    while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
        line[--len] = '\0';
    int n = 0;
    char *p = line;
    for (;;) {
        p = skip_blanks(p);
        char *cell = p, *next;
        if (*p == '"') {
            char *w = cell = ++p;
            for (;;) {
                if (*p == '\0')
                    return -1; /* a quote left open */
                if (*p == '"' && p[1] == '"')
                    *w++ = '"', p += 2;
                else if (*p == '"')
                    break;
                else
                    *w++ = *p++;
            }
            p = skip_blanks(p + 1);
            if (*p != '\0' && *p != ',')
                return -1; /* text after the closing quote */
            next = *p == ',' ? p + 1 : NULL;
            *w = '\0';
        } else {
            char *comma = strchr(p, ',');
            char *end = comma ? comma : p + strlen(p);
            next = comma ? comma + 1 : NULL;
            while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
                end--;
            *end = '\0';
        }
        if (n < max)
            cells[n] = cell;
        n++;
        if (!next)
            return n > max ? max + 1 : n;
        p = next;
    }
}

int hvs_text_read_file(const char *path, const char *what, const char *reason, char **out,
                       size_t *len, hvs_err_t *err) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return hvs_err_set(err, HVS_EINVAL, reason, "%s %s: %s", what, path, strerror(errno));
    char *text = NULL;
    size_t n = 0, cap = 0, got;
    char chunk[4096];
    int rc = 0;
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) {
        char *g = hvs_vec_grow(text, &cap, n + got + 1, 1, 8192);
        if (!g) {
            rc = hvs_err_set(err, HVS_ENOMEM, NULL, "out of memory");
            break;
        }
        text = g;
        memcpy(text + n, chunk, got);
        n += got;
    }
    if (!rc && ferror(f))
        rc = hvs_err_set(err, HVS_EINVAL, reason, "%s %s: read error", what, path);
    fclose(f);
    if (!rc && !text && !(text = calloc(1, 1)))
        rc = hvs_err_set(err, HVS_ENOMEM, NULL, "out of memory");
    if (!rc && memchr(text, '\0', n))
        rc = hvs_err_set(err, HVS_EINVAL, reason, "%s %s holds NUL bytes", what, path);
    if (rc) {
        free(text);
        return rc;
    }
    text[n] = '\0';
    *out = text;
    if (len)
        *len = n;
    return HVS_OK;
}
