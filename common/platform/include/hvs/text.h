/*
 * text.h - small in-place text helpers for the files users hand us: blank trimming, and one
 * line of CSV split into cells (RFC 4180 quoting: a cell in double quotes may hold commas, and
 * "" inside it is one quote; no line break inside a cell). Shared by hvsctl's loaders (topology,
 * weather import, score) and the calendar's region file.
 *
 * Cells: blanks around a cell are dropped; a quoted cell keeps what is inside its quotes
 * verbatim. A trailing "\r\n" or "\n" is dropped first. An empty line is one empty cell.
 *
 * hvs_text_read_file reads a whole (small) file the user names into memory, for the parsers
 * of the data files users extend (calendar regions, profiles).
 *
 * Ownership: trim and split point into the caller's string, which is modified; nothing is
 * allocated. hvs_text_read_file's *out is malloc'd, the caller frees it.
 * Thread-safety: pure functions (read_file touches only its own FILE).
 * Errors: hvs_text_read_file returns 0, HVS_EINVAL (reason `reason`: the file cannot be opened
 * or read, or holds NUL bytes; the message names the file) or HVS_ENOMEM. hvs_text_csv_split returns the cell count, -1 for a malformed line (a quote left
 * open, text after a closing quote), or max + 1 when the line has more than max cells (cells
 * then holds the first max).
 */
#ifndef HVS_TEXT_H
#define HVS_TEXT_H

#include <stddef.h>

#include "hvs/err.h"

/* s without leading and trailing white space (isspace); the end is cut in place. */
char *hvs_text_trim(char *s);

int hvs_text_csv_split(char *line, char **cells, int max);

/* The whole file at `path` into *out, NUL-terminated, its length in *len (may be NULL); `what`
 * names it in messages ("calendar file"), `reason` is err->reason on failure. On failure *out
 * is untouched. */
int hvs_text_read_file(const char *path, const char *what, const char *reason, char **out,
                       size_t *len, hvs_err_t *err);

#endif
