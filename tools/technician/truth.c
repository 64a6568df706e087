#include "truth.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "hvs/alert.h"

int tech_truth_open(tech_truth_t *t, const char *path, hvs_err_t *err) {
    memset(t, 0, sizeof *t);
    t->path = strdup(path ? path : "");
    if (!t->path)
        return hvs_err_set(err, HVS_ENOMEM, "oom", "labels path");
    t->file = fopen(path, "rb");
    if (!t->file)
        return hvs_err_set(err, HVS_EIO, "labels_file", "labels file %.200s: %s", path,
                           strerror(errno));
    return tech_truth_refresh(t, err);
}

void tech_truth_fini(tech_truth_t *t) {
    for (size_t i = 0; i < t->n; i++) {
        free(t->labels[i].building);
        free(t->labels[i].apartment);
        free(t->labels[i].type);
    }
    free(t->labels);
    free(t->pending);
    free(t->path);
    if (t->file)
        fclose(t->file);
    memset(t, 0, sizeof *t);
}

static int by_key(const void *pa, const void *pb) {
    const tech_label_t *a = pa, *b = pb;
    int c = strcmp(a->building, b->building);
    if (!c)
        c = strcmp(a->apartment, b->apartment);
    return c ? c : (a->seq > b->seq) - (a->seq < b->seq);
}

/* One complete line (without its newline). */
static int add_line(tech_truth_t *t, const char *line, size_t len, hvs_err_t *err) {
    t->lineno++;
    while (len && (line[len - 1] == '\r' || line[len - 1] == ' '))
        len--;
    if (!len)
        return 0;
    json_error_t je;
    json_t *j = json_loadb(line, len, 0, &je);
    const char *b = json_string_value(json_object_get(j, "building_id")),
               *a = json_string_value(json_object_get(j, "apartment_id")),
               *cat = json_string_value(json_object_get(j, "category")),
               *type = json_string_value(json_object_get(j, "type"));
    json_t *js = json_object_get(j, "start_ms"), *je_ = json_object_get(j, "end_ms");
    if (!j || !cat || !type || !json_is_integer(js) || !json_is_integer(je_)) {
        json_decref(j);
        return hvs_err_set(err, HVS_EINVAL, "bad_label_line",
                           "%.200s line %ld is not a simulator label (category, type, start_ms, "
                           "end_ms)",
                           t->path, t->lineno);
    }
    bool fault = strcmp(cat, "fault") == 0;
    if ((!fault && strcmp(cat, "benign") != 0) || !b || !a || !b[0] || !a[0]) {
        t->ignored++;
        json_decref(j);
        return 0;
    }
    if (t->n == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 256;
        tech_label_t *nl = realloc(t->labels, cap * sizeof *nl);
        if (!nl) {
            json_decref(j);
            return hvs_err_set(err, HVS_ENOMEM, "oom", "labels");
        }
        t->labels = nl, t->cap = cap;
    }
    tech_label_t *l = &t->labels[t->n];
    *l = (tech_label_t){strdup(b),
                        strdup(a),
                        strdup(type),
                        fault,
                        json_integer_value(js),
                        json_integer_value(je_),
                        (size_t)t->lineno};
    json_decref(j);
    if (!l->building || !l->apartment || !l->type) {
        free(l->building), free(l->apartment), free(l->type);
        return hvs_err_set(err, HVS_ENOMEM, "oom", "label");
    }
    t->n++;
    return 0;
}

int tech_truth_refresh(tech_truth_t *t, hvs_err_t *err) {
    char buf[65536];
    size_t got, before = t->n;
    int rc = 0;
    clearerr(t->file); /* EOF last time: the file may have grown since */
    while (rc == 0 && (got = fread(buf, 1, sizeof buf, t->file)) > 0) {
        size_t from = 0;
        for (size_t i = 0; rc == 0 && i < got; i++) {
            if (buf[i] != '\n')
                continue;
            if (t->npending) { /* the line began in an earlier read */
                char *nl = realloc(t->pending, t->npending + (i - from) + 1);
                if (!nl)
                    return hvs_err_set(err, HVS_ENOMEM, "oom", "labels line");
                memcpy(nl + t->npending, buf + from, i - from);
                t->pending = nl;
                rc = add_line(t, nl, t->npending + (i - from), err);
                t->npending = 0;
            } else {
                rc = add_line(t, buf + from, i - from, err);
            }
            from = i + 1;
        }
        if (rc == 0 && from < got) { /* keep the incomplete tail */
            char *nl = realloc(t->pending, t->npending + (got - from) + 1);
            if (!nl)
                return hvs_err_set(err, HVS_ENOMEM, "oom", "labels line");
            memcpy(nl + t->npending, buf + from, got - from);
            t->pending = nl;
            t->npending += got - from;
        }
    }
    if (rc == 0 && ferror(t->file))
        rc = hvs_err_set(err, HVS_EIO, "labels_file", "reading %.200s: %s", t->path,
                         strerror(errno));
    if (t->n != before)
        qsort(t->labels, t->n, sizeof *t->labels, by_key);
    return rc;
}

const char *tech_benign_cause(const char *type) {
    return strcmp(type, "guests") == 0 ? "guest_stay" : type;
}

hvs_feedback_label_t tech_truth_judge(const tech_truth_t *t, const char *building,
                                      const char *apartment, hvs_ms_t lo, hvs_ms_t hi,
                                      const char **cause) {
    /* the first label of (building, apartment) */
    size_t a = 0, b = t->n;
    while (a < b) {
        size_t m = a + (b - a) / 2;
        int c = strcmp(t->labels[m].building, building);
        if (!c)
            c = strcmp(t->labels[m].apartment, apartment);
        if (c < 0)
            a = m + 1;
        else
            b = m;
    }
    const tech_label_t *best[2] = {NULL, NULL}; /* [0] benign, [1] fault */
    hvs_ms_t most[2] = {0, 0};
    for (size_t i = a; i < t->n && !strcmp(t->labels[i].building, building) &&
                       !strcmp(t->labels[i].apartment, apartment);
         i++) {
        const tech_label_t *l = &t->labels[i];
        if (l->start > hi || l->end <= lo)
            continue; /* [start, end) misses [lo, hi] */
        hvs_ms_t from = l->start > lo ? l->start : lo, to = l->end < hi ? l->end : hi;
        hvs_ms_t over = to - from;
        const tech_label_t *cur = best[l->fault];
        if (!cur || over > most[l->fault] ||
            (over == most[l->fault] && l->start < cur->start)) /* labels are in file order */
            best[l->fault] = l, most[l->fault] = over;
    }
    if (best[1]) {
        *cause = best[1]->type;
        return HVS_FEEDBACK_TRUE_POSITIVE;
    }
    *cause = best[0] ? tech_benign_cause(best[0]->type) : "no_fault_found";
    return HVS_FEEDBACK_FALSE_POSITIVE;
}

static uint64_t mix(uint64_t x) { /* splitmix64's finaliser */
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

double tech_draw(uint64_t seed, const char *id, uint64_t salt) {
    uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a over the id */
    for (const unsigned char *p = (const unsigned char *)id; *p; p++)
        h = (h ^ *p) * 0x100000001b3ULL;
    h = mix(h ^ mix(seed + 0x9e3779b97f4a7c15ULL * (salt + 1)));
    return (double)(h >> 11) * (1.0 / 9007199254740992.0);
}

/* The fault a technician fooled by a false alarm would name: what the alert's type suggests. */
static const char *suggested_fault(int type) {
    switch (type) {
    case HVS_ALERT_RULE_STUCK_VALVE: return "stuck_valve";
    case HVS_ALERT_RULE_NO_RESPONSE: return "no_heat_response";
    case HVS_ALERT_RULE_SENSOR_MISMATCH: return "sensor_fault";
    default: return "unknown";
    }
}

void tech_answer(const tech_truth_t *t, const tech_conf_t *c, const char *id, const char *building,
                 const char *apartment, int type, hvs_ms_t first_seen, hvs_ms_t updated_at,
                 tech_answer_t *out) {
    memset(out, 0, sizeof *out);
    if (tech_draw(c->seed, id, 1) < c->unanswered)
        return;
    out->answered = true;
    out->truth = tech_truth_judge(t, building, apartment, first_seen - c->margin_ms,
                                  updated_at + c->margin_ms, &out->truth_cause);
    out->label = out->truth, out->cause = out->truth_cause;
    out->mistaken = tech_draw(c->seed, id, 2) < c->error_rate;
    if (out->mistaken) {
        out->label = out->truth == HVS_FEEDBACK_TRUE_POSITIVE ? HVS_FEEDBACK_FALSE_POSITIVE
                                                              : HVS_FEEDBACK_TRUE_POSITIVE;
        out->cause = out->label == HVS_FEEDBACK_FALSE_POSITIVE ? "no_fault_found"
                                                               : suggested_fault(type);
    }
    out->labelled_at = updated_at + c->delay_ms;
}
