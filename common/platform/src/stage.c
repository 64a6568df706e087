/*
 * stage.c - the consume loop of every stream stage (stage.h): poll, handle, publish, wait for
 * the acknowledgements, write the state, commit; rebalances, dead letters, phase metrics, stall
 * detection and the SIGTERM drain in one place.
 */
#include "hvs/stage.h"
#include "stage_internal.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hvs/dlq.h"
#include "hvs/log.h"
#include "hvs/metrics.h"

static const char *const phase_names[PHASES] = {"poll",        "process", "publish_wait",
                                                "state_write", "commit",  "between_batches"};


static double mono_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- partitions come and go ---------------------------------------------------------------- */

static void on_assigning(void *opaque, rd_kafka_topic_partition_list_t *added) {
    hvs_stage_t *st = opaque;
    if (!st->fatal && hvs_stage_state_assigning(st, added, &st->fatal_err))
        st->fatal = 1; /* the state cannot be read: stop rather than guess where to start */
    if (st->def->assigning && !st->fatal)
        st->def->assigning(st->opaque, added);
}

/* Partition P of every input must be with the member that holds P's state (hvs_stage_run picks
 * an assignor that keeps them together; an operator's HVS_KAFKA_PARTITION_ASSIGNMENT_STRATEGY
 * could split them): say so loudly rather than join half the inputs. */
static void check_copartitioned(hvs_stage_t *st) {
    if (st->conf.ninputs < 2 || !st->cons)
        return;
    rd_kafka_topic_partition_list_t *a = NULL;
    if (rd_kafka_assignment(hvs_consumer_handle(st->cons), &a) || !a)
        return;
    for (int i = 0; i < a->cnt; i++)
        for (size_t t = 0; t < st->conf.ninputs; t++)
            if (!rd_kafka_topic_partition_list_find(a, st->conf.inputs[t], a->elems[i].partition)) {
                hvs_log_error(st->def->name,
                              "%s [%d] is assigned here without %s [%d]: the inputs are not "
                              "co-partitioned (the assignment strategy must keep partition P of "
                              "every input on one member, e.g. range)",
                              a->elems[i].topic, (int)a->elems[i].partition, st->conf.inputs[t],
                              (int)a->elems[i].partition);
                t = st->conf.ninputs;
            }
    rd_kafka_topic_partition_list_destroy(a);
}

static int input_index(const hvs_stage_t *st, const char *topic);
static void held_drop(hvs_stage_t *st, int32_t p);

static void on_assigned(void *opaque, const rd_kafka_topic_partition_list_t *added) {
    hvs_stage_t *st = opaque;
    for (int i = 0; i < added->cnt && !st->fatal; i++) {
        int32_t p = added->elems[i].partition;
        if (p < 0 || p >= HVS_MAX_PARTITIONS) {
            st->fatal = 1;
            hvs_err_set(&st->fatal_err, HVS_ECONFIG, "too_many_partitions",
                        "%s partition %d: at most %d partitions are supported",
                        added->elems[i].topic, (int)p, HVS_MAX_PARTITIONS);
            return;
        }
        int t = input_index(st, added->elems[i].topic);
        if (t >= 0)
            st->held[t][p].taken = -1; /* where it starts is the assignment's to say */
        if (st->assigned[p])
            continue; /* another input topic's partition of the same number */
        if (st->def->assigned && st->def->assigned(st->opaque, p, &st->fatal_err)) {
            st->fatal = 1; /* cannot run without its state: exit, restart, retry */
            return;
        }
        st->assigned[p] = true;
        st->parts[st->nparts++] = p;
    }
    check_copartitioned(st);
}

static void on_revoked(void *opaque, const rd_kafka_topic_partition_list_t *removed) {
    hvs_stage_t *st = opaque;
    for (int i = 0; i < removed->cnt; i++) {
        int32_t p = removed->elems[i].partition;
        if (p < 0 || p >= HVS_MAX_PARTITIONS || !st->assigned[p])
            continue;
        st->assigned[p] = false;
        for (size_t k = 0; k < st->nparts; k++)
            if (st->parts[k] == p) {
                st->parts[k] = st->parts[--st->nparts];
                break;
            }
        hvs_stage_state_revoked(st, p);
        held_drop(st, p);
        if (st->def->revoked)
            st->def->revoked(st->opaque, p);
    }
}

static int ready(void *opaque, char *why, size_t whylen) {
    hvs_stage_t *st = opaque;
    if (!st) { /* the loop has ended */
        snprintf(why, whylen, "stopping");
        return 0;
    }
    if (!st->cons || hvs_consumer_assignment_size(st->cons) <= 0) {
        snprintf(why, whylen, "no partitions assigned yet");
        return 0;
    }
    return st->def->ready ? st->def->ready(st->opaque, why, whylen) : 1;
}

/* ---- settings ------------------------------------------------------------------------------ */

const hvs_cfg_section_t *hvs_stage_settings_section(hvs_stage_settings_t *s, const char *prefix) {
    static const struct {
        const char *suffix, *def;
        hvs_cfg_type_t type;
        double min, max;
        size_t offset;
        const char *help;
    } rows[3] = {
        {"BATCH", "5000", HVS_CFG_INT, 1, 1000000, offsetof(hvs_stage_settings_t, batch),
         "messages per batch (one flush, one state write, one commit each)"},
        {"FLUSH_TIMEOUT", "30s", HVS_CFG_DURATION, 1000, 600000,
         offsetof(hvs_stage_settings_t, flush_timeout_ms),
         "longest wait for the broker to acknowledge a batch's outputs and dead letters"},
        {"STALL_TIMEOUT", "60s", HVS_CFG_DURATION, 1000, 86400000,
         offsetof(hvs_stage_settings_t, stall_ms),
         "exit (to be restarted) when messages wait in the assigned partitions but no poll "
         "returns any for this long: a consumer that stopped fetching must not look alive (the "
         "stage's own work between batches does not count)"},
    };
    for (int i = 0; i < 3; i++) {
        snprintf(s->names[i], sizeof s->names[i], "%s%s", prefix, rows[i].suffix);
        s->entries[i] = (hvs_cfg_entry_t){s->names[i], rows[i].type,   rows[i].def, rows[i].min,
                                          rows[i].max, rows[i].offset, 0,           rows[i].help};
    }
    s->section = (hvs_cfg_section_t){"stage", s->entries, 3, s};
    return &s->section;
}

/* ---- life cycle ----------------------------------------------------------------------------- */

/* The outputs' and the inputs' dead-letter topics looked up now, while the group joins, not at
 * the first flush. */
static int prepare_outputs(hvs_stage_t *st, hvs_err_t *err) {
    int rc = hvs_producer_prepare_topics(st->prod, st->conf.outputs, err);
    for (size_t t = 0; rc == 0 && t < st->conf.ninputs; t++) {
        char dlq[HVS_TOPIC_NAME_MAX];
        const char *names[] = {hvs_topic_dlq_name(st->conf.inputs[t], dlq, sizeof dlq), NULL};
        rc = hvs_producer_prepare_topics(st->prod, names, err);
    }
    return rc;
}

int hvs_stage_new(hvs_app_t *app, const hvs_stage_def_t *def, const hvs_stage_conf_t *conf,
                  hvs_serde_t *serde, void *opaque, hvs_stage_t **out, hvs_err_t *err) {
    *out = NULL;
    if (!def->name || !def->handle || !conf->ninputs || !conf->settings ||
        conf->settings->batch < 1)
        return hvs_err_set(err, HVS_EINVAL, "bad_stage",
                           "a stage needs a name, handle, inputs "
                           "and a batch size");
    hvs_stage_t *st = calloc(1, sizeof *st);
    if (!st)
        return hvs_err_set(err, HVS_ENOMEM, "oom", "stage %s", def->name);
    st->app = app;
    st->def = def;
    st->conf = *conf;
    st->batch = (size_t)conf->settings->batch;
    st->flush_timeout_ms = conf->settings->flush_timeout_ms;
    st->stall_ms = conf->settings->stall_ms;
    if (!st->conf.poll_timeout_ms)
        st->conf.poll_timeout_ms = 200;
    st->opaque = opaque;
    st->serde = serde;
    snprintf(st->metric_prefix, sizeof st->metric_prefix, "hvs_%s", def->name);
    hvs_kafka_conf_t kc;
    hvs_app_kafka_conf(app, &kc);
    kc.worker_props = conf->producer_props;
    int rc = hvs_stage_state_init(st, err);
    if (rc == 0)
        rc = hvs_producer_new(&kc, &st->prod, err);
    if (rc == 0)
        rc = hvs_dlq_new(st->prod, serde, def->name, &st->dlq, err);
    if (rc == 0)
        rc = prepare_outputs(st, err);
    if (rc) {
        hvs_stage_destroy(st);
        return rc;
    }
    hvs_metrics_t *ms = app->metrics;
    char name[128];
    for (int i = 0; i < PHASES; i++) {
        if (i == PH_BETWEEN && !def->after_batch)
            continue;
        char lbl[48];
        snprintf(lbl, sizeof lbl, "phase=\"%s\"", phase_names[i]);
        snprintf(name, sizeof name, "%s_phase_seconds_total", st->metric_prefix);
        st->m_phase[i] = hvs_metrics_counter(ms, name, "time of the consume loop by phase", lbl);
    }
    snprintf(name, sizeof name, "%s_batch_seconds", st->metric_prefix);
    st->m_batch = hvs_metrics_histogram(ms, name, "poll to commit of one batch", NULL,
                                        hvs_metrics_latency_buckets, hvs_metrics_latency_nbuckets);
    snprintf(name, sizeof name, "%s_consumer_lag_messages", st->metric_prefix);
    st->m_lag = hvs_metrics_gauge(
        ms, name, "messages of the assigned partitions not yet consumed (-1: unknown)", NULL);
    hvs_metric_set(st->m_lag, -1);
    snprintf(name, sizeof name, "%s_state_losses_total", st->metric_prefix);
    st->m_losses = hvs_metrics_counter(
        ms, name, "partitions found without their state in Redis (then rebuilt)", NULL);
    st->dl_log.per_minute = HVS_STAGE_DEAD_LETTER_LOGS;
    *out = st;
    return 0;
}

void hvs_stage_destroy(hvs_stage_t *st) {
    if (!st)
        return;
    hvs_app_set_unacknowledged(NULL, NULL);
    hvs_consumer_destroy(st->cons);
    hvs_dlq_destroy(st->dlq);
    /* within what is left of the shutdown bound (all of it when no shutdown has begun) */
    if (hvs_producer_destroy_within(st->prod, hvs_app_shutdown_left_ms()) > 0)
        hvs_app_shutdown_incomplete();
    hvs_stage_state_fini(st);
    for (size_t t = 0; t < HVS_STAGE_MAX_INPUTS; t++)
        for (int p = 0; p < HVS_MAX_PARTITIONS; p++) {
            hvs_consumer_release(st->held[t][p].m, st->held[t][p].n);
            free(st->held[t][p].m);
        }
    free(st);
}

hvs_producer_t *hvs_stage_producer(hvs_stage_t *st) { return st->prod; }
hvs_consumer_t *hvs_stage_consumer(hvs_stage_t *st) { return st->cons; }
hvs_ms_t hvs_stage_now(const hvs_stage_t *st) { return st->now; }
hvs_redis_batch_t *hvs_stage_state_batch(hvs_stage_t *st) { return st->rb; }
bool hvs_stage_replaying(const hvs_stage_t *st) { return st->replaying; }


size_t hvs_stage_unhandled(const hvs_stage_t *st, const char *topic, int32_t partition) {
    int t = input_index(st, topic);
    if (!st->handling || t < 0 || partition < 0 || partition >= HVS_MAX_PARTITIONS)
        return 0;
    return st->unhandled[t][partition];
}

/* Count message m in (+1) or out (-1) of the batch's unhandled messages. */
static void unhandled_add(hvs_stage_t *st, const rd_kafka_message_t *m, int d) {
    int t = input_index(st, rd_kafka_topic_name(m->rkt));
    if (t >= 0 && m->partition >= 0 && m->partition < HVS_MAX_PARTITIONS)
        st->unhandled[t][m->partition] += (uint32_t)d;
}
bool hvs_stage_rebuilding(const hvs_stage_t *st, int32_t p) {
    return st->conf.redis && p >= 0 && p < HVS_MAX_PARTITIONS && st->pstate[p].replay;
}

const int32_t *hvs_stage_partitions(const hvs_stage_t *st, size_t *n) {
    *n = st->nparts;
    return st->parts;
}

/* Count and log (rate-limited) a dead letter. */
static void note_dead_letter(hvs_stage_t *st, const char *topic, int32_t partition, int64_t offset,
                             const hvs_err_t *why) {
    char lbl[96], name[128];
    snprintf(lbl, sizeof lbl, "reason=\"%s\"", why->reason);
    snprintf(name, sizeof name, "%s_dead_letters_total", st->metric_prefix);
    hvs_metric_inc(hvs_metrics_counter(st->app->metrics, name,
                                       "inputs sent to a dead-letter topic, by reason", lbl));
    if (hvs_log_limit_take(&st->dl_log, why->reason, hvs_time_mono_ms(), st->def->name,
                           "dead letters"))
        hvs_log_warn(st->def->name, "%s [%d] offset %lld -> dead letter (%s): %s", topic,
                     (int)partition, (long long)offset, why->reason, why->msg);
}

int hvs_stage_dead_letter(hvs_stage_t *st, const rd_kafka_message_t *m, const hvs_err_t *why,
                          hvs_err_t *err) {
    note_dead_letter(st, rd_kafka_topic_name(m->rkt), m->partition, m->offset, why);
    return hvs_dlq_send_message(st->dlq, m, why, err);
}

int hvs_stage_dead_letter_bytes(hvs_stage_t *st, const char *topic, int32_t partition,
                                int64_t offset, const void *key, size_t keylen, const void *value,
                                size_t len, const hvs_err_t *why, hvs_err_t *err) {
    note_dead_letter(st, topic, partition, offset, why);
    return hvs_dlq_send(st->dlq, topic, partition, offset, key, keylen, value, len, NULL, why, err);
}

/* ---- input alignment (HVS_STAGE_HOLD) ------------------------------------------------------ */

static int input_index(const hvs_stage_t *st, const char *topic) {
    for (size_t t = 0; t < st->conf.ninputs; t++)
        if (strcmp(st->conf.inputs[t], topic) == 0)
            return (int)t;
    return -1;
}

static stage_held_t *held_of(hvs_stage_t *st, const rd_kafka_message_t *m) {
    int t = input_index(st, rd_kafka_topic_name(m->rkt));
    if (t < 0 || m->partition < 0 || m->partition >= HVS_MAX_PARTITIONS)
        return NULL;
    return &st->held[t][m->partition];
}

static int held_push(stage_held_t *h, rd_kafka_message_t *m) {
    if (h->n == h->cap) {
        size_t cap = h->cap ? 2 * h->cap : 64;
        rd_kafka_message_t **nm = realloc(h->m, cap * sizeof *nm);
        if (!nm)
            return -1;
        h->m = nm, h->cap = cap;
    }
    h->m[h->n++] = m;
    return 0;
}

/* Pause or resume one input partition; a resumed one continues right after the last message
 * taken (the messages fetched past the hand-back were dropped with it). */
static void held_switch(hvs_stage_t *st, int t, int32_t p, bool pause) {
    stage_held_t *h = &st->held[t][p];
    rd_kafka_t *rk = hvs_consumer_handle(st->cons);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_t *tp = rd_kafka_topic_partition_list_add(l, st->conf.inputs[t], p);
    rd_kafka_resp_err_t e = pause ? rd_kafka_pause_partitions(rk, l)
                                  : rd_kafka_resume_partitions(rk, l);
    if (!e && !pause && h->taken >= 0) {
        tp->offset = h->taken;
        rd_kafka_error_t *se = rd_kafka_seek_partitions(rk, l, 5000);
        if (se) {
            hvs_log_warn(st->def->name, "%s [%d]: seek to %lld after a hold: %s",
                         st->conf.inputs[t], (int)p, (long long)h->taken,
                         rd_kafka_error_string(se));
            rd_kafka_error_destroy(se);
        } else if (tp->err) {
            hvs_log_warn(st->def->name, "%s [%d]: seek to %lld after a hold: %s",
                         st->conf.inputs[t], (int)p, (long long)h->taken,
                         rd_kafka_err2str(tp->err));
        }
    }
    if (e)
        hvs_log_warn(st->def->name, "%s [%d]: %s: %s", st->conf.inputs[t], (int)p,
                     pause ? "pause" : "resume", rd_kafka_err2str(e));
    h->paused = pause && !e;
    rd_kafka_topic_partition_list_destroy(l);
}

/* Partition number p left (or came back): its held messages are dropped (uncommitted, its next
 * owner reads them again) and its inputs are no longer paused. */
static void held_drop(hvs_stage_t *st, int32_t p) {
    for (size_t t = 0; t < st->conf.ninputs; t++) {
        stage_held_t *h = &st->held[t][p];
        hvs_consumer_release(h->m, h->n);
        st->nheld -= h->n;
        h->n = 0;
        h->hold_now = false;
        h->taken = -1;
        if (h->paused && st->cons) {
            h->taken = -1; /* no seek: the assignment decides where it starts */
            held_switch(st, (int)t, p, false);
        }
    }
}

int64_t hvs_stage_input_lag(const hvs_stage_t *st, const char *topic, int32_t partition) {
    int t = input_index(st, topic);
    if (t < 0 || partition < 0 || partition >= HVS_MAX_PARTITIONS || !st->cons)
        return -1;
    int64_t lag = hvs_consumer_partition_lag(st->cons, topic, partition);
    if (lag < 0)
        return -1;
    const stage_held_t *h = &st->held[t][partition];
    return lag + (int64_t)h->n + (int64_t)hvs_stage_unhandled(st, topic, partition);
}

/* ---- the loop ------------------------------------------------------------------------------- */

/* Wait for the batch's acknowledgements: up to the flush timeout, and once the process is
 * stopping up to what is left of the shutdown bound (app.h), whichever comes first: a SIGTERM
 * during a flush against a dead broker must not wait the whole flush timeout. */
static int stage_flush(hvs_stage_t *st, hvs_err_t *err) {
    hvs_ms_t end = hvs_time_mono_ms() + st->flush_timeout_ms;
    for (;;) {
        int64_t left = end - hvs_time_mono_ms();
        bool stopping = !hvs_app_running();
        if (stopping && hvs_app_shutdown_left_ms() < left)
            left = hvs_app_shutdown_left_ms();
        int rc = hvs_producer_flush(st->prod, left < 100 ? (int)(left > 0 ? left : 0) : 100, err);
        if (rc != HVS_ETIMEOUT)
            return rc;
        if (left > 100)
            continue;
        if (stopping)
            return hvs_err_set(err, HVS_ETIMEOUT, "shutdown_timeout",
                               "%d message(s) still unacknowledged at the shutdown bound "
                               "(HVS_SHUTDOWN_TIMEOUT)",
                               hvs_producer_unacknowledged(st->prod));
        return hvs_err_set(err, HVS_ETIMEOUT, "flush_timeout",
                           "%d message(s) still unacknowledged after %lld ms",
                           hvs_producer_unacknowledged(st->prod), (long long)st->flush_timeout_ms);
    }
}

/* Note a batch that will not be committed: how many messages, from which offsets. */
static void note_uncommitted(hvs_stage_t *st, rd_kafka_message_t *const *msgs, size_t n) {
    st->uncommitted += n;
    size_t len = strlen(st->uncommitted_at);
    for (size_t i = 0; i < n; i++) {
        if (!msgs[i])
            continue;
        bool seen = false; /* one entry per partition: its first (lowest) offset in the batch */
        for (size_t k = 0; k < i && !seen; k++)
            seen = msgs[k] && msgs[k]->partition == msgs[i]->partition &&
                   msgs[k]->rkt == msgs[i]->rkt;
        if (seen)
            continue;
        int w = snprintf(st->uncommitted_at + len, sizeof st->uncommitted_at - len, "%s%s[%d]@%lld",
                         len ? " " : "", rd_kafka_topic_name(msgs[i]->rkt), (int)msgs[i]->partition,
                         (long long)msgs[i]->offset);
        if (w < 0 || (size_t)w >= sizeof st->uncommitted_at - len) {
            st->uncommitted_at[len] = '\0';
            break;
        }
        len += (size_t)w;
    }
}

/* A commit waits as long as it takes while running (as before), within the bound once stopping. */
static int64_t commit_left_ms(void) {
    return hvs_app_running() ? INT64_MAX : hvs_app_shutdown_left_ms();
}

static int unacknowledged(void *opaque) { return hvs_producer_unacknowledged(opaque); }

/* One batch's messages through the stage, then its outputs, state and offsets. */
static int run_batch(hvs_stage_t *st, rd_kafka_message_t **msgs, size_t n, size_t *ndonep,
                     hvs_err_t *err) {
    const hvs_stage_def_t *d = st->def;
    double t0 = mono_s();
    if (st->rb)
        hvs_redis_batch_reset(st->rb);
    int rc = d->begin_batch ? d->begin_batch(st->opaque, err) : 0;
    st->handling = msgs, st->nbatch = n;
    for (size_t i = 0; i < n; i++)
        unhandled_add(st, msgs[i], 1);
    size_t ndone = 0, next = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        hvs_err_t why = {0};
        st->at = i;
        unhandled_add(st, msgs[i], -1);
        next = i + 1;
        stage_held_t *h = held_of(st, msgs[i]);
        if (h && h->hold_now) { /* follows a message handed back: stays in order behind it */
            if (held_push(h, msgs[i]))
                rc = hvs_err_set(err, HVS_ENOMEM, "oom", "%s: held messages", d->name);
            else
                st->nheld++, msgs[i] = NULL;
            continue;
        }
        st->replaying = hvs_stage_state_note(st, msgs[i]);
        int hrc = d->handle(st->opaque, msgs[i], &why);
        if (hrc == HVS_STAGE_HOLD && h) {
            hvs_stage_state_unnote(st, msgs[i]);
            h->hold_now = true;
            if (held_push(h, msgs[i]))
                rc = hvs_err_set(err, HVS_ENOMEM, "oom", "%s: held messages", d->name);
            else
                st->nheld++, msgs[i] = NULL;
            continue;
        }
        rd_kafka_message_t *m = msgs[i];
        msgs[i] = NULL;
        msgs[ndone++] = m; /* handled: committed with the batch (order kept) */
        if (hrc == HVS_EINVAL && !st->replaying)
            rc = hvs_stage_dead_letter(st, m, &why, err);
        else if (hrc == HVS_EINVAL)
            ; /* replayed quietly: it went to the dead-letter topic when it first came */
        else if (hrc) {
            *err = why;
            rc = hrc;
        }
    }
    for (size_t i = next; i < n; i++) /* left on an error: back to zero */
        unhandled_add(st, msgs[i], -1);
    st->replaying = false;
    st->handling = NULL, st->nbatch = st->at = 0;
    /* inputs handed back are paused; those whose held messages all went through resume */
    for (size_t t = 0; t < st->conf.ninputs && st->nheld + n > 0; t++)
        for (size_t k = 0; k < st->nparts; k++) {
            stage_held_t *h = &st->held[t][st->parts[k]];
            h->hold_now = false;
            if (h->n > 0 && !h->paused)
                held_switch(st, (int)t, st->parts[k], true);
            else if (h->n == 0 && h->paused)
                held_switch(st, (int)t, st->parts[k], false);
        }
    *ndonep = ndone;
    if (rc == 0 && d->end_batch)
        rc = d->end_batch(st->opaque, err);
    double t1 = mono_s();
    hvs_metric_add(st->m_phase[PH_PROCESS], t1 - t0);
    if (rc)
        return rc;
    /* outputs (and dead letters) acknowledged before the state claims them */
    rc = stage_flush(st, err);
    double t2 = mono_s();
    hvs_metric_add(st->m_phase[PH_PUBLISH_WAIT], t2 - t1);
    if (rc)
        return rc;
    if (d->write_state)
        rc = d->write_state(st->opaque, err);
    if (rc == 0)
        rc = hvs_stage_state_commit(st, err); /* state + offsets, one transaction */
    double t3 = mono_s();
    hvs_metric_add(st->m_phase[PH_STATE_WRITE], t3 - t2);
    ndone = *ndonep;
    if (rc || ndone == 0)
        return rc;
    hvs_err_t cerr = {0};
    if (hvs_consumer_commit_batch_bounded(st->cons, msgs, ndone, commit_left_ms, &cerr)) {
        hvs_log_warn(d->name, "commit: %s (the batch will be replayed, harmlessly)", cerr.msg);
        /* Owed at shutdown only when the broker did not answer in time. A commit refused by a
         * rebalance is not: the partitions are being handed over, and whoever owns them next
         * replays the batch whatever this process does (quietly, where the stage's state and
         * offsets in Redis already hold it), so stopping now is a complete shutdown. */
        if (!hvs_app_running() && strcmp(cerr.reason, "commit_rebalance") != 0)
            note_uncommitted(st, msgs, ndone); /* the shutdown's report names them */
    }
    double t4 = mono_s();
    hvs_metric_add(st->m_phase[PH_COMMIT], t4 - t3);
    if (hvs_log_enabled(HVS_LOG_DEBUG))
        hvs_log_fields(HVS_LOG_DEBUG, d->name, "batch", HVS_LFI("messages", (int64_t)n),
                       HVS_LFD("process_s", t1 - t0), HVS_LFD("publish_wait_s", t2 - t1),
                       HVS_LFD("state_write_s", t3 - t2), HVS_LFD("commit_s", t4 - t3));
    return 0;
}

int hvs_stage_run(hvs_stage_t *st, hvs_err_t *err) {
    const hvs_stage_def_t *d = st->def;
    hvs_kafka_conf_t kc;
    hvs_app_kafka_conf(st->app, &kc);
    /* Several inputs keyed alike must be co-partitioned: partition P of every input with one
     * member, whose state for P joins them. The range assignor guarantees that for topics of
     * equal partition counts; cooperative-sticky balances topic-partitions one by one and may
     * split them. The stage's own properties (then HVS_KAFKA_*) still override it. */
    const char *props[2 + 2 * 16 + 1] = {"partition.assignment.strategy", "range"};
    size_t np = 2;
    for (size_t i = 0; st->conf.consumer_props && st->conf.consumer_props[i]; i++) {
        if (np + 1 >= sizeof props / sizeof *props)
            return hvs_err_set(err, HVS_ECONFIG, "bad_value", "%s: over 16 consumer properties",
                               d->name);
        props[np++] = st->conf.consumer_props[i];
    }
    props[np] = NULL;
    kc.worker_props = st->conf.ninputs > 1 ? props : st->conf.consumer_props;
    hvs_consumer_hooks_t hooks = {.on_assigned = on_assigned,
                                  .on_revoked = on_revoked,
                                  .on_assigning = on_assigning,
                                  .opaque = st};
    int rc = hvs_consumer_new(&kc, st->conf.inputs, st->conf.ninputs, &hooks, &st->cons, err);
    if (rc)
        return rc;
    rd_kafka_message_t **msgs = calloc(st->batch, sizeof *msgs);
    if (!msgs)
        return hvs_err_set(err, HVS_ENOMEM, "oom", "%s: batch of %zu", d->name, st->batch);
    hvs_app_set_ready(st->app, ready, st);
    rd_kafka_message_t **work = NULL; /* held + polled messages of a turn */
    size_t capwork = 0;
    for (size_t t = 0; t < st->conf.ninputs; t++)
        for (int p = 0; p < HVS_MAX_PARTITIONS; p++)
            st->held[t][p].taken = -1;
    hvs_app_set_unacknowledged(unacknowledged, st->prod);
    hvs_ms_t last_progress = hvs_time_mono_ms();
    while (hvs_app_running() && rc == 0) {
        size_t n = 0;
        hvs_err_t perr = {0};
        double tp = mono_s();
        int prc = hvs_consumer_poll_batch(st->cons, msgs, st->batch, st->conf.poll_timeout_ms, &n,
                                          &perr);
        double t0 = mono_s();
        hvs_metric_add(st->m_phase[PH_POLL], t0 - tp);
        hvs_stage_state_commit_behind(st);
        st->now = hvs_time_now_ms();
        if (st->fatal) {
            *err = st->fatal_err;
            rc = st->fatal_err.code ? st->fatal_err.code : HVS_ESTATE;
        } else if (prc && hvs_err_is_fatal(&perr)) {
            *err = perr;
            rc = prc;
        } else if (prc) {
            hvs_log_error(d->name, "%s", perr.msg); /* e.g. offset_out_of_range: go on loudly */
        }
        /* held messages first (in order), then the poll's; a message of an input partition at
         * or below what was already taken is a stale copy fetched before a pause */
        size_t nw = 0, nheld = st->nheld, ndone = 0;
        if (rc == 0 && nheld + n > capwork) {
            rd_kafka_message_t **nwk = realloc(work, (nheld + n) * sizeof *nwk);
            if (!nwk)
                rc = hvs_err_set(err, HVS_ENOMEM, "oom", "%s: batch", d->name);
            else
                work = nwk, capwork = nheld + n;
        }
        for (size_t t = 0; rc == 0 && nheld > 0 && t < st->conf.ninputs; t++)
            for (size_t k = 0; k < st->nparts; k++) {
                stage_held_t *h = &st->held[t][st->parts[k]];
                for (size_t j = 0; j < h->n; j++)
                    work[nw++] = h->m[j];
                st->nheld -= h->n;
                h->n = 0;
            }
        for (size_t i = 0; rc == 0 && i < n; i++) {
            stage_held_t *h = held_of(st, msgs[i]);
            if (h && h->paused && h->taken >= 0 && msgs[i]->offset < h->taken)
                continue; /* released below with msgs (only a paused partition's are stale) */
            if (h)
                h->taken = msgs[i]->offset + 1;
            work[nw++] = msgs[i];
            msgs[i] = NULL;
        }
        if (rc == 0) {
            rc = run_batch(st, work, nw, &ndone, err);
            if (rc)
                note_uncommitted(st, work, nw);
        }
        if (rc == 0 && ndone > 0)
            hvs_metric_observe(st->m_batch, mono_s() - t0);
        hvs_consumer_release(msgs, n);
        hvs_consumer_release(work, nw);
        n = ndone; /* progress is what was handled */
        hvs_producer_poll(st->prod);
        hvs_log_limit_flush(&st->dl_log, hvs_time_mono_ms(), d->name, "dead letters");
        if (rc)
            break;
        hvs_stage_batch_t b = {.n = n, .lag = hvs_consumer_lag(st->cons)};
        if (b.lag >= 0)
            b.lag += (int64_t)st->nheld;
        b.caught_up = n == 0 && b.lag == 0;
        hvs_metric_set(st->m_lag, (double)b.lag);
        hvs_ms_t mono = hvs_time_mono_ms();
        /* unknown lag (-1: no fetch answered yet for a partition) is not progress: a consumer
         * handed partitions it never fetches must not look alive either */
        if (n > 0 || b.lag == 0)
            last_progress = mono;
        else if (st->stall_ms > 0 && mono - last_progress > st->stall_ms)
            rc = hvs_err_set(err, HVS_EKAFKA, "stalled",
                             "%lld messages wait in the assigned partitions but none arrived for "
                             "%lld ms; exiting to be restarted",
                             (long long)b.lag, (long long)st->stall_ms);
        if (rc == 0 && d->after_batch) {
            double ta = mono_s();
            rc = d->after_batch(st->opaque, &b, err);
            hvs_metric_add(st->m_phase[PH_BETWEEN], mono_s() - ta);
            last_progress = hvs_time_mono_ms(); /* the stage's own work is not a stalled fetch */
        }
    }
    free(msgs);
    free(work);
    for (size_t k = 0; k < st->nparts; k++)
        held_drop(st, st->parts[k]);
    /* Shutdown, bounded as a whole by HVS_SHUTDOWN_TIMEOUT (from SIGTERM, or from now when the
     * loop left on an error): the stage's last outputs, the final flush, leaving the group.
     * (Only a stop starts the process-wide clock and its watchdog: app.h.) */
    int64_t bound = hvs_app_running() ? st->app->cfg.shutdown_timeout_ms
                                      : hvs_app_shutdown_left_ms();
    hvs_ms_t end = hvs_time_mono_ms() + bound;
    if (d->stopping)
        d->stopping(st->opaque);
    hvs_app_set_ready(st->app, NULL, NULL);
    hvs_err_t ferr = {0};
    int64_t left = end - hvs_time_mono_ms();
    if (hvs_producer_flush(st->prod, left > 0 ? (int)left : 0, &ferr) && rc == 0 &&
        ferr.code != HVS_ETIMEOUT) {
        *err = ferr; /* a delivery failed: what was published is not all there */
        rc = ferr.code;
    }
    int undelivered = hvs_producer_unacknowledged(st->prod);
    hvs_err_t cerr = {0};
    bool left_group = true;
    left = end - hvs_time_mono_ms();
    if (hvs_consumer_close_within(st->cons, left > 0 ? left : 0, &cerr)) {
        hvs_log_warn(d->name, "leaving the group: %s", cerr.msg);
        left_group = cerr.code != HVS_ETIMEOUT;
    }
    if (undelivered > 0 || st->uncommitted > 0 || !left_group) {
        hvs_log_fields(
            HVS_LOG_ERROR, d->name, "shutdown incomplete: messages not acknowledged by the broker",
            HVS_LFI("undelivered_messages", undelivered),
            HVS_LFI("uncommitted_messages", st->uncommitted),
            HVS_LFS("uncommitted_from", st->uncommitted_at), HVS_LFB("left_group", left_group),
            HVS_LFI("shutdown_timeout_ms", st->app->cfg.shutdown_timeout_ms));
        hvs_app_shutdown_incomplete();
        if (rc == 0)
            rc = hvs_err_set(err, HVS_ETIMEOUT, "shutdown_timeout",
                             "%d output(s) undelivered, %zu input(s) uncommitted at the "
                             "shutdown bound (they are replayed on restart)",
                             undelivered, st->uncommitted);
    }
    return rc;
}
