/*
 * Consumer and producer over librdkafka (see hvs/kafka.h), after librdkafka's
 * examples/consumer.c and INTRODUCTION.md "At-least-once processing".
 *
 * Offset jumps: librdkafka's auto.offset.reset=error would also stop brand-new groups, and with
 * "earliest" a reset is only a log line (rdkafka_offset.c logs it at WARNING and carries on). So
 * new groups start at "earliest" and this layer checks offset continuity itself: per assigned
 * partition it knows the next offset it must see (the committed offset at assignment, then the
 * last returned offset + 1). A message past that on a non-compacted topic means data aged out
 * before we read it (retention, or the devbroker's ~5 MiB per partition), at the start or in the
 * middle of a stream; a message before it means the committed offset was beyond the log end
 * (topic recreated, data lost) and the partition is replayed. Both are reported as errors with
 * reason "offset_out_of_range", never skipped silently. Gaps are legal only on compacted topics
 * (our producers are idempotent, not transactional, so no control records leave gaps).
 */
#include "hvs/kafka.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "hvs/log.h"
#include "hvs/time.h"
#include "hvs/topics.h"
#include "hvs/vec.h"

#define QUEUE_FULL_RETRY_MS 10000
/* Longest a close waits for the first assignment (librdkafka bug #4312, see hvs_consumer_close). */
#define CLOSE_FIRST_ASSIGN_MS 10000

typedef struct part_state {
    char topic[HVS_TOPIC_NAME_MAX];
    int32_t partition;
    int64_t next;   /* offset the next message must have; -1 unknown (new group) */
    bool compacted; /* gaps are legal */
} part_state_t;

struct hvs_consumer {
    rd_kafka_t *rk;
    hvs_consumer_hooks_t hooks;
    /* the batch being collected by poll_batch, so a revocation can drop its messages */
    rd_kafka_message_t **cur;
    size_t *cur_n;
    part_state_t *parts;
    size_t nparts, capparts;
    size_t last; /* index of the last part found: batches come partition by partition */
    /* a message hvs_consumer_wait_assignment received; poll_batch returns it first */
    rd_kafka_message_t *pending;
    bool cooperative;   /* cooperative-sticky configured */
    bool ever_assigned; /* a SyncGroup result reached us (even an empty one) */
    int closed;
    bool abandoned;            /* close gave up at its bound: destroy must not close again */
    rd_kafka_queue_t *close_q; /* the asynchronous close's queue (until destroy) */
};

struct hvs_producer {
    rd_kafka_t *rk;
    rd_kafka_topic_t **prepared; /* hvs_producer_prepare_topics: held until destroy */
    size_t nprepared;
    atomic_ullong delivered, failed, failed_since_flush;
    char last_error[256];
};

int hvs_kafka_conf_set(rd_kafka_conf_t *conf, const char *const *kv, hvs_err_t *err) {
    char errstr[512];
    for (const char *const *p = kv; p && p[0] && p[1]; p += 2)
        if (rd_kafka_conf_set(conf, p[0], p[1], errstr, sizeof errstr) != RD_KAFKA_CONF_OK)
            return hvs_err_set(err, HVS_ECONFIG, "kafka_config", "librdkafka property %s: %s", p[0],
                               errstr);
    return HVS_OK;
}

/* Apply our defaults, then the worker's, then the operator's pass-through properties (which win). */
static int set_props(rd_kafka_conf_t *conf, const hvs_kafka_conf_t *c, const char *const *defaults,
                     hvs_err_t *err) {
    char errstr[512];
    for (const char *const *p = defaults; p && *p; p += 2)
        if (rd_kafka_conf_set(conf, p[0], p[1], errstr, sizeof errstr) != RD_KAFKA_CONF_OK)
            return hvs_err_set(err, HVS_ECONFIG, "kafka_config", "%s=%s: %s", p[0], p[1], errstr);
    for (const char *const *p = c->worker_props; p && p[0] && p[1]; p += 2)
        if (rd_kafka_conf_set(conf, p[0], p[1], errstr, sizeof errstr) != RD_KAFKA_CONF_OK)
            return hvs_err_set(err, HVS_ECONFIG, "kafka_config", "%s=%s: %s", p[0], p[1], errstr);
    for (const char *const *p = c->props; p && p[0] && p[1]; p += 2)
        if (rd_kafka_conf_set(conf, p[0], p[1], errstr, sizeof errstr) != RD_KAFKA_CONF_OK)
            return hvs_err_set(err, HVS_ECONFIG, "kafka_config", "HVS_KAFKA_ property %s: %s", p[0],
                               errstr);
    return HVS_OK;
}

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
    (void)rk;
    hvs_log_level_t l = level <= 3   ? HVS_LOG_ERROR
                        : level <= 4 ? HVS_LOG_WARN
                        : level <= 6 ? HVS_LOG_INFO
                                     : HVS_LOG_DEBUG;
    if (hvs_log_enabled(l))
        hvs_log_fields(l, "kafka", buf, HVS_LFS("facility", fac));
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque) {
    (void)rk;
    (void)opaque;
    hvs_log_fields(err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN ? HVS_LOG_ERROR : HVS_LOG_WARN,
                   "kafka", reason, HVS_LFS("error", rd_kafka_err2name(err)));
}

/* ---- consumer ------------------------------------------------------------------------------ */

static part_state_t *part_find(hvs_consumer_t *c, const char *topic, int32_t partition) {
    if (c->last < c->nparts && c->parts[c->last].partition == partition &&
        strcmp(c->parts[c->last].topic, topic) == 0)
        return &c->parts[c->last];
    for (size_t i = 0; i < c->nparts; i++)
        if (c->parts[i].partition == partition && strcmp(c->parts[i].topic, topic) == 0) {
            c->last = i;
            return &c->parts[i];
        }
    return NULL;
}

/* `start` holds, per partition, where consumption starts: the committed offset or what the
 * on_assigning hook chose (BEGINNING: the log start, known once the first message arrives). */
static void parts_added(hvs_consumer_t *c, const rd_kafka_topic_partition_list_t *start) {
    for (int i = 0; i < start->cnt; i++) {
        const rd_kafka_topic_partition_t *tp = &start->elems[i];
        part_state_t *p = part_find(c, tp->topic, tp->partition);
        if (!p) {
            part_state_t *np = hvs_vec_grow(c->parts, &c->capparts, c->nparts + 1, sizeof *np, 16);
            if (!np)
                continue;
            c->parts = np;
            p = &c->parts[c->nparts++];
        }
        snprintf(p->topic, sizeof p->topic, "%s", tp->topic);
        p->partition = tp->partition;
        p->next = tp->err || tp->offset < 0 ? -1 : tp->offset;
        const hvs_topic_t *t = hvs_topic_by_name(tp->topic);
        p->compacted = t && t->compacted;
    }
}

static void parts_removed(hvs_consumer_t *c, const rd_kafka_topic_partition_list_t *parts) {
    for (int i = 0; i < parts->cnt; i++) {
        part_state_t *p = part_find(c, parts->elems[i].topic, parts->elems[i].partition);
        if (p)
            *p = c->parts[--c->nparts];
    }
    /* Drop collected, uncommitted messages of revoked partitions: the new owner re-reads them. */
    if (c->pending && rd_kafka_topic_partition_list_find(
                          parts, rd_kafka_topic_name(c->pending->rkt), c->pending->partition)) {
        rd_kafka_message_destroy(c->pending);
        c->pending = NULL;
    }
    if (c->cur && c->cur_n) {
        size_t k = 0;
        for (size_t i = 0; i < *c->cur_n; i++) {
            rd_kafka_message_t *m = c->cur[i];
            if (rd_kafka_topic_partition_list_find(parts, rd_kafka_topic_name(m->rkt),
                                                   m->partition))
                rd_kafka_message_destroy(m);
            else
                c->cur[k++] = m;
        }
        *c->cur_n = k;
    }
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque) {
    hvs_consumer_t *c = opaque;
    int coop = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    rd_kafka_error_t *e = NULL;
    rd_kafka_resp_err_t rerr = RD_KAFKA_RESP_ERR_NO_ERROR;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        c->ever_assigned = true;
        /* What the group had committed: where consumption starts unless the hook rewinds,
         * and what a jump past it is recognised against later. */
        rd_kafka_topic_partition_list_t *start = rd_kafka_topic_partition_list_copy(parts);
        if (rd_kafka_committed(c->rk, start, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR)
            hvs_log_warn("kafka", "could not read committed offsets of new partitions");
        for (int i = 0; i < start->cnt; i++)
            if (start->elems[i].err || start->elems[i].offset < 0)
                start->elems[i].offset = RD_KAFKA_OFFSET_INVALID, start->elems[i].err = 0;
        if (c->hooks.on_assigning)
            c->hooks.on_assigning(c->hooks.opaque, start);
        if (coop)
            e = rd_kafka_incremental_assign(rk, start);
        else
            rerr = rd_kafka_assign(rk, start);
        parts_added(c, start);
        rd_kafka_topic_partition_list_destroy(start);
        hvs_log_fields(HVS_LOG_INFO, "kafka", "partitions assigned", HVS_LFI("count", parts->cnt),
                       HVS_LFB("cooperative", coop));
        if (c->hooks.on_assigned)
            c->hooks.on_assigned(c->hooks.opaque, parts);
    } else {
        parts_removed(c, parts);
        if (c->hooks.on_revoked)
            c->hooks.on_revoked(c->hooks.opaque, parts);
        /* lost: the group moved on without us (session timeout, fenced); others may already
         * own these partitions, so the hook must not write their state any more. */
        hvs_log_fields(HVS_LOG_INFO, "kafka",
                       err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS ? "partitions revoked"
                                                                   : "rebalance error",
                       HVS_LFI("count", parts->cnt), HVS_LFS("event", rd_kafka_err2name(err)),
                       HVS_LFB("lost", rd_kafka_assignment_lost(rk)), HVS_LFB("cooperative", coop));
        if (coop)
            e = rd_kafka_incremental_unassign(rk, parts);
        else
            rerr = rd_kafka_assign(rk, NULL);
    }
    if (e) {
        hvs_log_error("kafka", "rebalance: %s", rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
    } else if (rerr) {
        hvs_log_error("kafka", "rebalance: %s", rd_kafka_err2str(rerr));
    }
}

int hvs_consumer_new(const hvs_kafka_conf_t *kc, const char *const *topics, size_t ntopics,
                     const hvs_consumer_hooks_t *hooks, hvs_consumer_t **out, hvs_err_t *err) {
    if (!kc || !kc->brokers || !kc->group || ntopics == 0)
        return hvs_err_set(err, HVS_EINVAL, NULL, "consumer: brokers, group and topics needed");
    hvs_consumer_t *c = calloc(1, sizeof *c);
    if (!c)
        return hvs_err_set(err, HVS_ENOMEM, NULL, "consumer: out of memory");
    if (hooks)
        c->hooks = *hooks;
    char fetch_wait[16];
    snprintf(fetch_wait, sizeof fetch_wait, "%d",
             kc->fetch_wait_max_ms > 0 ? kc->fetch_wait_max_ms : 100);
    const char *defaults[] = {
        "bootstrap.servers",
        kc->brokers,
        "group.id",
        kc->group,
        "client.id",
        kc->client_id ? kc->client_id : "hvs",
        "enable.auto.commit",
        "false",
        "enable.auto.offset.store",
        "false",
        "auto.offset.reset",
        "earliest",
        "partition.assignment.strategy",
        "cooperative-sticky",
        "fetch.wait.max.ms",
        fetch_wait,
        "queued.min.messages",
        "100000",
        "enable.partition.eof",
        "false",
        /* A crashed pod's partitions move after 10 s instead of librdkafka's 45 s. */
        "session.timeout.ms",
        "10000",
        "heartbeat.interval.ms",
        "2000",
        NULL,
    };
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    int rc = set_props(conf, kc, defaults, err);
    if (rc) {
        rd_kafka_conf_destroy(conf);
        free(c);
        return rc;
    }
    rd_kafka_conf_set_opaque(conf, c);
    rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
    rd_kafka_conf_set_log_cb(conf, log_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    char errstr[512];
    c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    if (!c->rk) {
        rd_kafka_conf_destroy(conf);
        free(c);
        return hvs_err_set(err, HVS_EKAFKA, "kafka_init", "consumer: %s", errstr);
    }
    rd_kafka_poll_set_consumer(c->rk);
    char strategy[128];
    size_t slen = sizeof strategy;
    c->cooperative = rd_kafka_conf_get(rd_kafka_conf(c->rk), "partition.assignment.strategy",
                                       strategy, &slen) == RD_KAFKA_CONF_OK &&
                     strstr(strategy, "cooperative-sticky") != NULL;
    rd_kafka_topic_partition_list_t *subs = rd_kafka_topic_partition_list_new((int)ntopics);
    for (size_t i = 0; i < ntopics; i++)
        rd_kafka_topic_partition_list_add(subs, topics[i], RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(c->rk, subs);
    rd_kafka_topic_partition_list_destroy(subs);
    if (e) {
        rd_kafka_destroy(c->rk);
        free(c);
        return hvs_err_set(err, HVS_EKAFKA, "kafka_subscribe", "subscribe to %s: %s", topics[0],
                           rd_kafka_err2str(e));
    }
    *out = c;
    return HVS_OK;
}

/* Check a message against the offset its partition must continue at; 0 ok, -1 jump. */
static int check_offset(hvs_consumer_t *c, const rd_kafka_message_t *m, hvs_err_t *err) {
    const char *topic = rd_kafka_topic_name(m->rkt);
    part_state_t *p = part_find(c, topic, m->partition);
    if (!p)
        return 0;
    int64_t want = p->next;
    p->next = m->offset + 1;
    if (want < 0 || m->offset == want || (m->offset > want && p->compacted))
        return 0;
    if (m->offset > want)
        hvs_err_set(err, HVS_EKAFKA, "offset_out_of_range",
                    "%s [%d]: expected offset %lld but the next available is %lld: %lld "
                    "message(s) aged out before they were processed",
                    topic, (int)m->partition, (long long)want, (long long)m->offset,
                    (long long)(m->offset - want));
    else
        hvs_err_set(err, HVS_EKAFKA, "offset_out_of_range",
                    "%s [%d]: expected offset %lld but the log restarts at %lld (committed "
                    "offset beyond the log end: topic recreated or data lost); replaying",
                    topic, (int)m->partition, (long long)want, (long long)m->offset);
    hvs_log_fields(HVS_LOG_ERROR, "kafka", "offset out of range: offsets jumped",
                   HVS_LFS("topic", topic), HVS_LFI("partition", m->partition),
                   HVS_LFI("expected", want), HVS_LFI("got", m->offset));
    return -1;
}

int hvs_consumer_poll_batch(hvs_consumer_t *c, rd_kafka_message_t **msgs, size_t max,
                            int timeout_ms, size_t *n, hvs_err_t *err) {
    *n = 0;
    c->cur = msgs;
    c->cur_n = n;
    int rc = HVS_OK;
    int wait = timeout_ms;
    while (*n < max) {
        rd_kafka_message_t *m = c->pending;
        c->pending = NULL;
        if (!m)
            m = rd_kafka_consumer_poll(c->rk, wait);
        if (!m)
            break;
        wait = 0;
        if (m->err) {
            if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                rd_kafka_message_destroy(m);
                continue;
            }
            int fatal = m->err == RD_KAFKA_RESP_ERR__FATAL ||
                        m->err == RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE ||
                        m->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET;
            hvs_log_fields(fatal ? HVS_LOG_ERROR : HVS_LOG_WARN, "kafka",
                           rd_kafka_message_errstr(m), HVS_LFS("error", rd_kafka_err2name(m->err)),
                           HVS_LFS("topic", m->rkt ? rd_kafka_topic_name(m->rkt) : ""));
            if (fatal && rc == HVS_OK)
                rc = hvs_err_set(err, HVS_EKAFKA,
                                 m->err == RD_KAFKA_RESP_ERR__FATAL ? HVS_REASON_FATAL
                                                                    : "offset_out_of_range",
                                 "consumer: %s", rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            if (fatal)
                break;
            continue;
        }
        if (check_offset(c, m, rc == HVS_OK ? err : NULL) != 0 && rc == HVS_OK)
            rc = HVS_EKAFKA;
        msgs[(*n)++] = m;
    }
    c->cur = NULL;
    c->cur_n = NULL;
    return rc;
}

int hvs_consumer_commit_batch(hvs_consumer_t *c, rd_kafka_message_t *const *msgs, size_t n,
                              hvs_err_t *err) {
    return hvs_consumer_commit_batch_bounded(c, msgs, n, NULL, err);
}

int hvs_consumer_commit_batch_bounded(hvs_consumer_t *c, rd_kafka_message_t *const *msgs, size_t n,
                                      int64_t (*left_ms)(void), hvs_err_t *err) {
    if (n == 0)
        return HVS_OK;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(8);
    for (size_t i = 0; i < n; i++) {
        const rd_kafka_message_t *m = msgs[i];
        if (!m)
            continue;
        const char *topic = rd_kafka_topic_name(m->rkt);
        rd_kafka_topic_partition_t *tp = rd_kafka_topic_partition_list_find(l, topic, m->partition);
        if (!tp)
            tp = rd_kafka_topic_partition_list_add(l, topic, m->partition);
        if (m->offset + 1 > tp->offset)
            tp->offset = m->offset + 1;
    }
    rd_kafka_resp_err_t e = rd_kafka_offsets_store(c->rk, l);
    bool gave_up = false;
    if (!e && !left_ms) {
        e = rd_kafka_commit(c->rk, l, 0);
    } else if (!e) {
        /* asynchronously, its result awaited here while left_ms() allows */
        rd_kafka_queue_t *q = rd_kafka_queue_new(c->rk);
        e = rd_kafka_commit_queue(c->rk, l, q, NULL, NULL);
        while (!e) {
            rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 100);
            if (ev && rd_kafka_event_type(ev) == RD_KAFKA_EVENT_OFFSET_COMMIT) {
                e = rd_kafka_event_error(ev);
                rd_kafka_event_destroy(ev);
                break;
            }
            if (ev)
                rd_kafka_event_destroy(ev);
            else if (left_ms() <= 0) {
                gave_up = true;
                break;
            }
        }
        rd_kafka_queue_destroy(q);
    }
    rd_kafka_topic_partition_list_destroy(l);
    if (gave_up)
        return hvs_err_set(err, HVS_ETIMEOUT, "commit_timeout",
                           "commit of %zu messages not answered in time: they will be processed "
                           "again by the partitions' next owner",
                           n);
    if (e == RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION || e == RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS ||
        e == RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID || e == RD_KAFKA_RESP_ERR__STATE)
        /* The group moved on under us: whoever owns the partitions now replays the batch. */
        return hvs_err_set(err, HVS_EKAFKA, "commit_rebalance",
                           "commit of %zu messages refused during a rebalance (%s): they will "
                           "be processed again by the partitions' next owner",
                           n, rd_kafka_err2name(e));
    if (e && e != RD_KAFKA_RESP_ERR__NO_OFFSET)
        return hvs_err_set(err, HVS_EKAFKA, "commit", "commit of %zu messages: %s", n,
                           rd_kafka_err2str(e));
    return HVS_OK;
}

void hvs_consumer_release(rd_kafka_message_t **msgs, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (msgs[i]) {
            rd_kafka_message_destroy(msgs[i]);
            msgs[i] = NULL;
        }
}

int hvs_consumer_assignment_size(hvs_consumer_t *c) {
    rd_kafka_topic_partition_list_t *a = NULL;
    if (rd_kafka_assignment(c->rk, &a) != RD_KAFKA_RESP_ERR_NO_ERROR || !a)
        return 0;
    int n = a->cnt;
    rd_kafka_topic_partition_list_destroy(a);
    return n;
}

int hvs_consumer_wait_assignment(hvs_consumer_t *c, int timeout_ms, hvs_err_t *err) {
    hvs_ms_t deadline = hvs_time_mono_ms() + timeout_ms;
    /* rd_kafka_consumer_poll serves the rebalance; rd_kafka_poll must not be used here: on a
     * consumer queue it aborts when it meets a fetched message (rd_kafka_q_serve asserts). */
    while (hvs_consumer_assignment_size(c) == 0 && !c->pending) {
        hvs_ms_t left = deadline - hvs_time_mono_ms();
        if (left <= 0)
            return hvs_err_set(err, HVS_ETIMEOUT, "no_assignment",
                               "no partitions assigned within %d ms", timeout_ms);
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c->rk, left < 100 ? (int)left : 100);
        if (m && m->err) {
            hvs_log_fields(HVS_LOG_WARN, "kafka", rd_kafka_message_errstr(m),
                           HVS_LFS("error", rd_kafka_err2name(m->err)));
            rd_kafka_message_destroy(m);
        } else if (m) {
            c->pending = m; /* only after an assignment; the next poll_batch returns it */
        }
    }
    return HVS_OK;
}

int64_t hvs_consumer_lag(hvs_consumer_t *c) {
    rd_kafka_topic_partition_list_t *a = NULL;
    if (rd_kafka_assignment(c->rk, &a) != RD_KAFKA_RESP_ERR_NO_ERROR || !a)
        return -1;
    int64_t lag = 0;
    if (rd_kafka_position(c->rk, a) != RD_KAFKA_RESP_ERR_NO_ERROR)
        lag = -1;
    for (int i = 0; lag >= 0 && i < a->cnt; i++) {
        int64_t lo, hi;
        if (rd_kafka_get_watermark_offsets(c->rk, a->elems[i].topic, a->elems[i].partition, &lo,
                                           &hi) != RD_KAFKA_RESP_ERR_NO_ERROR ||
            hi < 0) {
            lag = -1;
            break;
        }
        /* Before the first message of a partition arrives, librdkafka knows no position: the
         * next offset we expect (the committed one) is it; only a new group starts at lo. */
        int64_t pos = a->elems[i].offset;
        if (pos < 0) {
            const part_state_t *p = part_find(c, a->elems[i].topic, a->elems[i].partition);
            pos = p && p->next >= 0 ? p->next : lo;
        }
        lag += hi > pos ? hi - pos : 0;
    }
    rd_kafka_topic_partition_list_destroy(a);
    return lag;
}

int64_t hvs_consumer_partition_lag(hvs_consumer_t *c, const char *topic, int32_t partition) {
    const part_state_t *p = part_find(c, topic, partition);
    int64_t lo, hi;
    if (!p ||
        rd_kafka_get_watermark_offsets(c->rk, topic, partition, &lo, &hi) !=
            RD_KAFKA_RESP_ERR_NO_ERROR ||
        hi < 0)
        return -1;
    int64_t pos = p->next >= 0 ? p->next : lo; /* as hvs_consumer_lag: a new group starts at lo */
    return hi > pos ? hi - pos : 0;
}

/* librdkafka < 2.3 (bug #4312) aborts when a cooperative-sticky member is destroyed after its
 * JoinGroup response but before its first assignment: finish joining first (what it is handed is
 * never processed nor committed, so the next owner gets it all), for up to `wait_ms`. */
static void close_prepare(hvs_consumer_t *c, int64_t wait_ms) {
    hvs_ms_t deadline = hvs_time_mono_ms() + wait_ms;
    while (c->cooperative && !c->ever_assigned && hvs_time_mono_ms() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c->rk, 100);
        if (m)
            rd_kafka_message_destroy(m);
    }
    if (c->pending) {
        rd_kafka_message_destroy(c->pending);
        c->pending = NULL;
    }
}

int hvs_consumer_close(hvs_consumer_t *c, hvs_err_t *err) {
    if (!c || c->closed)
        return HVS_OK;
    c->closed = 1;
    close_prepare(c, CLOSE_FIRST_ASSIGN_MS);
    rd_kafka_resp_err_t e = rd_kafka_consumer_close(c->rk);
    if (e)
        return hvs_err_set(err, HVS_EKAFKA, "close", "consumer close: %s", rd_kafka_err2str(e));
    return HVS_OK;
}

int hvs_consumer_close_within(hvs_consumer_t *c, int64_t timeout_ms, hvs_err_t *err) {
    if (!c || c->closed)
        return HVS_OK;
    if (timeout_ms > 0) {
        c->closed = 1;
        close_prepare(c, timeout_ms < CLOSE_FIRST_ASSIGN_MS ? timeout_ms : CLOSE_FIRST_ASSIGN_MS);
        /* librdkafka's own close (commit, leave, revocations); a coordinator that never answers
         * keeps it to session.timeout.ms: the process-wide bound (app.h's watchdog) covers that */
        rd_kafka_resp_err_t e = rd_kafka_consumer_close(c->rk);
        if (e)
            return hvs_err_set(err, HVS_EKAFKA, "close", "consumer close: %s", rd_kafka_err2str(e));
        return HVS_OK;
    }
    c->closed = 1;
    c->abandoned = true;
    if (c->pending) {
        rd_kafka_message_destroy(c->pending);
        c->pending = NULL;
    }
    return hvs_err_set(err, HVS_ETIMEOUT, "close_timeout",
                       "no time left to leave the group: left without it (what was not "
                       "committed is replayed by the next owner)");
}

void hvs_consumer_destroy(hvs_consumer_t *c) {
    if (!c)
        return;
    if (c->pending)
        rd_kafka_message_destroy(c->pending);
    c->pending = NULL;
    hvs_consumer_close(c, NULL);
    if (c->abandoned)
        rd_kafka_destroy_flags(c->rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    else
        rd_kafka_destroy(c->rk);
    free(c->parts);
    free(c);
}

rd_kafka_t *hvs_consumer_handle(hvs_consumer_t *c) { return c->rk; }

/* ---- producer ------------------------------------------------------------------------------ */

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk;
    hvs_producer_t *p = opaque;
    if (!m->err) {
        atomic_fetch_add(&p->delivered, 1);
        return;
    }
    atomic_fetch_add(&p->failed, 1);
    atomic_fetch_add(&p->failed_since_flush, 1);
    snprintf(p->last_error, sizeof p->last_error, "%s [%d]: %s",
             m->rkt ? rd_kafka_topic_name(m->rkt) : "?", (int)m->partition,
             rd_kafka_err2str(m->err));
    hvs_log_fields(HVS_LOG_ERROR, "kafka", "delivery failed",
                   HVS_LFS("error", rd_kafka_err2name(m->err)),
                   HVS_LFS("topic", m->rkt ? rd_kafka_topic_name(m->rkt) : ""));
}

int hvs_producer_new(const hvs_kafka_conf_t *kc, hvs_producer_t **out, hvs_err_t *err) {
    if (!kc || !kc->brokers)
        return hvs_err_set(err, HVS_EINVAL, NULL, "producer: brokers needed");
    hvs_producer_t *p = calloc(1, sizeof *p);
    if (!p)
        return hvs_err_set(err, HVS_ENOMEM, NULL, "producer: out of memory");
    const char *defaults[] = {
        "bootstrap.servers",
        kc->brokers,
        "client.id",
        kc->client_id ? kc->client_id : "hvs",
        "enable.idempotence",
        "true",
        "acks",
        "all",
        "partitioner",
        "murmur2_random",
        "compression.type",
        "lz4",
        "linger.ms",
        "5",
        "batch.num.messages",
        "10000",
        "queue.buffering.max.messages",
        "1000000",
        "queue.buffering.max.kbytes",
        "1048576",
        "message.timeout.ms",
        "120000",
        NULL,
    };
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    int rc = set_props(conf, kc, defaults, err);
    if (rc) {
        rd_kafka_conf_destroy(conf);
        free(p);
        return rc;
    }
    rd_kafka_conf_set_opaque(conf, p);
    rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
    rd_kafka_conf_set_log_cb(conf, log_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    char errstr[512];
    p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!p->rk) {
        rd_kafka_conf_destroy(conf);
        free(p);
        return hvs_err_set(err, HVS_EKAFKA, "kafka_init", "producer: %s", errstr);
    }
    *out = p;
    return HVS_OK;
}

static int fatal_error(hvs_producer_t *p, hvs_err_t *err) {
    char errstr[512];
    rd_kafka_resp_err_t fe = rd_kafka_fatal_error(p->rk, errstr, sizeof errstr);
    if (fe)
        return hvs_err_set(err, HVS_EKAFKA, HVS_REASON_FATAL, "producer fatal error %s: %s",
                           rd_kafka_err2name(fe), errstr);
    return HVS_OK;
}

int hvs_producer_send(hvs_producer_t *p, const char *topic, int32_t partition, const void *key,
                      size_t keylen, const void *value, size_t len, hvs_err_t *err) {
    hvs_ms_t deadline = 0;
    for (;;) {
        rd_kafka_resp_err_t e = rd_kafka_producev(
            p->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
            RD_KAFKA_V_KEY((void *)key, keylen), RD_KAFKA_V_VALUE((void *)value, len),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        if (!e)
            return HVS_OK;
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            if (e == RD_KAFKA_RESP_ERR__FATAL)
                return fatal_error(p, err);
            return hvs_err_set(err, HVS_EKAFKA, "produce", "produce to %s: %s", topic,
                               rd_kafka_err2str(e));
        }
        if (!deadline)
            deadline = hvs_time_mono_ms() + QUEUE_FULL_RETRY_MS;
        else if (hvs_time_mono_ms() > deadline)
            return hvs_err_set(err, HVS_ETIMEOUT, "queue_full",
                               "produce to %s: local queue full for %d ms", topic,
                               QUEUE_FULL_RETRY_MS);
        rd_kafka_poll(p->rk, 100); /* serve delivery reports to make room */
    }
}

int hvs_producer_prepare_topics(hvs_producer_t *p, const char *const *topics, hvs_err_t *err) {
    for (const char *const *t = topics; t && *t; t++) {
        bool known = false;
        for (size_t i = 0; i < p->nprepared && !known; i++)
            known = strcmp(rd_kafka_topic_name(p->prepared[i]), *t) == 0;
        if (known)
            continue;
        rd_kafka_topic_t **np = realloc(p->prepared, (p->nprepared + 1) * sizeof *np);
        if (!np)
            return hvs_err_set(err, HVS_ENOMEM, "oom", "producer: preparing topic %s", *t);
        p->prepared = np;
        /* a new handle queries the topic's leader asynchronously (rd_kafka_topic_new) */
        if (!(p->prepared[p->nprepared] = rd_kafka_topic_new(p->rk, *t, NULL)))
            return hvs_err_set(err, HVS_EKAFKA, "kafka_topic", "producer: topic %s: %s", *t,
                               rd_kafka_err2str(rd_kafka_last_error()));
        p->nprepared++;
    }
    return HVS_OK;
}

int hvs_producer_flush(hvs_producer_t *p, int timeout_ms, hvs_err_t *err) {
    rd_kafka_resp_err_t e = rd_kafka_flush(p->rk, timeout_ms);
    int rc = fatal_error(p, err);
    if (rc)
        return rc;
    unsigned long long failed = atomic_exchange(&p->failed_since_flush, 0);
    if (failed)
        return hvs_err_set(err, HVS_EKAFKA, "delivery_failed",
                           "%llu message(s) not delivered, last: %s", failed, p->last_error);
    if (e == RD_KAFKA_RESP_ERR__TIMED_OUT)
        return hvs_err_set(err, HVS_ETIMEOUT, "flush_timeout",
                           "%d message(s) still unacknowledged after %d ms",
                           rd_kafka_outq_len(p->rk), timeout_ms);
    return HVS_OK;
}

void hvs_producer_poll(hvs_producer_t *p) { rd_kafka_poll(p->rk, 0); }

uint64_t hvs_producer_delivered(const hvs_producer_t *p) {
    return atomic_load(&((hvs_producer_t *)p)->delivered);
}

uint64_t hvs_producer_failed(const hvs_producer_t *p) {
    return atomic_load(&((hvs_producer_t *)p)->failed);
}

int hvs_producer_unacknowledged(hvs_producer_t *p) { return p ? rd_kafka_outq_len(p->rk) : 0; }

int hvs_producer_destroy_within(hvs_producer_t *p, int64_t timeout_ms) {
    if (!p)
        return 0;
    int left = 0;
    if (rd_kafka_flush(p->rk, timeout_ms > 0 ? (int)timeout_ms : 0) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        left = rd_kafka_outq_len(p->rk);
        hvs_log_warn("kafka", "producer destroyed with %d message(s) unacknowledged", left);
        /* undelivered anyway: do not let librdkafka's teardown wait for them either */
        rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    }
    for (size_t i = 0; i < p->nprepared; i++)
        rd_kafka_topic_destroy(p->prepared[i]);
    free(p->prepared);
    rd_kafka_destroy(p->rk);
    free(p);
    return left;
}

void hvs_producer_destroy(hvs_producer_t *p) { hvs_producer_destroy_within(p, 10000); }

rd_kafka_t *hvs_producer_handle(hvs_producer_t *p) { return p->rk; }
