/*
 * text: trimming and the CSV splitter (hvs/text.h) the file loaders share - plain cells with
 * blanks around them, quoted cells holding commas and doubled quotes, empty cells, line ends,
 * and the two ways a line is refused (malformed, too wide); reading a user's whole file (content
 * and length back, an empty file, a missing one, NUL bytes refused).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hvs/text.h"
#include "hvs_test.h"

static void test_trim(void) {
    char a[] = "  \t x y \r\n", b[] = "", c[] = " \t ";
    HVS_CHECK_EQ_STR(hvs_text_trim(a), "x y");
    HVS_CHECK_EQ_STR(hvs_text_trim(b), "");
    HVS_CHECK_EQ_STR(hvs_text_trim(c), "");
}

static void test_plain_and_quoted_cells(void) {
    char line[] = " time , \"Z\xc3\xbcrich, HB\" ,\"say \"\"hi\"\"\",,  4.5\t,\"\"\r\n";
    char *cells[8];
    int n = hvs_text_csv_split(line, cells, 8);
    HVS_CHECK_EQ_INT(n, 6);
    HVS_CHECK_EQ_STR(cells[0], "time");
    HVS_CHECK_EQ_STR(cells[1], "Z\xc3\xbcrich, HB"); /* the comma inside quotes stays */
    HVS_CHECK_EQ_STR(cells[2], "say \"hi\"");
    HVS_CHECK_EQ_STR(cells[3], "");
    HVS_CHECK_EQ_STR(cells[4], "4.5");
    HVS_CHECK_EQ_STR(cells[5], "");
}

static void test_edges(void) {
    char *cells[4];
    char empty[] = "\n";
    HVS_CHECK_EQ_INT(hvs_text_csv_split(empty, cells, 4), 1);
    HVS_CHECK_EQ_STR(cells[0], "");
    char trailing[] = "a,";
    HVS_CHECK_EQ_INT(hvs_text_csv_split(trailing, cells, 4), 2);
    HVS_CHECK_EQ_STR(cells[1], "");
    char open[] = "a,\"b,c";
    HVS_CHECK_EQ_INT(hvs_text_csv_split(open, cells, 4), -1);
    char after[] = "\"b\"x,c";
    HVS_CHECK_EQ_INT(hvs_text_csv_split(after, cells, 4), -1);
    char wide[] = "1,2,3,4,5,6";
    HVS_CHECK_EQ_INT(hvs_text_csv_split(wide, cells, 4), 5); /* max + 1 */
    HVS_CHECK_EQ_STR(cells[3], "4");
    char exact[] = "1,2,3,4";
    HVS_CHECK_EQ_INT(hvs_text_csv_split(exact, cells, 4), 4);
    HVS_CHECK_EQ_STR(cells[3], "4");
}

static void write_bytes(const char *path, const char *b, size_t n) {
    FILE *f = fopen(path, "wb");
    HVS_CHECK(f != NULL, "open %s", path);
    HVS_CHECK_EQ_INT((long)fwrite(b, 1, n, f), (long)n);
    fclose(f);
}

static void test_read_file(void) {
    char path[] = "/tmp/hvs_test_text_XXXXXX";
    int fd = mkstemp(path);
    HVS_CHECK(fd >= 0, "mkstemp %s", path);
    close(fd);
    hvs_err_t err = {0};
    char *text = NULL;
    size_t n = 0;
    /* larger than one read chunk, so the buffer grows */
    char big[10000];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (char)('a' + i % 26);
    write_bytes(path, big, sizeof big);
    HVS_CHECK_EQ_INT(hvs_text_read_file(path, "test file", "test_file", &text, &n, &err), 0);
    HVS_CHECK_EQ_INT((long)n, (long)sizeof big);
    HVS_CHECK(memcmp(text, big, sizeof big) == 0 && text[n] == '\0', "content of %s", path);
    free(text);
    write_bytes(path, "", 0);
    text = NULL;
    HVS_CHECK_EQ_INT(hvs_text_read_file(path, "test file", "test_file", &text, &n, &err), 0);
    HVS_CHECK(text != NULL && n == 0 && text[0] == '\0', "empty file: n %zu", n);
    free(text);
    write_bytes(path, "a\0b", 3);
    text = NULL;
    HVS_CHECK_EQ_INT(hvs_text_read_file(path, "test file", "test_file", &text, &n, &err),
                     HVS_EINVAL);
    HVS_CHECK(text == NULL && strstr(err.msg, "NUL") != NULL, "NUL bytes: %s", err.msg);
    HVS_CHECK_EQ_STR(err.reason, "test_file");
    unlink(path);
    HVS_CHECK_EQ_INT(hvs_text_read_file(path, "test file", "test_file", &text, NULL, &err),
                     HVS_EINVAL);
    HVS_CHECK(strstr(err.msg, path) != NULL && text == NULL, "missing file: %s", err.msg);
}

static const hvs_test_case_t cases[] = {
    {"trim", test_trim},   {"plain_and_quoted_cells", test_plain_and_quoted_cells},
    {"edges", test_edges}, {"read_file", test_read_file},
    HVS_TEST_CASES_END,
};

int main(int argc, char **argv) { return hvs_test_main(cases, argc, argv); }
