/*
 * stage_state.c - exactly-once state for a stage (stage.h, docs/design.md §5): per input
 * partition P, the runner keeps in Redis
 *
 *   hvs:stage:<stage>:<P>   HASH  o:<topic> -> the next offset to apply (the state holds every
 *                                 message before it); epoch -> when P's state was started;
 *                                 r:<topic> -> while a rebuild is under way, where it replays
 *                                 that input to (-1: none of it), for a rebuild that is killed
 *
 * and writes the offsets in the same MULTI/EXEC as the state the batch produced, so Redis, not
 * the group's committed offsets, says what was applied. On assignment each input partition
 * starts at its stored offset: a replayed message is never applied twice, and never judged
 * against state from its future. A partition whose state is gone (no epoch while the group
 * committed offsets or offsets are stored: Redis flushed, restarted empty, replaced) is rebuilt:
 * its inputs are rewound to conf.rebuild_ms ago (message time; the beginning where the broker
 * cannot say) and replayed quietly (hvs_stage_replaying) up to where processing had got; its
 * epoch is written once every input has caught up. A loss while running (checked before every
 * state write, so a restarted Redis is noticed within one batch) stops the stage before it writes
 * into the empty database: the process exits, and the next start rebuilds.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hvs/ids.h"
#include "hvs/log.h"
#include "hvs/time.h"
#include "hvs/vec.h"
#include "stage_internal.h"

static int topic_index(const hvs_stage_t *st, const char *topic) {
    for (size_t t = 0; t < st->conf.ninputs; t++)
        if (strcmp(st->conf.inputs[t], topic) == 0)
            return (int)t;
    return -1;
}

static void part_key(const hvs_stage_t *st, int32_t p, char *buf, size_t len) {
    snprintf(buf, len, "hvs:stage:%s:%d", st->def->name, (int)p);
}

int hvs_stage_state_init(hvs_stage_t *st, hvs_err_t *err) {
    if (!st->conf.redis)
        return 0;
    if (st->conf.ninputs > HVS_STAGE_MAX_INPUTS)
        return hvs_err_set(err, HVS_EINVAL, "bad_stage", "%s: at most %d input topics",
                           st->def->name, HVS_STAGE_MAX_INPUTS);
    if (!(st->rb = hvs_redis_batch_new()) || !(st->scratch = hvs_redis_batch_new()))
        return hvs_err_set(err, HVS_ENOMEM, "oom", "%s: state batches", st->def->name);
    return 0;
}

void hvs_stage_state_fini(hvs_stage_t *st) {
    hvs_redis_batch_destroy(st->rb);
    hvs_redis_batch_destroy(st->scratch);
    if (st->to_commit)
        rd_kafka_topic_partition_list_destroy(st->to_commit);
}

void hvs_stage_state_commit_behind(hvs_stage_t *st) {
    if (!st->to_commit || st->to_commit->cnt == 0 || !st->cons)
        return;
    rd_kafka_resp_err_t e = rd_kafka_commit(hvs_consumer_handle(st->cons), st->to_commit, 0);
    if (e)
        hvs_log_warn(st->def->name,
                     "committing %d offset(s) the state had already applied: %s (retried after "
                     "the partition's next batch)",
                     st->to_commit->cnt, rd_kafka_err2str(e));
    else
        hvs_log_info(st->def->name,
                     "committed %d offset(s) the state had applied beyond the group's commit",
                     st->to_commit->cnt);
    rd_kafka_topic_partition_list_destroy(st->to_commit);
    st->to_commit = NULL;
}

static void part_reset(stage_part_t *ps) {
    memset(ps, 0, sizeof *ps);
    for (int t = 0; t < HVS_STAGE_MAX_INPUTS; t++)
        ps->next[t] = ps->replay_until[t] = -1;
}

/* A stage key without r:<topic>: no rebuild was under way (r: -1 is a rebuild with nothing of
 * that input to replay). */
#define NO_TARGET INT64_MIN

/* The stage key of partition p: per input the offsets its state has processed (o:<topic>, -1
 * where none) and, while a rebuild is under way, where it replays to (r:<topic>, NO_TARGET where
 * none); whether that state is complete (epoch) and whether the key exists at all. */
static int read_part(hvs_stage_t *st, int32_t p, int64_t *stored, int64_t *target, bool *epoch,
                     bool *exists, hvs_err_t *err) {
    char key[160];
    part_key(st, p, key, sizeof key);
    hvs_redis_batch_reset(st->scratch);
    const char *argv[] = {"HGETALL", key};
    if (hvs_redis_batch_add(st->scratch, 2, argv, NULL))
        return hvs_err_set(err, HVS_ENOMEM, "oom", "%s: reading %s", st->def->name, key);
    int rc = hvs_redis_batch_exec(st->conf.redis, st->scratch, err);
    if (rc)
        return hvs_err_wrap(err, "%s: reading %s: ", st->def->name, key);
    const redisReply *r = hvs_redis_batch_reply(st->scratch, 0);
    if (!r || r->type != REDIS_REPLY_ARRAY)
        return hvs_err_set(err, HVS_EREDIS, "reply_error", "%s: %s is not a hash", st->def->name,
                           key);
    for (size_t t = 0; t < st->conf.ninputs; t++)
        stored[t] = -1, target[t] = NO_TARGET;
    *epoch = false;
    *exists = r->elements > 0;
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const char *f = r->element[i]->str, *v = r->element[i + 1]->str;
        if (!f || !v)
            continue;
        if (strcmp(f, "epoch") == 0)
            *epoch = true;
        else if (strncmp(f, "o:", 2) == 0 || strncmp(f, "r:", 2) == 0) {
            int t = topic_index(st, f + 2);
            if (t >= 0)
                (f[0] == 'o' ? stored : target)[t] = strtoll(v, NULL, 10);
        }
    }
    return 0;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Whether key (len bytes) is "hvs:{<id>}:<ns>:<kind>..." with <kind> not among the stage's kept
 * kinds; its building id copied into out. */
static bool purgeable(const hvs_stage_t *st, const char *key, size_t len, char *out, size_t cap) {
    const char *close = len > 5 && strncmp(key, "hvs:{", 5) == 0 ? memchr(key, '}', len) : NULL;
    size_t nl = strlen(st->conf.state_ns);
    if (!close || (size_t)(close - key - 5) >= cap)
        return false;
    const char *rest = close + 1, *end = key + len; /* ":<ns>:<kind>..." */
    if ((size_t)(end - rest) < nl + 2 || rest[0] != ':' ||
        memcmp(rest + 1, st->conf.state_ns, nl) != 0 || rest[1 + nl] != ':')
        return false;
    const char *kind = rest + 2 + nl, *kend = memchr(kind, ':', (size_t)(end - kind));
    size_t kl = kend ? (size_t)(kend - kind) : (size_t)(end - kind);
    for (const char *const *k = st->conf.state_keep; k && *k; k++)
        if (strlen(*k) == kl && memcmp(*k, kind, kl) == 0)
            return false;
    memcpy(out, key + 5, (size_t)(close - key - 5));
    out[close - key - 5] = '\0';
    return true;
}

static void free_ids(char **ids, size_t n) {
    for (size_t i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
}

/* The members of set `key` appended to *ids (*n of *cap). */
static int add_members(hvs_stage_t *st, const char *key, char ***ids, size_t *n, size_t *cap,
                       hvs_err_t *err) {
    redisReply *m = NULL;
    int rc = hvs_redis_command(st->conf.redis, &m, err, "SMEMBERS %s", key);
    if (rc == 0 && m && m->type == REDIS_REPLY_ERROR)
        rc = hvs_err_set(err, HVS_EREDIS, "reply_error", "SMEMBERS %s: %s", key, m->str);
    for (size_t i = 0; rc == 0 && m && m->type == REDIS_REPLY_ARRAY && i < m->elements; i++) {
        char **g = hvs_vec_grow(*ids, cap, *n + 1, sizeof **ids, 64);
        if (!g || !(g[*n] = strdup(m->element[i]->str ? m->element[i]->str : ""))) {
            if (g)
                *ids = g;
            rc = hvs_err_set(err, HVS_ENOMEM, "oom", "members of %s", key);
            break;
        }
        *ids = g;
        (*n)++;
    }
    if (m)
        freeReplyObject(m);
    return rc;
}

/*
 * Rebuilding partitions start empty in Redis as in memory: delete what the stage's namespace
 * holds of partitions ps[0..np) - every key hvs:{B}:<ns>:<kind>... of the buildings listed in
 * hvs:<ns>:part:<P> (but the kinds in conf.state_keep: served outputs), then the lists. What is
 * there is a killed rebuild's partial state (or what survived a partial loss): not loaded, and
 * written over only key by key, a key the new rebuild never writes again would stay and be
 * loaded at the next ordinary start. One pass of SCAN over the keyspace for all of them, only
 * when a list is not empty (a rebuild after a whole loss finds none). *deleted counts the keys.
 */
static int purge_partitions(hvs_stage_t *st, const int32_t *ps, size_t np, size_t *deleted,
                            hvs_err_t *err) {
    const char *ns = st->conf.state_ns;
    char part[96], match[96];
    snprintf(match, sizeof match, "hvs:{*}:%s:*", ns);
    *deleted = 0;
    char **ids = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    for (size_t i = 0; i < np && rc == 0; i++) {
        snprintf(part, sizeof part, "hvs:%s:part:%d", ns, (int)ps[i]);
        rc = add_members(st, part, &ids, &n, &cap, err);
    }
    if (rc == 0 && n)
        qsort(ids, n, sizeof *ids, cmp_str);
    char cursor[32] = "0";
    while (rc == 0 && n) {
        redisReply *sc = NULL;
        rc = hvs_redis_command(st->conf.redis, &sc, err, "SCAN %s MATCH %s COUNT 1000", cursor,
                               match);
        if (rc == 0 && (!sc || sc->type != REDIS_REPLY_ARRAY || sc->elements != 2))
            rc = hvs_err_set(err, HVS_EREDIS, "reply_error", "SCAN: unexpected reply");
        if (rc) {
            if (sc)
                freeReplyObject(sc);
            break;
        }
        snprintf(cursor, sizeof cursor, "%s", sc->element[0]->str);
        const redisReply *keys = sc->element[1];
        hvs_redis_batch_reset(st->scratch);
        size_t queued = 0;
        for (size_t i = 0; i < keys->elements && rc == 0; i++) {
            const redisReply *k = keys->element[i];
            char id[HVS_ID_MAX + 1], *want = id;
            if (k->type != REDIS_REPLY_STRING || !purgeable(st, k->str, k->len, id, sizeof id) ||
                !bsearch(&want, ids, n, sizeof *ids, cmp_str))
                continue;
            const char *argv[] = {"UNLINK", k->str};
            size_t lens[] = {6, k->len};
            if (hvs_redis_batch_add(st->scratch, 2, argv, lens))
                rc = hvs_err_set(err, HVS_ENOMEM, "oom", "purge batch");
            queued++;
        }
        freeReplyObject(sc);
        if (rc == 0 && queued)
            rc = hvs_redis_batch_exec(st->conf.redis, st->scratch, err);
        *deleted += queued;
        if (strcmp(cursor, "0") == 0)
            break;
    }
    free_ids(ids, n);
    for (size_t i = 0; i < np && rc == 0; i++) { /* the lists last: a purge cut short is redone */
        redisReply *d = NULL;
        snprintf(part, sizeof part, "hvs:%s:part:%d", ns, (int)ps[i]);
        rc = hvs_redis_command(st->conf.redis, &d, err, "DEL %s", part);
        if (d)
            freeReplyObject(d);
    }
    return rc ? hvs_err_wrap(
                    err, "%s: deleting the partial state of rebuilt partitions: ", st->def->name)
              : 0;
}

int hvs_stage_state_assigning(hvs_stage_t *st, rd_kafka_topic_partition_list_t *added,
                              hvs_err_t *err) {
    if (!st->conf.redis)
        return 0;
    int32_t rebuilt[HVS_MAX_PARTITIONS];
    size_t nrebuilt = 0;
    for (int i = 0; i < added->cnt; i++) {
        int32_t p = added->elems[i].partition;
        if (p < 0 || p >= HVS_MAX_PARTITIONS || st->assigned[p])
            continue;
        bool first = true; /* each partition number once: its inputs are decided together */
        for (int k = 0; k < i; k++)
            first &= added->elems[k].partition != p;
        if (!first)
            continue;
        int64_t stored[HVS_STAGE_MAX_INPUTS], target[HVS_STAGE_MAX_INPUTS];
        bool epoch = false, exists = false;
        int rc = read_part(st, p, stored, target, &epoch, &exists, err);
        if (rc)
            return rc;
        stage_part_t *ps = &st->pstate[p];
        part_reset(ps);
        bool committed = false;
        for (int k = 0; k < added->cnt; k++)
            committed |= added->elems[k].partition == p && added->elems[k].offset > 0;
        if (epoch) {
            /* the state says how far it got: start there (it may be ahead of the commit when
             * the process died between the state write and the commit, or behind it after a
             * failover to a replica that had not caught up: then the gap is applied again) */
            ps->epoch = ps->written = true;
            for (int k = 0; k < added->cnt; k++) {
                int t = topic_index(st, added->elems[k].topic);
                if (added->elems[k].partition != p || t < 0)
                    continue;
                if (stored[t] >= 0 && stored[t] > added->elems[k].offset) {
                    if (!st->to_commit)
                        st->to_commit = rd_kafka_topic_partition_list_new(4);
                    rd_kafka_topic_partition_list_add(st->to_commit, added->elems[k].topic, p)
                        ->offset = stored[t];
                }
                if (stored[t] >= 0)
                    added->elems[k].offset = stored[t];
                ps->next[t] = stored[t];
            }
            continue;
        }
        if (!committed && !exists)
            continue; /* a new partition: its epoch goes with its first state write */
        /* lost: committed offsets (or stored ones) without an epoch */
        hvs_metric_inc(st->m_losses);
        hvs_log_error(st->def->name,
                      "partition %d: state missing from Redis although the group has committed "
                      "offsets: rebuilding by replaying the inputs from %lld s ago",
                      (int)p, (long long)(st->conf.rebuild_ms / 1000));
        ps->replay = true;
        rebuilt[nrebuilt++] = p;
        bool killed = false; /* a rebuild of it was under way: its targets are in the key */
        for (size_t t = 0; t < st->conf.ninputs; t++)
            killed |= target[t] != NO_TARGET;
        rd_kafka_topic_partition_list_t *times = rd_kafka_topic_partition_list_new(2);
        for (int k = 0; k < added->cnt; k++) {
            int t = topic_index(st, added->elems[k].topic);
            if (added->elems[k].partition != p || t < 0)
                continue;
            /* A rebuild killed part way left its targets in the stage key: where processing
             * had got before the loss, so what was published. Its own commits and stored
             * offsets say something else: short of a target (replayed so far), or past it on
             * an input read live while another still replayed - what such records made ready
             * only with the rest of the replay was never published, and replayed quietly
             * again it never would be (an input without a target at all: none of it had been
             * read before the loss: r: -1). So the targets alone decide; past them this replay
             * is loud, and what the killed one published goes out again (the same values). An
             * input without r: in a killed rebuild's key was left by a build that wrote r: only
             * for inputs it had read: the old rule for it. */
            int64_t until = added->elems[k].offset > stored[t] ? added->elems[k].offset : stored[t];
            if (killed && target[t] != NO_TARGET)
                until = target[t];
            ps->replay_until[t] = until;
            rd_kafka_topic_partition_list_add(times, added->elems[k].topic, p)->offset =
                st->conf.rebuild_ms > 0 ? hvs_time_now_ms() - st->conf.rebuild_ms : 0;
        }
        /* by message time where the broker supports it (the devbroker does not): else the start */
        rd_kafka_resp_err_t re = RD_KAFKA_RESP_ERR__FAIL;
        if (st->conf.rebuild_ms > 0)
            re = rd_kafka_offsets_for_times(hvs_consumer_handle(st->cons), times, 10000);
        for (int k = 0; k < added->cnt; k++) {
            if (added->elems[k].partition != p)
                continue;
            rd_kafka_topic_partition_t *tp = rd_kafka_topic_partition_list_find(
                times, added->elems[k].topic, p);
            added->elems[k].offset = !re && tp && !tp->err && tp->offset >= 0
                                         ? tp->offset
                                         : RD_KAFKA_OFFSET_BEGINNING;
        }
        rd_kafka_topic_partition_list_destroy(times);
    }
    size_t gone = 0;
    if (st->conf.state_ns && nrebuilt) {
        int rc = purge_partitions(st, rebuilt, nrebuilt, &gone, err);
        if (rc)
            return rc;
        if (gone)
            hvs_log_info(st->def->name,
                         "%zu keys of a partial state deleted before rebuilding %zu partitions",
                         gone, nrebuilt);
    }
    return 0;
}

void hvs_stage_state_revoked(hvs_stage_t *st, int32_t p) {
    if (st->conf.redis && p >= 0 && p < HVS_MAX_PARTITIONS)
        part_reset(&st->pstate[p]);
}

bool hvs_stage_state_note(hvs_stage_t *st, const rd_kafka_message_t *m) {
    if (!st->conf.redis || m->partition < 0 || m->partition >= HVS_MAX_PARTITIONS)
        return false;
    int t = topic_index(st, rd_kafka_topic_name(m->rkt));
    if (t < 0)
        return false;
    stage_part_t *ps = &st->pstate[m->partition];
    if (!ps->touched) {
        ps->touched = true;
        st->touched[st->ntouched++] = m->partition;
    }
    if (m->offset + 1 > ps->next[t])
        ps->next[t] = m->offset + 1;
    return ps->replay && m->offset < ps->replay_until[t];
}

void hvs_stage_state_unnote(hvs_stage_t *st, const rd_kafka_message_t *m) {
    if (!st->conf.redis || m->partition < 0 || m->partition >= HVS_MAX_PARTITIONS)
        return;
    int t = topic_index(st, rd_kafka_topic_name(m->rkt));
    if (t >= 0 && st->pstate[m->partition].next[t] > m->offset)
        st->pstate[m->partition].next[t] = m->offset;
}

/* Every input of a rebuilding partition has caught up with where processing had got. */
static bool replay_done(const hvs_stage_t *st, const stage_part_t *ps) {
    for (size_t t = 0; t < st->conf.ninputs; t++)
        if (ps->replay_until[t] > 0 && ps->next[t] < ps->replay_until[t])
            return false;
    return true;
}

/* Loss check: every assigned partition whose key was written must still have it (and its epoch
 * where it had one). One pipelined round trip. */
static int check_lost(hvs_stage_t *st, hvs_err_t *err) {
    hvs_redis_batch_t *b = st->scratch;
    hvs_redis_batch_reset(b);
    int32_t which[HVS_MAX_PARTITIONS];
    size_t n = 0;
    for (size_t i = 0; i < st->nparts; i++) {
        int32_t p = st->parts[i];
        const stage_part_t *ps = &st->pstate[p];
        if (!ps->written)
            continue;
        char key[160];
        part_key(st, p, key, sizeof key);
        const char *ex[] = {"HEXISTS", key, "epoch"}, *any[] = {"EXISTS", key};
        if (ps->epoch ? hvs_redis_batch_add(b, 3, ex, NULL) : hvs_redis_batch_add(b, 2, any, NULL))
            return hvs_err_set(err, HVS_ENOMEM, "oom", "%s: loss check", st->def->name);
        which[n++] = p;
    }
    if (n == 0)
        return 0;
    int rc = hvs_redis_batch_exec(st->conf.redis, b, err);
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++) {
        const redisReply *r = hvs_redis_batch_reply(b, i);
        if (r && r->type == REDIS_REPLY_INTEGER && r->integer == 1)
            continue;
        hvs_metric_inc(st->m_losses);
        return hvs_err_set(err, HVS_EREDIS, "state_lost",
                           "%s: partition %d: its state vanished from Redis while running "
                           "(restarted empty, flushed or replaced): stopping before writing into "
                           "it; the next start rebuilds it from the inputs",
                           st->def->name, (int)which[i]);
    }
    return 0;
}

int hvs_stage_state_commit(hvs_stage_t *st, hvs_err_t *err) {
    if (!st->conf.redis)
        return 0;
    int rc = check_lost(st, err);
    if (rc)
        return rc;
    hvs_redis_batch_t *b = st->rb;
    bool epoch_written[HVS_MAX_PARTITIONS];
    for (size_t i = 0; i < st->nparts; i++) {
        int32_t p = st->parts[i];
        stage_part_t *ps = &st->pstate[p];
        char key[160];
        part_key(st, p, key, sizeof key);
        if (ps->touched)
            for (size_t t = 0; t < st->conf.ninputs; t++) {
                char f[HVS_TOPIC_NAME_MAX + 8], v[32];
                if (ps->next[t] >= 0) {
                    snprintf(f, sizeof f, "o:%s", st->conf.inputs[t]);
                    snprintf(v, sizeof v, "%" PRId64, ps->next[t]);
                    const char *argv[] = {"HSET", key, f, v};
                    if (hvs_redis_batch_add(b, 4, argv, NULL))
                        return hvs_err_set(err, HVS_ENOMEM, "oom", "%s: offsets", st->def->name);
                }
                if (!ps->replay)
                    continue;
                /* the rebuild's targets beside its progress, for a rebuild that is killed: every
                 * input's, -1 for one with nothing to replay, read yet or not */
                snprintf(f, sizeof f, "r:%s", st->conf.inputs[t]);
                snprintf(v, sizeof v, "%" PRId64,
                         ps->replay_until[t] < 0 ? -1 : ps->replay_until[t]);
                const char *rv[] = {"HSET", key, f, v};
                if (hvs_redis_batch_add(b, 4, rv, NULL))
                    return hvs_err_set(err, HVS_ENOMEM, "oom", "%s: rebuild target", st->def->name);
            }
        epoch_written[i] = false;
        if (!ps->epoch && (!ps->replay || replay_done(st, ps))) {
            char v[32];
            snprintf(v, sizeof v, "%lld", (long long)st->now);
            const char *argv[] = {"HSET", key, "epoch", v};
            if (hvs_redis_batch_add(b, 4, argv, NULL))
                return hvs_err_set(err, HVS_ENOMEM, "oom", "%s: epoch", st->def->name);
            for (size_t t = 0; ps->replay && t < st->conf.ninputs; t++) {
                char f[HVS_TOPIC_NAME_MAX + 8];
                snprintf(f, sizeof f, "r:%s", st->conf.inputs[t]);
                const char *dv[] = {"HDEL", key, f}; /* rebuilt: no target any more */
                if (hvs_redis_batch_add(b, 3, dv, NULL))
                    return hvs_err_set(err, HVS_ENOMEM, "oom", "%s: rebuild target", st->def->name);
            }
            epoch_written[i] = true;
        }
    }
    if (hvs_redis_batch_size(b)) {
        rc = hvs_redis_batch_exec_atomic(st->conf.redis, b, err);
        if (rc == 0)
            rc = hvs_redis_batch_check(b, err); /* a refused write names its command and key */
        if (rc)
            return rc;
    }
    for (size_t i = 0; i < st->nparts; i++) {
        stage_part_t *ps = &st->pstate[st->parts[i]];
        if (ps->touched || epoch_written[i])
            ps->written = true;
        if (epoch_written[i]) {
            ps->epoch = true;
            if (ps->replay)
                hvs_log_warn(st->def->name,
                             "partition %d rebuilt: its inputs are replayed up to "
                             "where processing had got",
                             (int)st->parts[i]);
            ps->replay = false;
        }
    }
    for (size_t i = 0; i < st->ntouched; i++)
        st->pstate[st->touched[i]].touched = false;
    st->ntouched = 0;
    return 0;
}
