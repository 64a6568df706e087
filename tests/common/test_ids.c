/*
 * ids: the one id rule (hvs/ids.h), each rule on its own - length, empty, every kind of invalid
 * UTF-8, controls, braces - with the reason and the byte offset the message names; and the
 * Kafka key check.
 */
#include <string.h>

#include "hvs/ids.h"
#include "hvs_test.h"

/* The reason for `len` bytes of `id` ("" when accepted); the message into msg. */
static const char *judge_n(const char *id, size_t len, char *msg, size_t cap) {
    static hvs_err_t err;
    hvs_err_clear(&err);
    int rc = hvs_id_check_n(id, len, "building_id", &err);
    snprintf(msg, cap, "%s", err.msg);
    if (rc == 0)
        return "";
    HVS_CHECK_EQ_INT(rc, HVS_EINVAL);
    return err.reason;
}

static const char *judge(const char *id) {
    char msg[HVS_ERR_MSG_MAX];
    return judge_n(id, strlen(id), msg, sizeof msg);
}

static void test_accepts_printable_utf8(void) {
    const char *good[] = {
        "bldg_A123",
        "a",
        "Zürich-Höngg 12",       /* 2-byte sequences */
        "東京-ビル",             /* 3-byte */
        "\xf0\x9f\x8f\xa0 home", /* U+1F3E0, 4-byte */
        "\xf4\x8f\xbf\xbf",      /* U+10FFFF, the last code point */
        "\xc2\xa0nbsp",          /* U+00A0: right after the C1 controls */
        "\xed\x9f\xbf",          /* U+D7FF: right before the surrogates */
        "\xee\x80\x80",          /* U+E000: right after them */
        "a b/c:d#e[f]",          /* ':' and brackets are fine: only braces tag keys */
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        HVS_CHECK(strcmp(judge(good[i]), "") == 0, "good[%zu] refused: %s", i, judge(good[i]));
}

static void test_empty(void) {
    HVS_CHECK_EQ_STR(judge(""), "bad_id");
    hvs_err_t err = {0};
    HVS_CHECK_EQ_INT(hvs_id_check(NULL, "apartment_id", &err), HVS_EINVAL);
    HVS_CHECK(strstr(err.msg, "apartment_id is empty") != NULL, "%s", err.msg);
}

/* 256 bytes are the most: 257 are "id_too_long", also when the bytes are multi-byte chars. */
static void test_length_limit(void) {
    char id[HVS_ID_MAX + 2];
    memset(id, 'x', sizeof id);
    id[HVS_ID_MAX] = '\0';
    HVS_CHECK_EQ_STR(judge(id), "");
    id[HVS_ID_MAX] = 'x';
    id[HVS_ID_MAX + 1] = '\0';
    HVS_CHECK_EQ_STR(judge(id), "id_too_long");
    /* 128 x "é" = 256 bytes: fine; one more "é" is over */
    char wide[300] = "";
    for (int i = 0; i < 128; i++)
        strcat(wide, "\xc3\xa9");
    HVS_CHECK_EQ_STR(judge(wide), "");
    strcat(wide, "\xc3\xa9");
    HVS_CHECK_EQ_STR(judge(wide), "id_too_long");
    /* hvs_id_check does not read past the limit of an unterminated-looking long string */
    hvs_err_t err = {0};
    HVS_CHECK_EQ_INT(hvs_id_check(wide, "room_name", &err), HVS_EINVAL);
    HVS_CHECK_EQ_STR(err.reason, "id_too_long");
    HVS_CHECK(strstr(err.msg, "room_name") != NULL, "names the field: %s", err.msg);
}

static void test_braces(void) {
    char msg[HVS_ERR_MSG_MAX];
    HVS_CHECK_EQ_STR(judge_n("bad{id", 6, msg, sizeof msg), "bad_id");
    HVS_CHECK(strstr(msg, "building_id") && strstr(msg, "byte 3") && strstr(msg, "'{'"), "%s", msg);
    HVS_CHECK_EQ_STR(judge_n("}", 1, msg, sizeof msg), "bad_id");
    HVS_CHECK(strstr(msg, "byte 0") != NULL, "%s", msg);
    HVS_CHECK_EQ_STR(judge("{bldg_2}"), "bad_id");
}

/* Each kind of malformed UTF-8, with the offset of its first byte. */
static void test_invalid_utf8(void) {
    struct {
        const char *bytes, *what;
        size_t at;
    } bad[] = {
        {"ab\x80", "continuation byte without a lead", 2},
        {"a\xbf", "continuation byte without a lead", 1},
        {"a\xc3", "truncated sequence", 1},        /* 2-byte lead at the end */
        {"a\xe6\x9d", "truncated sequence", 1},    /* 3-byte lead, one continuation */
        {"\xf0\x9f\x8f", "truncated sequence", 0}, /* 4-byte lead, two */
        {"a\xc3(", "truncated sequence", 1},       /* a lead followed by ASCII */
        {"\xc0\xaf", "overlong", 0},               /* '/' in two bytes */
        {"x\xc1\xbf", "overlong", 1},              /* U+007F in two bytes */
        {"\xe0\x80\xaf", "overlong", 0},           /* '/' in three bytes */
        {"\xe0\x9f\xbf", "overlong", 0},           /* U+07FF in three bytes */
        {"\xf0\x80\x80\xaf", "overlong", 0},       /* '/' in four bytes */
        {"\xf0\x8f\xbf\xbf", "overlong", 0},       /* U+FFFF in four bytes */
        {"ok\xed\xa0\x80", "surrogate", 2},        /* U+D800 */
        {"\xed\xbf\xbf", "surrogate", 0},          /* U+DFFF */
        {"\xf4\x90\x80\x80", "above U+10FFFF", 0}, /* U+110000 */
        {"\xf5\x80\x80\x80", "above U+10FFFF", 0}, /* a lead byte UTF-8 never uses */
        {"\xff", "above U+10FFFF", 0},
        {"\xfe", "above U+10FFFF", 0},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char msg[HVS_ERR_MSG_MAX], at[32];
        const char *r = judge_n(bad[i].bytes, strlen(bad[i].bytes), msg, sizeof msg);
        snprintf(at, sizeof at, "byte %zu", bad[i].at);
        HVS_CHECK(strcmp(r, "bad_id") == 0 && strstr(msg, "not valid UTF-8") &&
                      strstr(msg, bad[i].what) && strstr(msg, at),
                  "bad[%zu] (%s): %s: %s", i, bad[i].what, r, msg);
    }
}

/* C0 controls, DEL and C1 controls (U+0080..U+009F, which are valid UTF-8), and NUL inside. */
static void test_controls(void) {
    const char *ctl[] = {"a\tb", "a\nb",      "\x1b[31m",  "a\x7f",
                         "\x01", "a\xc2\x80", "a\xc2\x9f", "new\rline"};
    for (size_t i = 0; i < sizeof ctl / sizeof ctl[0]; i++) {
        char msg[HVS_ERR_MSG_MAX];
        const char *r = judge_n(ctl[i], strlen(ctl[i]), msg, sizeof msg);
        HVS_CHECK(strcmp(r, "bad_id") == 0 && strstr(msg, "control character"), "ctl[%zu]: %s: %s",
                  i, r, msg);
    }
    char msg[HVS_ERR_MSG_MAX];
    HVS_CHECK_EQ_STR(judge_n("ab\0cd", 5, msg, sizeof msg), "bad_id"); /* NUL inside a key */
    HVS_CHECK(strstr(msg, "U+0000") && strstr(msg, "byte 2"), "%s", msg);
}

static void test_key_check(void) {
    rd_kafka_message_t m = {0};
    hvs_err_t err = {0};
    m.key = "bldg_1";
    m.key_len = 6;
    HVS_CHECK_EQ_INT(hvs_id_check_key(&m, "bldg_1", &err), 0);
    /* a prefix, a longer key, another building: all mismatches naming both */
    HVS_CHECK_EQ_INT(hvs_id_check_key(&m, "bldg_10", &err), HVS_EINVAL);
    HVS_CHECK_EQ_STR(err.reason, "key_mismatch");
    HVS_CHECK(strstr(err.msg, "\"bldg_1\"") && strstr(err.msg, "\"bldg_10\""), "%s", err.msg);
    m.key_len = 4;
    HVS_CHECK_EQ_INT(hvs_id_check_key(&m, "bldg_1", &err), HVS_EINVAL);
    /* no key at all */
    m.key = NULL;
    m.key_len = 0;
    HVS_CHECK_EQ_INT(hvs_id_check_key(&m, "bldg_1", &err), HVS_EINVAL);
    HVS_CHECK_EQ_STR(err.reason, "key_mismatch");
    HVS_CHECK(strstr(err.msg, "no key") != NULL, "%s", err.msg);
    /* binary key bytes are shown escaped, never raw into a log line */
    m.key = "b\n\xff";
    m.key_len = 3;
    HVS_CHECK_EQ_INT(hvs_id_check_key(&m, "b", &err), HVS_EINVAL);
    HVS_CHECK(strstr(err.msg, "b\\x0a\\xff") != NULL, "%s", err.msg);
}

static const hvs_test_case_t cases[] = {
    {"accepts_printable_utf8", test_accepts_printable_utf8},
    {"empty", test_empty},
    {"length_limit", test_length_limit},
    {"braces", test_braces},
    {"invalid_utf8", test_invalid_utf8},
    {"controls", test_controls},
    {"key_check", test_key_check},
    HVS_TEST_CASES_END,
};

int main(int argc, char **argv) { return hvs_test_main(cases, argc, argv); }
