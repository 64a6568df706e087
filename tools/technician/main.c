/*
 * hvs-technician - a model of the maintenance team for simulations: consumes `alerts` in its own
 * consumer group and answers apartments' alerts on `alerts.feedback` with the verdict the
 * simulator's ground truth gives (truth.h), the way technicians would after a visit.
 *
 * Answered: an alert with status UNSEEN, an apartment, and a type other than DATA_QUALITY and
 * MODEL_DRIFT, once per alert id (ids answered or passed over are remembered in memory; a
 * re-published alert is not answered again). A deterministic draw from (HVS_TECH_SEED, alert id)
 * leaves HVS_TECH_UNANSWERED of them unanswered and flips HVS_TECH_ERROR_RATE of the verdicts
 * (a technician's mistake: a missed fault is "no_fault_found", a false alarm taken for a fault
 * gets the fault the alert's type suggests). labelled_at = updated_at + HVS_TECH_DELAY (event
 * time), technician_id "tech-<team>" ("tech-default" without a team). The decision is
 * truth.h's tech_answer, which in-process simulations (test_al_flywheel) share.
 *
 * The loop: poll a batch of alerts -> answer -> flush the producer -> commit. At least once: a
 * crash between a flush and its commit answers that batch's alerts again after the restart (the
 * same verdicts, the latest of which wins downstream). Memory of answered ids is not kept across
 * restarts; committed offsets are.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hvs/alert.h"
#include "hvs/app.h"
#include "hvs/feedback.h"
#include "hvs/log.h"
#include "hvs/serde.h"
#include "hvs/topics.h"
#include "truth.h"

#define BATCH 256

typedef struct settings {
    char *labels;
    int64_t margin_ms, delay_ms, seed;
    double error_rate, unanswered;
} settings_t;

#define S(f) offsetof(settings_t, f)
static const hvs_cfg_entry_t tech_entries[] = {
    {"HVS_TECH_LABELS", HVS_CFG_STRING, NULL, 0, 0, S(labels), HVS_CFG_REQUIRED,
     "the simulator's ground-truth labels file (hvs-simulator --labels-out FILE); re-read as it "
     "grows"},
    {"HVS_TECH_MARGIN", HVS_CFG_DURATION, "24h", 0, 365 * 86400000.0, S(margin_ms), 0,
     "a label counts when it overlaps [first_seen - margin, updated_at + margin]"},
    {"HVS_TECH_DELAY", HVS_CFG_DURATION, "4h", 0, 365 * 86400000.0, S(delay_ms), 0,
     "labelled_at = the alert's updated_at + delay (event time)"},
    {"HVS_TECH_ERROR_RATE", HVS_CFG_DOUBLE, "0.05", 0, 1, S(error_rate), 0,
     "share of verdicts flipped (a technician's mistake)"},
    {"HVS_TECH_UNANSWERED", HVS_CFG_DOUBLE, "0.2", 0, 1, S(unanswered), 0,
     "share of alerts never answered"},
    {"HVS_TECH_SEED", HVS_CFG_INT, "1", 0, 9.0e15, S(seed), 0,
     "seed of the draws (unanswered, mistakes): same seed, same answers"},
};
#undef S

static settings_t g_set;
static const hvs_cfg_section_t tech_section = {
    "technician", tech_entries, sizeof tech_entries / sizeof tech_entries[0], &g_set};

/* Skip reasons, the label of hvs_technician_skipped_total. */
enum { SK_UNDECODABLE, SK_NOT_UNSEEN, SK_BUILDING, SK_SYSTEM, SK_REPEAT, SK_UNANSWERED, SK_N };
static const char *const skip_names[SK_N] = {"undecodable",  "not_unseen", "building_level",
                                             "system_alert", "repeat",     "unanswered"};

typedef struct tech {
    tech_truth_t truth;
    hvs_serde_t *serde;
    hvs_decoder_t *dec;
    hvs_feedback_writer_t *fw;
    hvs_producer_t *prod;
    hvs_consumer_t *cons;
    /* alert ids decided (answered or passed over): open addressing, strdup'd */
    char **seen;
    size_t nseen, capseen;
    uint64_t answered[3], skipped[SK_N];
    hvs_metric_t *m_answered[3], *m_skipped[SK_N];
} tech_t;

static tech_t g_tech;

static uint64_t hash_str(const char *s) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
    return h;
}

/* 1 when id was there already, 0 when added, HVS_ENOMEM. */
static int seen_add(tech_t *t, const char *id) {
    if (2 * (t->nseen + 1) > t->capseen) {
        size_t cap = t->capseen ? 2 * t->capseen : 1024;
        char **n = calloc(cap, sizeof *n);
        if (!n)
            return HVS_ENOMEM;
        for (size_t i = 0; i < t->capseen; i++)
            if (t->seen[i]) {
                size_t j = hash_str(t->seen[i]) & (cap - 1);
                while (n[j])
                    j = (j + 1) & (cap - 1);
                n[j] = t->seen[i];
            }
        free(t->seen);
        t->seen = n, t->capseen = cap;
    }
    size_t j = hash_str(id) & (t->capseen - 1);
    for (; t->seen[j]; j = (j + 1) & (t->capseen - 1))
        if (strcmp(t->seen[j], id) == 0)
            return 1;
    if (!(t->seen[j] = strdup(id)))
        return HVS_ENOMEM;
    t->nseen++;
    return 0;
}

static void skip(tech_t *t, int why) {
    t->skipped[why]++;
    hvs_metric_inc(t->m_skipped[why]);
}

static int enum_field(avro_value_t *v, const char *name) {
    avro_value_t f;
    int x = -1;
    if (avro_value_get_by_name(v, name, &f, NULL) != 0 || avro_value_get_enum(&f, &x) != 0)
        return -1;
    return x;
}

/* One alert: answer it or say why not. Only infrastructure failures return non-zero. */
static int handle(tech_t *t, const rd_kafka_message_t *m, hvs_err_t *err) {
    avro_value_t *v;
    hvs_err_t why = {0};
    if (!m->payload || hvs_decoder_decode(t->dec, m->payload, m->len, &v, &why) != 0) {
        hvs_log_debug("technician", "undecodable alert at %s[%d]@%lld: %s",
                      rd_kafka_topic_name(m->rkt), (int)m->partition, (long long)m->offset,
                      m->payload ? why.reason : "empty_value");
        skip(t, SK_UNDECODABLE);
        return 0;
    }
    const char *id = hvs_serde_field_str(v, "alert_id"), *b = hvs_serde_field_str(v, "building_id"),
               *apt = hvs_serde_field_str(v, "apartment_id"),
               *team = hvs_serde_field_str(v, "team");
    int type = enum_field(v, "type"), status = enum_field(v, "status");
    if (!id || !id[0] || !b || !b[0]) {
        skip(t, SK_UNDECODABLE);
        return 0;
    }
    if (status != 0 /* UNSEEN */) {
        skip(t, SK_NOT_UNSEEN);
        return 0;
    }
    if (!apt || !apt[0]) {
        skip(t, SK_BUILDING);
        return 0;
    }
    if (type == HVS_ALERT_DATA_QUALITY || type == HVS_ALERT_MODEL_DRIFT) {
        skip(t, SK_SYSTEM);
        return 0;
    }
    int rc = seen_add(t, id);
    if (rc < 0)
        return hvs_err_set(err, HVS_ENOMEM, "oom", "answered alert ids");
    if (rc == 1) {
        skip(t, SK_REPEAT);
        return 0;
    }
    if ((rc = tech_truth_refresh(&t->truth, err)))
        return rc;
    tech_conf_t tc = {g_set.margin_ms, g_set.delay_ms, (uint64_t)g_set.seed, g_set.error_rate,
                      g_set.unanswered};
    tech_answer_t ans;
    tech_answer(&t->truth, &tc, id, b, apt, type, hvs_serde_field_long(v, "first_seen"),
                hvs_serde_field_long(v, "updated_at"), &ans);
    if (!ans.answered) {
        hvs_log_debug("technician", "alert %s left unanswered", id);
        skip(t, SK_UNANSWERED);
        return 0;
    }
    hvs_feedback_label_t label = ans.label;
    const char *cause = ans.cause;
    bool mistake = ans.mistaken;
    char tech_id[300];
    snprintf(tech_id, sizeof tech_id, "tech-%.280s", team && team[0] ? team : "default");
    hvs_feedback_t fb = {.alert_id = id,
                         .building_id = b,
                         .apartment_id = apt,
                         .technician_id = tech_id,
                         .label = label,
                         .root_cause = cause,
                         .labelled_at = ans.labelled_at};
    if ((rc = hvs_feedback_send(t->fw, t->prod, &fb, err)))
        return rc;
    t->answered[label]++;
    hvs_metric_inc(t->m_answered[label]);
    hvs_log_debug("technician", "alert %s: %s (%s)%s at %lld", id, hvs_feedback_label_name(label),
                  cause, mistake ? ", mistaken" : "", (long long)fb.labelled_at);
    return 0;
}

static void log_totals(const tech_t *t, const char *when) {
    hvs_log_info(
        "technician",
        "%s: answered %llu true positive, %llu false positive; skipped %llu not unseen, "
        "%llu building-level, %llu data-quality/drift, %llu repeats, %llu left "
        "unanswered, %llu undecodable; %zu labels known",
        when, (unsigned long long)t->answered[0], (unsigned long long)t->answered[1],
        (unsigned long long)t->skipped[SK_NOT_UNSEEN], (unsigned long long)t->skipped[SK_BUILDING],
        (unsigned long long)t->skipped[SK_SYSTEM], (unsigned long long)t->skipped[SK_REPEAT],
        (unsigned long long)t->skipped[SK_UNANSWERED],
        (unsigned long long)t->skipped[SK_UNDECODABLE], t->truth.n);
}

static int ready(void *opaque, char *why, size_t whylen) {
    tech_t *t = opaque;
    if (t->cons && hvs_consumer_assignment_size(t->cons) > 0)
        return 1;
    snprintf(why, whylen, "no partition of alerts assigned yet");
    return 0;
}

static int64_t wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int run(hvs_app_t *app, void *state, hvs_err_t *err) {
    tech_t *t = state;
    int rc = tech_truth_open(&t->truth, g_set.labels, err);
    if (rc)
        return rc;
    hvs_metrics_t *ms = app->metrics;
    for (int i = 0; i < 2; i++) {
        char lbl[64];
        snprintf(lbl, sizeof lbl, "label=\"%s\"", hvs_feedback_label_name((hvs_feedback_label_t)i));
        t->m_answered[i] = hvs_metrics_counter(ms, "hvs_technician_answered_total",
                                               "alerts answered on alerts.feedback", lbl);
    }
    for (int i = 0; i < SK_N; i++) {
        char lbl[64];
        snprintf(lbl, sizeof lbl, "reason=\"%s\"", skip_names[i]);
        t->m_skipped[i] = hvs_metrics_counter(ms, "hvs_technician_skipped_total",
                                              "alerts not answered, by reason", lbl);
    }
    hvs_kafka_conf_t kc;
    hvs_app_kafka_conf(app, &kc);
    const char *topic = hvs_topic_name("alerts");
    if ((rc = hvs_serde_new(app->cfg.schema_registry_url, &t->serde, err)) ||
        (rc = hvs_decoder_new(t->serde, HVS_SCHEMA_ALERT, &t->dec, err)) ||
        (rc = hvs_feedback_writer_new(t->serde, &t->fw, err)) ||
        (rc = hvs_producer_new(&kc, &t->prod, err)) ||
        (rc = hvs_consumer_new(&kc, &topic, 1, NULL, &t->cons, err)))
        return rc;
    hvs_app_set_ready(app, ready, t);
    hvs_log_info("technician",
                 "answering %s -> %s from %zu labels of %s (margin %lld ms, delay %lld ms, error "
                 "rate %g, unanswered %g, seed %lld)",
                 topic, hvs_topic_name("alerts.feedback"), t->truth.n, g_set.labels,
                 (long long)g_set.margin_ms, (long long)g_set.delay_ms, g_set.error_rate,
                 g_set.unanswered, (long long)g_set.seed);
    rd_kafka_message_t *msgs[BATCH];
    int64_t last_log = wall_ms();
    uint64_t logged = 0;
    while (rc == 0 && hvs_app_running()) {
        size_t n = 0;
        hvs_err_t perr = {0};
        int prc = hvs_consumer_poll_batch(t->cons, msgs, BATCH, 200, &n, &perr);
        if (prc && hvs_err_is_fatal(&perr)) {
            hvs_consumer_release(msgs, n);
            *err = perr;
            rc = prc;
            break;
        }
        if (prc)
            hvs_log_warn("technician", "polling alerts: %s", perr.msg);
        for (size_t i = 0; rc == 0 && i < n; i++)
            rc = handle(t, msgs[i], err);
        if (rc == 0 && n)
            rc = hvs_producer_flush(t->prod, 30000, err);
        if (rc == 0 && n) {
            hvs_err_t cerr = {0};
            if (hvs_consumer_commit_batch(t->cons, msgs, n, &cerr))
                hvs_log_warn("technician", "commit: %s", cerr.msg); /* replayed: not answered
                                                                        twice in this process */
        }
        hvs_consumer_release(msgs, n);
        hvs_producer_poll(t->prod);
        uint64_t total = t->answered[0] + t->answered[1];
        for (int i = 0; i < SK_N; i++)
            total += t->skipped[i];
        if (total != logged && wall_ms() - last_log >= 60000) {
            log_totals(t, "so far");
            logged = total, last_log = wall_ms();
        }
    }
    hvs_err_t cerr = {0};
    hvs_consumer_close(t->cons, &cerr);
    int frc = hvs_producer_flush(t->prod, 30000, &cerr);
    if (rc == 0 && frc)
        rc = frc, *err = cerr;
    log_totals(t, "stopped");
    return rc;
}

static void cleanup(void *state) {
    tech_t *t = state;
    hvs_consumer_destroy(t->cons);
    hvs_producer_destroy(t->prod);
    hvs_feedback_writer_destroy(t->fw);
    hvs_decoder_destroy(t->dec);
    hvs_serde_destroy(t->serde);
    tech_truth_fini(&t->truth);
    for (size_t i = 0; i < t->capseen; i++)
        free(t->seen[i]);
    free(t->seen);
}

int main(int argc, char **argv) {
    hvs_app_spec_t spec = {
        .worker = "technician",
        .summary = "a maintenance team for simulations: answers alerts on alerts.feedback with "
                   "the simulator's ground truth",
        .usage = "Usage: hvs-technician --labels FILE [--margin 24h] [--delay 4h] "
                 "[--error-rate 0.05] [--unanswered 0.2] [--seed N]\n"
                 "Example: hvs-simulator --labels-out labels.jsonl ... & "
                 "hvs-technician --labels labels.jsonl",
        .extra = &tech_section,
        .nextra = 1,
        .flag_prefix = "HVS_TECH_",
        .state = &g_tech,
        .cleanup = cleanup,
    };
    return hvs_app_main(&spec, argc, argv, run);
}
