/* text.c - in-place trimming and CSV splitting (text.h). */
#include "hvs/text.h"

#include <ctype.h>
#include <string.h>

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
