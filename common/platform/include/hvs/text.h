/*
 * text.h - small in-place text helpers for the files users hand us: blank trimming, and one
 * line of CSV split into cells (RFC 4180 quoting: a cell in double quotes may hold commas, and
 * "" inside it is one quote; no line break inside a cell). Shared by hvsctl's loaders (topology,
 * weather import, score) and the calendar's region file.
 *
 * Cells: blanks around a cell are dropped; a quoted cell keeps what is inside its quotes
 * verbatim. A trailing "\r\n" or "\n" is dropped first. An empty line is one empty cell.
 *
 * Ownership: everything points into the caller's string, which is modified; nothing is
 * allocated. Thread-safety: pure functions.
 * Errors: hvs_text_csv_split returns the cell count, -1 for a malformed line (a quote left
 * open, text after a closing quote), or max + 1 when the line has more than max cells (cells
 * then holds the first max).
 */
#ifndef HVS_TEXT_H
#define HVS_TEXT_H

/* s without leading and trailing white space (isspace); the end is cut in place. */
char *hvs_text_trim(char *s);

int hvs_text_csv_split(char *line, char **cells, int max);

#endif
