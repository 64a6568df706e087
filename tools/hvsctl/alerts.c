/*
 * hvsctl alerts: the alert book hvs-alerter keeps in Redis (alertbook.h), for the people who work
 * the list: list and show read the book; ack and resolve send a technician's Feedback to
 * alerts.feedback, after checking in the book that the alerter will take it.
 *
 * The book: hvs:al:buildings (SET of buildings), hvs:{B}:al:alerts (HASH alert id -> value whose
 * first line is the entry; the rest is the alerter's ranking data, ignored here). Reads are
 * pipelined (one batch for every building's hash).
 *
 * An entry's day (column DAY, --date, sorting): list_day, the UTC day of the daily list that
 * raised it; for an entry no list raised (CRITICAL at once, or never raised) the UTC date of its
 * first_seen.
 */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "hvs/alertbook.h"
#include "hvs/feedback.h"
#include "hvs/kafka.h"
#include "hvs/redis.h"
#include "hvs/serde.h"
#include "hvs/topics.h"
#include "hvsctl.h"

static const char *const help =
    "Usage: hvsctl alerts list [--team T] [--status S] [--date YYYY-MM-DD] [--suppressed] [--all]\n"
    "                          [--json]\n"
    "       hvsctl alerts show ID [--building B] [--json]\n"
    "       hvsctl alerts ack ID --by WHO [--comment X] [--building B]\n"
    "       hvsctl alerts resolve ID (--true-positive|--false-positive) --by WHO [--cause C]\n"
    "                             [--comment X] [--building B]\n"
    "\n"
    "The alert book of hvs-alerter (Redis, HVS_REDIS_URL): every apartment alert it judged.\n"
    "  list      RAISED alerts (the list technicians work); --suppressed the SUPPRESSED ones with\n"
    "            their reason; --all every disposition (CANDIDATE, RAISED, SUPPRESSED, EXPIRED).\n"
    "            --team T (\"-\" = the default team), --status UNSEEN|INVESTIGATING|\n"
    "            RESOLVED_TRUE_POSITIVE|RESOLVED_FALSE_POSITIVE, --date D: the day of the daily\n"
    "            list that raised it (else the UTC date of first_seen). Sorted by team, day (newest\n"
    "            first), rank (unranked CRITICAL first), score. REASONS is cut to the terminal\n"
    "            width (60 characters when not a terminal); --json prints every field, one JSON\n"
    "            object per line.\n"
    "  show      every field of one alert, its evidence, reasons and latest feedback. Alert ids\n"
    "            do not name the building: every building's book is searched (--building B only\n"
    "            that one).\n"
    "  ack       acknowledge (Feedback UNSURE: the alert becomes INVESTIGATING);\n"
    "  resolve   a verdict (TRUE_POSITIVE / FALSE_POSITIVE, with an optional root cause).\n"
    "            Both send to alerts.feedback (HVS_KAFKA_BROKERS), labelled now, and refuse an\n"
    "            alert the book does not hold or never raised (the alerter would dead-letter it),\n"
    "            and ack refuses a resolved alert (an acknowledgement does not reopen a verdict).\n"
    "Exit status: 0 done, 1 not found / refused / Redis or Kafka failure, 2 usage.";

#define BOOK_BUILDINGS "hvs:al:buildings"

/* ---- reading the book ----------------------------------------------------------------------- */

typedef struct book {
    hvs_alertbook_entry_t *e;
    size_t n, cap;
} book_t;

static size_t skipped; /* entries reported and left out (parse_value) */

/* " (N entries of the book are left out: see above)" when some were, else "". */
static const char *skipped_note(void) {
    static char note[96];
    if (!skipped)
        return "";
    snprintf(note, sizeof note, " (%zu entr%s of the book left out: see above)", skipped,
             skipped == 1 ? "y" : "ies");
    return note;
}

static void book_free(book_t *b) {
    free(b->e);
    *b = (book_t){0};
}

static int book_push(book_t *b, const hvs_alertbook_entry_t *e) {
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        hvs_alertbook_entry_t *p = realloc(b->e, cap * sizeof *p);
        if (!p)
            return -1;
        b->e = p, b->cap = cap;
    }
    b->e[b->n++] = *e;
    return 0;
}

/* Parse a hash value's first line; a bad entry is reported (naming its key and field) and
 * skipped: one broken entry does not hide the rest of the book. */
static int parse_value(const char *building, const char *field, const char *s, size_t n,
                       hvs_alertbook_entry_t *e) {
    const char *nl = memchr(s, '\n', n);
    hvs_err_t err;
    if (hvs_alertbook_parse(s, nl ? (size_t)(nl - s) : n, e, &err) != 0) {
        fprintf(stderr, "hvsctl alerts: skipping hvs:{%s}:al:alerts field %s: %s\n", building,
                field, err.msg);
        skipped++;
        return -1;
    }
    if (!e->building[0])
        snprintf(e->building, sizeof e->building, "%s", building);
    if (strcmp(e->building, building) != 0) { /* feedback would go to the wrong building */
        fprintf(stderr,
                "hvsctl alerts: skipping hvs:{%s}:al:alerts field %s: the entry names building "
                "%s\n",
                building, field, e->building);
        skipped++;
        return -1;
    }
    return 0;
}

typedef struct buildings {
    char **id;
    size_t n;
} buildings_t;

static void buildings_free(buildings_t *b) {
    for (size_t i = 0; i < b->n; i++)
        free(b->id[i]);
    free(b->id);
    *b = (buildings_t){0};
}

/* SMEMBERS hvs:al:buildings, sorted (so output does not depend on Redis's set order); `only`
 * (may be NULL) keeps just that building. */
static int load_buildings(hvs_redis_t *r, const char *only, buildings_t *out, hvs_err_t *err) {
    redisReply *rep = NULL;
    int rc = hvs_redis_command(r, &rep, err, "SMEMBERS %s", BOOK_BUILDINGS);
    if (rc)
        return rc;
    if (rep->type != REDIS_REPLY_ARRAY) {
        rc = hvs_err_set(err, HVS_EREDIS, "reply_error", "SMEMBERS %s: %s", BOOK_BUILDINGS,
                         rep->type == REDIS_REPLY_ERROR ? rep->str : "not a set");
        freeReplyObject(rep);
        return rc;
    }
    out->id = calloc(rep->elements + 1, sizeof *out->id);
    out->n = 0;
    bool oom = !out->id;
    for (size_t i = 0; !oom && i < rep->elements; i++) {
        const redisReply *x = rep->element[i];
        if (x->type != REDIS_REPLY_STRING || (only && strcmp(x->str, only) != 0))
            continue;
        if (!(out->id[out->n] = strdup(x->str)))
            oom = true;
        else
            out->n++;
    }
    freeReplyObject(rep);
    if (oom) {
        buildings_free(out);
        return hvs_err_set(err, HVS_ENOMEM, NULL, "reading %s: out of memory", BOOK_BUILDINGS);
    }
    for (size_t i = 1; i < out->n; i++) /* insertion sort: a few hundred ids at most */
        for (size_t j = i; j > 0 && strcmp(out->id[j - 1], out->id[j]) > 0; j--) {
            char *t = out->id[j];
            out->id[j] = out->id[j - 1], out->id[j - 1] = t;
        }
    return 0;
}

/*
 * Entries of every building (id NULL: HGETALL) or the entry of alert `id` in each building that
 * holds it (HGET), in one pipeline. Building ids that cannot form a key are reported and skipped.
 */
static int load_entries(hvs_redis_t *r, const buildings_t *bs, const char *id, book_t *book,
                        hvs_err_t *err) {
    hvs_redis_batch_t *b = hvs_redis_batch_new();
    if (!b)
        return hvs_err_set(err, HVS_ENOMEM, NULL, "reading the alert book: out of memory");
    size_t *which = calloc(bs->n + 1, sizeof *which);
    int rc = which ? 0 : hvs_err_set(err, HVS_ENOMEM, NULL, "reading the alert book");
    size_t nq = 0;
    for (size_t i = 0; !rc && i < bs->n; i++) {
        char key[512];
        hvs_err_t kerr;
        if (hvs_redis_key(key, sizeof key, bs->id[i], &kerr, "al:alerts") < 0) {
            fprintf(stderr, "hvsctl alerts: skipping building %s of %s: %s\n", bs->id[i],
                    BOOK_BUILDINGS, kerr.msg);
            continue;
        }
        int arc = id ? hvs_redis_batch_addf(b, "HGET %s %s", key, id)
                     : hvs_redis_batch_addf(b, "HGETALL %s", key);
        if (arc)
            rc = hvs_err_set(err, HVS_ENOMEM, NULL, "reading the alert book of %s", bs->id[i]);
        which[nq++] = i;
    }
    if (!rc && nq && !(rc = hvs_redis_batch_exec(r, b, err)))
        rc = hvs_redis_batch_check(b, err);
    for (size_t q = 0; !rc && q < nq; q++) {
        const redisReply *rep = hvs_redis_batch_reply(b, q);
        const char *bid = bs->id[which[q]];
        hvs_alertbook_entry_t e;
        if (id) {
            if (rep && rep->type == REDIS_REPLY_STRING &&
                parse_value(bid, id, rep->str, rep->len, &e) == 0 && book_push(book, &e))
                rc = hvs_err_set(err, HVS_ENOMEM, NULL, "reading the alert book of %s", bid);
            continue;
        }
        if (!rep || (rep->type != REDIS_REPLY_ARRAY))
            continue;
        for (size_t k = 0; !rc && k + 1 < rep->elements; k += 2) {
            const redisReply *f = rep->element[k], *v = rep->element[k + 1];
            if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
                continue;
            if (parse_value(bid, f->str, v->str, v->len, &e) == 0 && book_push(book, &e))
                rc = hvs_err_set(err, HVS_ENOMEM, NULL, "reading the alert book of %s", bid);
        }
    }
    free(which);
    hvs_redis_batch_destroy(b);
    return rc;
}

/* Connect and read (see load_entries); prints why on failure. 0 or 1. */
static int read_book(hvs_app_t *app, const char *building, const char *id, book_t *book) {
    hvs_redis_opts_t o = {.retry_budget_ms = 5000}; /* a person is waiting */
    hvs_redis_t *r = NULL;
    buildings_t bs = {0};
    hvs_err_t err;
    int rc = hvs_redis_connect(app->cfg.redis_url, &o, &r, &err);
    if (!rc)
        rc = load_buildings(r, building, &bs, &err);
    if (!rc)
        rc = load_entries(r, &bs, id, book, &err);
    if (rc)
        fprintf(stderr, "hvsctl alerts: reading the alert book: %s\n", err.msg);
    buildings_free(&bs);
    hvs_redis_destroy(r);
    return rc ? 1 : 0;
}

/* ---- presentation --------------------------------------------------------------------------- */

/* The entry's day: its list's, else the UTC day of first_seen. */
static hvs_ms_t entry_day(const hvs_alertbook_entry_t *e) {
    return e->list_day ? e->list_day : hvs_time_day_start(e->first_seen);
}

static const char *day_str(hvs_ms_t t, char buf[16]) {
    char iso[32];
    hvs_time_format_iso8601(t, iso, sizeof iso);
    snprintf(buf, 16, "%.10s", iso);
    return buf;
}

static const char *time_str(hvs_ms_t t, char buf[32]) {
    return t ? hvs_time_format_iso8601(t, buf, 32) : "-";
}

static const char *team_str(const hvs_alertbook_entry_t *e) { return e->team[0] ? e->team : "-"; }

/* 0 unranked CRITICAL, 1 ranked, 2 the rest. */
static int rank_class(const hvs_alertbook_entry_t *e) {
    if (e->rank > 0)
        return 1;
    return e->severity == HVS_SEVERITY_CRITICAL ? 0 : 2;
}

static int cmp_entry(const void *pa, const void *pb) {
    const hvs_alertbook_entry_t *a = pa, *b = pb;
    int c = strcmp(a->team, b->team);
    if (c)
        return c;
    hvs_ms_t da = entry_day(a), db = entry_day(b);
    if (da != db)
        return da > db ? -1 : 1;
    int ra = rank_class(a), rb = rank_class(b);
    if (ra != rb)
        return ra - rb;
    if (ra == 1 && a->rank != b->rank)
        return a->rank - b->rank;
    double sa = isnan(a->score) ? -INFINITY : a->score, sb = isnan(b->score) ? -INFINITY : b->score;
    if (sa != sb)
        return sa > sb ? -1 : 1;
    c = strcmp(a->id, b->id);
    return c ? c : strcmp(a->building, b->building);
}

static json_t *num_or_null(double v) { return isnan(v) ? json_null() : json_real(v); }
static json_t *ms_or_null(hvs_ms_t v) { return v ? json_integer(v) : json_null(); }

/* Every field of the entry (times in ms since the epoch, 0 = null), plus "day". */
static json_t *entry_json(const hvs_alertbook_entry_t *e) {
    char day[16];
    json_t *o = json_object(), *rules = json_array();
    for (int i = 0; i < HVS_RULE_COUNT; i++)
        if (e->rules & (1u << i))
            json_array_append_new(rules, json_string(hvs_alertbook_rule_name(i)));
    json_object_set_new(o, "id", json_string(e->id));
    json_object_set_new(o, "building", json_string(e->building));
    json_object_set_new(o, "apartment", json_string(e->apartment));
    json_object_set_new(o, "team", json_string(e->team));
    json_object_set_new(o, "disposition",
                        json_string(hvs_alertbook_disposition_name(e->disposition)));
    json_object_set_new(o, "reason", json_string(e->reason));
    json_object_set_new(o, "status", json_string(hvs_alert_status_name(e->status)));
    json_object_set_new(o, "type", json_string(hvs_alert_type_name(e->type)));
    json_object_set_new(o, "severity", json_string(hvs_alert_severity_name(e->severity)));
    json_object_set_new(o, "day", json_string(day_str(entry_day(e), day)));
    json_object_set_new(o, "list_day", ms_or_null(e->list_day));
    json_object_set_new(o, "rank", e->rank > 0 ? json_integer(e->rank) : json_null());
    json_object_set_new(o, "score", num_or_null(e->score));
    json_object_set_new(o, "open", json_boolean(e->open));
    json_object_set_new(o, "first_seen", json_integer(e->first_seen));
    json_object_set_new(o, "updated_at", json_integer(e->updated_at));
    json_object_set_new(o, "model", json_string(e->model));
    json_object_set_new(o, "hours", json_integer(e->hours));
    json_object_set_new(o, "rules", rules);
    json_object_set_new(o, "max_rule", num_or_null(e->max_rule));
    json_object_set_new(o, "max_z", num_or_null(e->max_z));
    json_object_set_new(o, "max_prob", num_or_null(e->max_prob));
    json_object_set_new(o, "reasons", json_string(e->reasons));
    json_object_set_new(o, "feedback_at", ms_or_null(e->feedback_at));
    json_object_set_new(o, "technician", json_string(e->technician));
    json_object_set_new(o, "root_cause", json_string(e->root_cause));
    json_object_set_new(o, "comment", json_string(e->comment));
    return o;
}

static void print_json(json_t *o) {
    char *text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
    if (text)
        puts(text);
    free(text);
    json_decref(o);
}

/* s cut to at most `max` bytes (at a UTF-8 boundary), "..." marking a cut. */
static void cut(const char *s, size_t max, char *out, size_t outlen) {
    size_t n = strlen(s);
    if (max >= outlen)
        max = outlen - 1;
    if (n <= max) {
        memcpy(out, s, n + 1);
        return;
    }
    size_t k = max > 3 ? max - 3 : 0;
    while (k > 0 && ((unsigned char)s[k] & 0xC0) == 0x80)
        k--;
    memcpy(out, s, k);
    memcpy(out + k, "...", 4);
}

/* Terminal columns, or 0 when stdout is not a terminal. */
static int term_width(void) {
    struct winsize ws;
    if (!isatty(STDOUT_FILENO))
        return 0;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        return ws.ws_col;
    const char *c = getenv("COLUMNS");
    return c && atoi(c) > 0 ? atoi(c) : 80;
}

static size_t max_len(size_t a, const char *s) {
    size_t n = strlen(s);
    return n > a ? n : a;
}

static void print_table(const hvs_alertbook_entry_t *e, size_t n, bool with_reason) {
    size_t wt = 4, wa = 9, wy = 4, wi = 8, wr = 6;
    for (size_t i = 0; i < n; i++) {
        wt = max_len(wt, team_str(&e[i]));
        wa = max_len(wa, e[i].apartment);
        wy = max_len(wy, hvs_alert_type_name(e[i].type));
        wi = max_len(wi, e[i].id);
        wr = max_len(wr, e[i].reason[0] ? e[i].reason : "-");
    }
    char line[2048];
    int used = snprintf(line, sizeof line, "%-*s %-10s %4s %-8s %-23s %5s %-*s %-*s %-*s", (int)wt,
                        "TEAM", "DAY", "RANK", "SEVERITY", "STATUS", "SCORE", (int)wa, "APARTMENT",
                        (int)wy, "TYPE", (int)wi, "ALERT_ID");
    if (with_reason)
        used += snprintf(line + used, sizeof line - (size_t)used, " %-*s", (int)wr, "REASON");
    int cols = term_width();
    size_t room = 60;
    if (cols > 0)
        room = cols > used + 1 + 20 ? (size_t)(cols - used - 1) : 20;
    printf("%s REASONS\n", line);
    for (size_t i = 0; i < n; i++) {
        const hvs_alertbook_entry_t *x = &e[i];
        char day[16], rank[16], score[32], why[HVS_ALERTBOOK_TEXT_MAX];
        snprintf(rank, sizeof rank, x->rank > 0 ? "%d" : "-", x->rank);
        snprintf(score, sizeof score, isnan(x->score) ? "-" : "%.2f", x->score);
        cut(x->reasons[0] ? x->reasons : "-", room, why, sizeof why);
        int k = snprintf(line, sizeof line, "%-*s %-10s %4s %-8s %-23s %5s %-*s %-*s %-*s", (int)wt,
                         team_str(x), day_str(entry_day(x), day), rank,
                         hvs_alert_severity_name(x->severity), hvs_alert_status_name(x->status),
                         score, (int)wa, x->apartment, (int)wy, hvs_alert_type_name(x->type),
                         (int)wi, x->id);
        if (with_reason && k > 0 && (size_t)k < sizeof line)
            snprintf(line + k, sizeof line - (size_t)k, " %-*s", (int)wr,
                     x->reason[0] ? x->reason : "-");
        printf("%s %s\n", line, why);
    }
}

/* ---- list ----------------------------------------------------------------------------------- */

static int parse_day(const char *v, hvs_ms_t *out) {
    char iso[40];
    hvs_err_t err;
    if (!v || strlen(v) != 10) {
        fprintf(stderr, "hvsctl alerts: --date needs YYYY-MM-DD, not \"%s\"\n", v ? v : "");
        return -1;
    }
    snprintf(iso, sizeof iso, "%sT00:00:00Z", v);
    if (hvs_time_parse_iso8601(iso, out, &err) != 0) {
        fprintf(stderr, "hvsctl alerts: --date \"%s\": %s\n", v, err.msg);
        return -1;
    }
    return 0;
}

static int parse_status(const char *v, hvs_alert_status_t *out) {
    char up[64];
    size_t i = 0;
    for (; v && v[i] && i + 1 < sizeof up; i++)
        up[i] = (char)(v[i] >= 'a' && v[i] <= 'z' ? v[i] - 32 : v[i]);
    up[i] = '\0';
    if (!v || hvs_alert_status_parse(up, out) != 0) {
        fprintf(stderr,
                "hvsctl alerts: --status \"%s\" is not one of UNSEEN, INVESTIGATING, "
                "RESOLVED_TRUE_POSITIVE, RESOLVED_FALSE_POSITIVE\n",
                v ? v : "");
        return -1;
    }
    return 0;
}

static int cmd_list(hvs_app_t *app, int argc, char **argv) {
    const char *team = NULL;
    bool has_status = false, has_day = false, suppressed = false, all = false, json = false;
    hvs_alert_status_t status = HVS_ALERT_UNSEEN;
    hvs_ms_t day = 0;
    for (int i = 0; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(argv[i], "--team") == 0 && v)
            team = strcmp(v, "-") == 0 ? "" : v, i++;
        else if (strcmp(argv[i], "--status") == 0) {
            if (parse_status(v, &status))
                return 2;
            has_status = true, i++;
        } else if (strcmp(argv[i], "--date") == 0) {
            if (parse_day(v, &day))
                return 2;
            has_day = true, i++;
        } else if (strcmp(argv[i], "--suppressed") == 0)
            suppressed = true;
        else if (strcmp(argv[i], "--all") == 0)
            all = true;
        else if (strcmp(argv[i], "--json") == 0)
            json = true;
        else {
            fprintf(stderr, "hvsctl alerts list: unknown option or missing value: %s\n", argv[i]);
            return 2;
        }
    }
    book_t book = {0};
    if (read_book(app, NULL, NULL, &book))
        return 1;
    hvs_alertbook_disposition_t want = suppressed ? HVS_ALERTBOOK_SUPPRESSED : HVS_ALERTBOOK_RAISED;
    size_t k = 0;
    for (size_t i = 0; i < book.n; i++) {
        const hvs_alertbook_entry_t *e = &book.e[i];
        if ((!all && e->disposition != want) || (team && strcmp(e->team, team) != 0) ||
            (has_status && e->status != status) || (has_day && entry_day(e) != day))
            continue;
        book.e[k++] = *e;
    }
    if (k)
        qsort(book.e, k, sizeof *book.e, cmp_entry);
    if (json)
        for (size_t i = 0; i < k; i++)
            print_json(entry_json(&book.e[i]));
    else if (k)
        print_table(book.e, k, suppressed || all);
    else
        fprintf(stderr, "hvsctl alerts: no %s%s match (%zu in the book)%s\n",
                all ? "" : hvs_alertbook_disposition_name(want), all ? "alerts" : " alerts", book.n,
                skipped_note());
    book_free(&book);
    return 0;
}

/* ---- show ----------------------------------------------------------------------------------- */

static void print_entry(const hvs_alertbook_entry_t *e) {
    const char *ev[2 * HVS_ALERTBOOK_EVIDENCE + 1];
    char evtext[HVS_ALERTBOOK_EVIDENCE][HVS_ALERTBOOK_NAME_MAX], summary[1024], t[32], day[16];
    hvs_alert_t a;
    hvs_alertbook_to_alert(e, &a, ev, evtext, summary, sizeof summary);
#define F(name, ...)                                                                               \
    do {                                                                                           \
        printf("%-12s ", name);                                                                    \
        printf(__VA_ARGS__);                                                                       \
        putchar('\n');                                                                             \
    } while (0)
    F("alert", "%s", e->id);
    F("building", "%s", e->building);
    F("apartment", "%s", e->apartment[0] ? e->apartment : "-");
    F("team", "%s", team_str(e));
    F("disposition", "%s", hvs_alertbook_disposition_name(e->disposition));
    F("reason", "%s", e->reason[0] ? e->reason : "-");
    F("status", "%s", hvs_alert_status_name(e->status));
    F("type", "%s", hvs_alert_type_name(e->type));
    F("severity", "%s", hvs_alert_severity_name(e->severity));
    if (e->rank > 0)
        F("rank", "%d", e->rank);
    else
        F("rank", "-");
    F("list_day", "%s", e->list_day ? day_str(e->list_day, day) : "-");
    F("score", "%.4f", e->score);
    F("open", "%s", e->open ? "yes (the episode lasts)" : "no");
    F("first_seen", "%s", time_str(e->first_seen, t));
    F("updated_at", "%s", time_str(e->updated_at, t));
    F("hours", "%d", e->hours);
    F("model", "%s", e->model[0] ? e->model : "- (rules)");
    F("summary", "%s", summary);
    puts("evidence");
    for (int i = 0; ev[i]; i += 2)
        if (strcmp(ev[i], "reasons") != 0 && strcmp(ev[i], "technician") != 0 &&
            strcmp(ev[i], "root_cause") != 0 && strcmp(ev[i], "comment") != 0)
            printf("  %-14s %s\n", ev[i], ev[i + 1]);
    puts("reasons");
    if (!e->reasons[0])
        puts("  -");
    for (const char *p = e->reasons; *p;) { /* "; "-joined: one a line */
        const char *q = strstr(p, "; ");
        int len = q ? (int)(q - p) : (int)strlen(p);
        printf("  %.*s\n", len, p);
        p = q ? q + 2 : p + len;
    }
    puts("feedback (the latest accepted; the book keeps no older ones)");
    if (!e->feedback_at) {
        puts("  none");
    } else {
        printf("  %-14s %s\n", "labelled_at", time_str(e->feedback_at, t));
        printf("  %-14s %s\n", "technician", e->technician);
        printf("  %-14s %s\n", "root_cause", e->root_cause[0] ? e->root_cause : "-");
        printf("  %-14s %s\n", "comment", e->comment[0] ? e->comment : "-");
    }
#undef F
}

/* Is option `a` one of the space-separated words of `allowed`? */
static bool allows(const char *allowed, const char *a) {
    size_t n = strlen(a);
    for (const char *p = allowed; (p = strstr(p, a)) != NULL; p += n)
        if ((p == allowed || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
            return true;
    return false;
}

/* Parse "ID [--building B] [--json]" and the other options a command allows; -1 usage. */
typedef struct id_opts {
    const char *id, *building, *by, *comment, *cause;
    bool json, tp, fp;
} id_opts_t;

static int parse_id_opts(const char *cmd, int argc, char **argv, const char *allowed,
                         id_opts_t *o) {
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        const char **slot = NULL;
        bool *flag = NULL;
        if (strcmp(a, "--building") == 0)
            slot = &o->building;
        else if (strcmp(a, "--by") == 0)
            slot = &o->by;
        else if (strcmp(a, "--comment") == 0)
            slot = &o->comment;
        else if (strcmp(a, "--cause") == 0)
            slot = &o->cause;
        else if (strcmp(a, "--json") == 0)
            flag = &o->json;
        else if (strcmp(a, "--true-positive") == 0)
            flag = &o->tp;
        else if (strcmp(a, "--false-positive") == 0)
            flag = &o->fp;
        else if (a[0] != '-' && !o->id) {
            o->id = a;
            continue;
        }
        if ((!slot && !flag) || !allows(allowed, a)) {
            fprintf(stderr, "hvsctl alerts %s: unexpected argument %s\n", cmd, a);
            return -1;
        }
        if (flag) {
            *flag = true;
            continue;
        }
        if (!v) {
            fprintf(stderr, "hvsctl alerts %s: %s needs a value\n", cmd, a);
            return -1;
        }
        *slot = v, i++;
    }
    if (!o->id || !o->id[0]) {
        fprintf(stderr,
                "hvsctl alerts %s: which alert? (an alert id, e.g. apt_1#2024-11-05#ANOMALY)\n",
                cmd);
        return -1;
    }
    return 0;
}

static int cmd_show(hvs_app_t *app, int argc, char **argv) {
    id_opts_t o = {0};
    if (parse_id_opts("show", argc, argv, "--building --json", &o))
        return 2;
    book_t book = {0};
    if (read_book(app, o.building, o.id, &book))
        return 1;
    if (book.n == 0) {
        fprintf(stderr, "hvsctl alerts show: alert %s is not in the alert book%s%s%s\n", o.id,
                o.building ? " of building " : "", o.building ? o.building : "", skipped_note());
        book_free(&book);
        return 1;
    }
    for (size_t i = 0; i < book.n; i++) {
        if (o.json) {
            const hvs_alertbook_entry_t *e = &book.e[i];
            const char *ev[2 * HVS_ALERTBOOK_EVIDENCE + 1];
            char evtext[HVS_ALERTBOOK_EVIDENCE][HVS_ALERTBOOK_NAME_MAX], summary[1024];
            hvs_alert_t a;
            hvs_alertbook_to_alert(e, &a, ev, evtext, summary, sizeof summary);
            json_t *j = entry_json(e), *evj = json_object();
            for (int k = 0; ev[k]; k += 2)
                json_object_set_new(evj, ev[k], json_string(ev[k + 1]));
            json_object_set_new(j, "summary", json_string(summary));
            json_object_set_new(j, "evidence", evj);
            print_json(j);
        } else {
            if (i)
                putchar('\n');
            print_entry(&book.e[i]);
        }
    }
    book_free(&book);
    return 0;
}

/* ---- ack / resolve -------------------------------------------------------------------------- */

static int send_feedback(hvs_app_t *app, const char *cmd, const id_opts_t *o,
                         hvs_feedback_label_t label) {
    if (!o->by || !o->by[0]) {
        fprintf(stderr, "hvsctl alerts %s: --by WHO is required (the technician's id)\n", cmd);
        return 2;
    }
    book_t book = {0};
    if (read_book(app, o->building, o->id, &book))
        return 1;
    int rc = 1;
    const hvs_alertbook_entry_t *e = book.n == 1 ? &book.e[0] : NULL;
    if (book.n == 0) {
        fprintf(stderr, "hvsctl alerts %s: alert %s is not in the alert book%s%s%s: nothing sent\n",
                cmd, o->id, o->building ? " of building " : "", o->building ? o->building : "",
                skipped_note());
        goto out;
    }
    if (book.n > 1) {
        fprintf(stderr, "hvsctl alerts %s: alert %s is in the books of %zu buildings (", cmd, o->id,
                book.n);
        for (size_t i = 0; i < book.n; i++)
            fprintf(stderr, "%s%s", i ? ", " : "", book.e[i].building);
        fprintf(stderr, "): say which with --building B; nothing sent\n");
        goto out;
    }
    if (e->disposition != HVS_ALERTBOOK_RAISED) {
        fprintf(stderr,
                "hvsctl alerts %s: alert %s of building %s was never raised (%s%s%s): the alerter "
                "takes feedback only on raised alerts; nothing sent\n",
                cmd, e->id, e->building, hvs_alertbook_disposition_name(e->disposition),
                e->reason[0] ? ": " : "", e->reason);
        goto out;
    }
    if (label == HVS_FEEDBACK_UNSURE && (e->status == HVS_ALERT_RESOLVED_TRUE_POSITIVE ||
                                         e->status == HVS_ALERT_RESOLVED_FALSE_POSITIVE)) {
        fprintf(stderr,
                "hvsctl alerts %s: alert %s of building %s is %s: an acknowledgement does not "
                "reopen a verdict (resolve it with the other verdict to correct it); nothing "
                "sent\n",
                cmd, e->id, e->building, hvs_alert_status_name(e->status));
        goto out;
    }

    hvs_err_t err;
    hvs_serde_t *s = NULL;
    hvs_producer_t *p = NULL;
    hvs_feedback_writer_t *w = NULL;
    hvs_kafka_conf_t kc;
    hvs_app_kafka_conf(app, &kc);
    hvs_feedback_t f = {.alert_id = e->id,
                        .building_id = e->building,
                        .apartment_id = e->apartment[0] ? e->apartment : NULL,
                        .technician_id = o->by,
                        .label = label,
                        .root_cause = o->cause && o->cause[0] ? o->cause : NULL,
                        .comment = o->comment && o->comment[0] ? o->comment : NULL,
                        .labelled_at = hvs_time_now_ms()};
    const char *topic = hvs_topic_name("alerts.feedback");
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t ke = RD_KAFKA_RESP_ERR_NO_ERROR;
    if (hvs_serde_new(app->cfg.schema_registry_url, &s, &err) != 0 ||
        hvs_producer_new(&kc, &p, &err) != 0 || hvs_feedback_writer_new(s, &w, &err) != 0) {
        fprintf(stderr, "hvsctl alerts %s: alert %s: %s; nothing sent\n", cmd, e->id, err.msg);
    } else if ((ke = rd_kafka_metadata(hvs_producer_handle(p), 0, NULL, &md, 10000)) != 0) {
        /* fail fast rather than queue into the void */
        fprintf(stderr, "hvsctl alerts %s: alert %s: cannot reach Kafka at %s: %s; nothing sent\n",
                cmd, e->id, kc.brokers, rd_kafka_err2str(ke));
    } else if (hvs_feedback_send(w, p, &f, &err) != 0) {
        fprintf(stderr, "hvsctl alerts %s: alert %s: %s; nothing sent\n", cmd, e->id, err.msg);
    } else if (hvs_producer_flush(p, 15000, &err) != 0 || hvs_producer_failed(p) > 0) {
        fprintf(stderr,
                "hvsctl alerts %s: alert %s: Kafka at %s did not acknowledge the feedback on %s: "
                "%s\n",
                cmd, e->id, kc.brokers, topic,
                hvs_producer_failed(p) > 0 ? "delivery failed" : err.msg);
    } else {
        char t[32];
        printf("sent %s on %s -> %s (key %s)\n", hvs_feedback_label_name(label), e->id, topic,
               e->building);
        printf("  %-14s %s\n", "building", e->building);
        printf("  %-14s %s\n", "apartment", f.apartment_id ? f.apartment_id : "-");
        printf("  %-14s %s\n", "technician", f.technician_id);
        printf("  %-14s %s\n", "root_cause", f.root_cause ? f.root_cause : "-");
        printf("  %-14s %s\n", "comment", f.comment ? f.comment : "-");
        printf("  %-14s %s\n", "labelled_at", time_str(f.labelled_at, t));
        printf("  %-14s %s -> %s\n", "status", hvs_alert_status_name(e->status),
               label == HVS_FEEDBACK_UNSURE          ? "INVESTIGATING"
               : label == HVS_FEEDBACK_TRUE_POSITIVE ? "RESOLVED_TRUE_POSITIVE"
                                                     : "RESOLVED_FALSE_POSITIVE");
        rc = 0;
    }
    if (md)
        rd_kafka_metadata_destroy(md);
    hvs_feedback_writer_destroy(w);
    hvs_producer_destroy(p);
    hvs_serde_destroy(s);
out:
    book_free(&book);
    return rc;
}

static int cmd_ack(hvs_app_t *app, int argc, char **argv) {
    id_opts_t o = {0};
    if (parse_id_opts("ack", argc, argv, "--building --by --comment", &o))
        return 2;
    return send_feedback(app, "ack", &o, HVS_FEEDBACK_UNSURE);
}

static int cmd_resolve(hvs_app_t *app, int argc, char **argv) {
    id_opts_t o = {0};
    if (parse_id_opts("resolve", argc, argv,
                      "--building --by --comment --cause --true-positive --false-positive", &o))
        return 2;
    if (o.tp == o.fp) {
        fprintf(stderr,
                "hvsctl alerts resolve: %s: give one verdict, --true-positive or "
                "--false-positive\n",
                o.id);
        return 2;
    }
    return send_feedback(app, "resolve", &o,
                         o.tp ? HVS_FEEDBACK_TRUE_POSITIVE : HVS_FEEDBACK_FALSE_POSITIVE);
}

int hvsctl_alerts(hvs_app_t *app, int argc, char **argv) {
    if (argc < 1 || hvsctl_wants_help(argc, argv)) {
        puts(help);
        return argc < 1 ? 2 : 0;
    }
    static const struct {
        const char *name;
        int (*fn)(hvs_app_t *, int, char **);
    } subs[] = {{"list", cmd_list}, {"show", cmd_show}, {"ack", cmd_ack}, {"resolve", cmd_resolve}};
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++)
        if (strcmp(argv[0], subs[i].name) == 0)
            return subs[i].fn(app, argc - 1, argv + 1);
    fprintf(stderr, "hvsctl alerts: unknown subcommand \"%s\" (list, show, ack, resolve)\n",
            argv[0]);
    return 2;
}
