#include "hvs_fault.h"

#include <ctype.h>
#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hvs/redis.h"

/* ---- world ------------------------------------------------------------------------------- */

void hvs_fault_world_start(hvs_fault_world_t *w, const hvs_fault_stage_t *stage,
                           const char *broker_args) {
    memset(w, 0, sizeof *w);
    w->stage = stage;
    snprintf(w->dir, sizeof w->dir, "/tmp/hvs-fault-XXXXXX");
    HVS_REQUIRE(mkdtemp(w->dir), "mkdtemp: %s", strerror(errno));
    HVS_REQUIRE(hvs_test_devbroker_start(&w->broker, broker_args) == 0, "hvs-devbroker");
}

void hvs_fault_world_stop(hvs_fault_world_t *w, bool keep_logs) {
    hvs_test_proc_stop(&w->broker);
    if (keep_logs) {
        printf("fault logs kept in %s\n", w->dir);
    } else if (w->dir[0]) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", w->dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", w->dir);
    }
}

void hvs_fault_topic_create(hvs_fault_world_t *w, const char *topic, int partitions) {
    char line[256], reply[256];
    snprintf(line, sizeof line, "topic create %s %d", topic, partitions);
    HVS_REQUIRE(hvs_test_devbroker_control(&w->broker, line, reply, sizeof reply) == 0, "%s: %s",
                line, reply);
}

void hvs_fault_random_points(hvs_fault_point_t *points, size_t n, uint64_t seed, double lo,
                             double hi) {
    uint64_t x = seed ? seed : 0x9e3779b97f4a7c15ULL;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        points[i].at = lo + (hi - lo) * (double)(x >> 11) / (double)(1ULL << 53);
    }
    for (size_t i = 1; i < n; i++) /* insertion sort: a handful */
        for (size_t j = i; j > 0 && points[j].at < points[j - 1].at; j--) {
            hvs_fault_point_t t = points[j];
            points[j] = points[j - 1];
            points[j - 1] = t;
        }
}

/* HVS_TOPIC_<NAME> of a logical topic name: upper case, '.' -> '_'. */
static void topic_env_name(const char *logical, char *out, size_t len) {
    size_t n = (size_t)snprintf(out, len, "HVS_TOPIC_");
    for (const char *c = logical; *c && n + 1 < len; c++)
        out[n++] = *c == '.' ? '_' : (char)toupper((unsigned char)*c);
    out[n] = '\0';
}

/* Append " name=value" to buf. */
static void append(char *buf, size_t len, const char *name, const char *value) {
    size_t n = strlen(buf);
    if (n < len)
        snprintf(buf + n, len - n, " %s=%s", name, value);
}

/* ---- members ----------------------------------------------------------------------------- */

void hvs_fault_member_start(hvs_fault_run_t *run, int i) {
    HVS_REQUIRE(i >= 0 && i < HVS_FAULT_MAX_MEMBERS, "member %d", i);
    hvs_fault_member_t *m = &run->members[i];
    const hvs_fault_stage_t *s = run->world->stage;
    m->http_port = hvs_test_free_port();
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "env %s HVS_REDIS_URL=%s HVS_KAFKA_GROUP=%s %s HVS_HTTP_PORT=%d %s %s %s %s", run->env,
             run->redis.addr, run->name, s->env ? s->env : "", m->http_port,
             run->opts.env ? run->opts.env : "", s->exe, s->args ? s->args : "",
             run->opts.args ? run->opts.args : "");
    FILE *f = fopen(run->log, "a");
    if (f) {
        fprintf(f, "==== harness: member %d starts (restarts so far %d)\n", i, run->restarts);
        fclose(f);
    }
    HVS_REQUIRE(hvs_test_spawn(&m->proc, cmd, run->log) == 0, "spawn %s", cmd);
    m->wanted = true;
    m->exited_at = 0;
}

void hvs_fault_member_stop(hvs_fault_run_t *run, int i) {
    hvs_fault_member_t *m = &run->members[i];
    m->wanted = false;
    m->exited_at = 0;
    if (m->proc.pid > 0) {
        kill(m->proc.pid, SIGCONT); /* a stopped member must be able to hear SIGTERM */
        hvs_test_proc_stop(&m->proc);
    }
}

/* Restart members that exited on their own (after the delay), as Kubernetes would. */
static void supervise(hvs_fault_run_t *run) {
    int64_t now = hvs_test_now_ms();
    int delay = run->opts.restart_delay_ms ? run->opts.restart_delay_ms : 2000;
    for (int i = 0; i < HVS_FAULT_MAX_MEMBERS; i++) {
        hvs_fault_member_t *m = &run->members[i];
        if (!m->wanted)
            continue;
        int status;
        if (m->exited_at == 0 && m->proc.pid > 0 && hvs_test_proc_exited(&m->proc, &status)) {
            m->last_status = status;
            m->exited_at = now;
            run->restarts++;
            run->exits_nonzero += status != 0;
            bool crash = status > 128 && status != 128 + SIGKILL;
            run->crashes += crash;
            FILE *f = fopen(run->log, "a");
            if (f) {
                fprintf(f, "==== harness: member %d exited with %d%s\n", i, status,
                        crash ? " (crashed: a signal the harness did not send)" : "");
                fclose(f);
            }
            if (crash)
                fprintf(stderr, "  %s: member %d crashed (exit status %d)\n", run->name, i, status);
        }
        if (m->exited_at && now - m->exited_at >= delay)
            hvs_fault_member_start(run, i);
    }
}

void hvs_fault_wait(hvs_fault_run_t *run, int ms) {
    int64_t end = hvs_test_now_ms() + ms;
    while (hvs_test_now_ms() < end) {
        supervise(run);
        usleep(20000);
    }
}

/* ---- progress ---------------------------------------------------------------------------- */

static rd_kafka_t *kafka_handle(const char *brokers, const char *group, rd_kafka_type_t type) {
    char e[256];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    HVS_REQUIRE(rd_kafka_conf_set(c, "bootstrap.servers", brokers, e, sizeof e) == 0, "%s", e);
    if (group)
        HVS_REQUIRE(rd_kafka_conf_set(c, "group.id", group, e, sizeof e) == 0, "%s", e);
    rd_kafka_conf_set(c, "log_level", "0", e, sizeof e);
    rd_kafka_t *rk = rd_kafka_new(type, c, e, sizeof e);
    HVS_REQUIRE(rk, "rd_kafka_new: %s", e);
    return rk;
}

static int partition_count(rd_kafka_t *rk, const char *topic) {
    rd_kafka_topic_t *t = rd_kafka_topic_new(rk, topic, NULL);
    const rd_kafka_metadata_t *md = NULL;
    int n = -1;
    if (rd_kafka_metadata(rk, 0, t, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (md->topic_cnt == 1 && !md->topics[0].err)
            n = md->topics[0].partition_cnt;
        rd_kafka_metadata_destroy(md);
    }
    rd_kafka_topic_destroy(t);
    return n;
}

/* Messages in `topic` (sum of high watermarks), -1 when the broker does not answer. */
static int64_t topic_size(rd_kafka_t *rk, const char *topic, int timeout_ms) {
    int n = partition_count(rk, topic);
    if (n < 0)
        return -1;
    int64_t sum = 0;
    for (int p = 0; p < n; p++) {
        int64_t lo, hi;
        if (rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi, timeout_ms))
            return -1;
        sum += hi;
    }
    return sum;
}

/* Committed offsets of the run's group on all its inputs (nparts[i] partitions each), summed;
 * -1 when unknown. */
static int64_t committed(rd_kafka_t *consumer, const hvs_fault_run_t *run, const int *nparts) {
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(HVS_FAULT_MAX_TOPICS);
    for (int i = 0; i < run->ninputs; i++)
        for (int p = 0; p < nparts[i]; p++)
            rd_kafka_topic_partition_list_add(l, run->inputs[i], p);
    int64_t sum = -1;
    if (rd_kafka_committed(consumer, l, 2000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        sum = 0;
        for (int i = 0; i < l->cnt; i++)
            sum += l->elems[i].offset > 0 ? l->elems[i].offset : 0;
    }
    rd_kafka_topic_partition_list_destroy(l);
    return sum;
}

/* Is every live member ready with consumer lag 0? */
static bool members_caught_up(hvs_fault_run_t *run) {
    char url[128], name[128];
    snprintf(name, sizeof name, "hvs_%s_consumer_lag_messages", run->world->stage->name);
    int live = 0;
    for (int i = 0; i < HVS_FAULT_MAX_MEMBERS; i++) {
        hvs_fault_member_t *m = &run->members[i];
        if (!m->wanted)
            continue;
        if (m->exited_at || m->proc.pid <= 0)
            return false;
        live++;
        snprintf(url, sizeof url, "http://127.0.0.1:%d/readyz", m->http_port);
        if (hvs_test_http("GET", url, NULL, 0, NULL, NULL, 0) != 200)
            return false;
        char *body = NULL;
        snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", m->http_port);
        long st = hvs_test_http("GET", url, NULL, 0, &body, NULL, 0);
        double lag = st == 200 ? hvs_test_metric(body, name) : -1;
        free(body);
        if (lag != 0)
            return false;
    }
    return live > 0;
}

/* ---- collection -------------------------------------------------------------------------- */

static json_t *tail(const hvs_fault_run_t *run, const char *topic) {
    json_t *a = hvs_test_tail_json(run->env, topic, NULL);
    HVS_REQUIRE(a, "reading %s back", topic);
    return a;
}

static void collect_outputs(hvs_fault_run_t *run) {
    const hvs_fault_stage_t *s = run->world->stage;
    json_t *rank_of = json_object();
    run->latest = json_object();
    run->history = json_object();
    for (int t = 0; t < HVS_FAULT_MAX_TOPICS && s->outputs[t]; t++) {
        char topic[128];
        snprintf(topic, sizeof topic, "%s.%s", run->name, s->outputs[t]);
        json_t *msgs = tail(run, topic);
        size_t i;
        json_t *m;
        json_array_foreach(msgs, i, m) {
            json_t *v = json_object_get(m, "value");
            char key[600];
            if (!json_is_object(v) || !s->key(v, key, sizeof key))
                continue;
            run->nout++;
            long long r = s->rank ? s->rank(v) : 0;
            json_t *h = json_object_get(run->history, key);
            if (!h) {
                h = json_array();
                json_object_set_new(run->history, key, h);
            }
            json_array_append_new(h, json_pack("{s:I,s:o}", "rank", (json_int_t)r, "value",
                                               s->comparable ? s->comparable(v) : json_copy(v)));
            json_t *old = json_object_get(rank_of, key);
            if (old && json_integer_value(old) > r)
                continue;
            json_object_set_new(rank_of, key, json_integer(r));
            json_object_set_new(run->latest, key, s->comparable ? s->comparable(v) : json_copy(v));
        }
        json_decref(msgs);
    }
    json_decref(rank_of);
}

static void collect_dead_letters(hvs_fault_run_t *run) {
    const hvs_fault_stage_t *s = run->world->stage;
    run->dead = json_object();
    for (int t = 0; t < HVS_FAULT_MAX_TOPICS && s->dead_letters[t]; t++) {
        char topic[128];
        snprintf(topic, sizeof topic, "%s.%s", run->name, s->dead_letters[t]);
        json_t *msgs = tail(run, topic);
        size_t i;
        json_t *m;
        json_array_foreach(msgs, i, m) {
            json_t *v = json_object_get(m, "value");
            if (!json_is_object(v))
                continue;
            run->ndead++;
            const char *ot = json_string_value(json_object_get(v, "original_topic"));
            const char *reason = json_string_value(json_object_get(v, "error_code"));
            for (int k = 0; ot && k < run->ninputs; k++)
                if (strcmp(ot, run->inputs[k]) == 0) {
                    ot = s->inputs[k]; /* the logical name, whatever topic this run read */
                    break;
                }
            char key[600];
            snprintf(key, sizeof key, "%s/%lld/%lld/%s", ot ? ot : "-",
                     (long long)json_integer_value(json_object_get(v, "original_partition")),
                     (long long)json_integer_value(json_object_get(v, "original_offset")),
                     reason ? reason : "-");
            json_t *c = json_deep_copy(v);
            json_object_del(c, "failed_at");
            json_object_del(c, "original_topic"); /* in the key, normalised */
            json_object_set_new(run->dead, key, c);
        }
        json_decref(msgs);
    }
}

/* ---- a run ------------------------------------------------------------------------------- */

hvs_fault_run_t *hvs_fault_run(hvs_fault_world_t *w, const char *name,
                               const hvs_fault_opts_t *opts) {
    const hvs_fault_stage_t *s = w->stage;
    hvs_fault_run_t *run = calloc(1, sizeof *run);
    HVS_REQUIRE(run, "out of memory");
    run->world = w;
    if (opts)
        run->opts = *opts;
    snprintf(run->name, sizeof run->name, "%s", name);
    for (int i = 0; i < HVS_FAULT_MAX_TOPICS && s->inputs[i]; i++, run->ninputs++) {
        if (run->opts.inputs[i] || !s->fill) {
            snprintf(run->inputs[i], sizeof run->inputs[i], "%s",
                     run->opts.inputs[i] ? run->opts.inputs[i] : s->inputs[i]);
            continue;
        }
        snprintf(run->inputs[i], sizeof run->inputs[i], "%s.%s", name, s->inputs[i]);
        hvs_fault_topic_create(w, run->inputs[i], s->input_partitions ? s->input_partitions : 12);
    }
    HVS_REQUIRE(run->ninputs > 0, "stage %s has no input", s->name);
    snprintf(run->log, sizeof run->log, "%s/%s.log", w->dir, name);
    HVS_REQUIRE(hvs_test_redis_start(&run->redis, 0) == 0, "redis-server for %s", name);
    int parts = s->output_partitions ? s->output_partitions : 12;
    char ename[128], topic[128];
    snprintf(run->env, sizeof run->env, "HVS_KAFKA_BROKERS=%s", w->broker.addr);
    for (int i = 0; i < run->ninputs; i++)
        if (strcmp(run->inputs[i], s->inputs[i]) != 0) {
            topic_env_name(s->inputs[i], ename, sizeof ename);
            append(run->env, sizeof run->env, ename, run->inputs[i]);
        }
    for (int t = 0; t < HVS_FAULT_MAX_TOPICS && s->outputs[t]; t++) {
        snprintf(topic, sizeof topic, "%s.%s", name, s->outputs[t]);
        hvs_fault_topic_create(w, topic, parts);
        topic_env_name(s->outputs[t], ename, sizeof ename);
        append(run->env, sizeof run->env, ename, topic);
    }
    for (int t = 0; t < HVS_FAULT_MAX_TOPICS && s->dead_letters[t]; t++) {
        snprintf(topic, sizeof topic, "%s.%s", name, s->dead_letters[t]);
        hvs_fault_topic_create(w, topic, 3);
        topic_env_name(s->dead_letters[t], ename, sizeof ename);
        append(run->env, sizeof run->env, ename, topic);
    }

    rd_kafka_t *meta = kafka_handle(w->broker.addr, NULL, RD_KAFKA_PRODUCER);
    rd_kafka_t *grp = kafka_handle(w->broker.addr, name, RD_KAFKA_CONSUMER);
    int nin[HVS_FAULT_MAX_TOPICS];
    int64_t later = 0;
    if (s->fill) {
        later = s->fill(run, 0);
        run->phase = 1;
    }
    for (int i = 0; i < run->ninputs; i++) {
        nin[i] = partition_count(meta, run->inputs[i]);
        HVS_REQUIRE(nin[i] > 0, "input topic %s", run->inputs[i]);
        int64_t n = topic_size(meta, run->inputs[i], 5000);
        HVS_REQUIRE(n > 0 || s->fill, "input topic %s is empty", run->inputs[i]);
        run->total += n;
    }
    HVS_REQUIRE(run->total > 0, "the inputs of %s are empty", name);
    run->written = run->total;
    run->total += later;

    int64_t start = hvs_test_now_ms();
    int64_t deadline = start + (run->opts.timeout_ms ? run->opts.timeout_ms : 180000);
    int quiet = run->opts.quiet_ms ? run->opts.quiet_ms : 2000;
    hvs_fault_member_start(run, 0);
    int64_t out_size = -1, quiet_since = 0, last_check = 0;
    while (hvs_test_now_ms() < deadline) {
        supervise(run);
        int64_t now = hvs_test_now_ms();
        if (now - last_check < 50) {
            usleep(10000);
            continue;
        }
        last_check = now;
        int64_t c = committed(grp, run, nin);
        if (c >= 0)
            run->progress = (double)c / (double)run->total;
        if (run->fired < run->opts.npoints && run->progress >= run->opts.points[run->fired].at) {
            hvs_fault_point_t *pt = &run->opts.points[run->fired++];
            printf("  %s: %s at %.0f%% (%.1f s)\n", name, pt->name ? pt->name : "fault",
                   100 * run->progress, (double)(now - start) / 1000);
            fflush(stdout);
            pt->fn(run, pt->arg);
            continue;
        }
        /* a next phase is due once the ones before are consumed as the run's end would be */
        bool next = s->fill && run->phase < (s->phases ? s->phases : 2);
        int64_t want = next ? run->written : run->total;
        if (c < want || (!next && run->fired < run->opts.npoints) || !members_caught_up(run) ||
            (s->settled && !s->settled(run))) {
            out_size = -1;
            continue;
        }
        /* caught up: wait until the outputs and dead letters stop growing */
        int64_t size = 0;
        for (int t = 0; t < HVS_FAULT_MAX_TOPICS && s->outputs[t]; t++) {
            snprintf(topic, sizeof topic, "%s.%s", name, s->outputs[t]);
            size += topic_size(meta, topic, 2000);
        }
        for (int t = 0; t < HVS_FAULT_MAX_TOPICS && s->dead_letters[t]; t++) {
            snprintf(topic, sizeof topic, "%s.%s", name, s->dead_letters[t]);
            size += topic_size(meta, topic, 2000);
        }
        if (size != out_size) {
            out_size = size;
            quiet_since = now;
        } else if (now - quiet_since >= quiet && next) {
            printf("  %s: phase %d at %.0f%% (%.1f s)\n", name, run->phase + 1, 100 * run->progress,
                   (double)(now - start) / 1000);
            fflush(stdout);
            s->fill(run, run->phase++);
            out_size = -1;
            run->written = 0;
            for (int i = 0; i < run->ninputs; i++)
                run->written += topic_size(meta, run->inputs[i], 5000);
            bool last = run->phase == (s->phases ? s->phases : 2);
            HVS_REQUIRE(!last || run->written == run->total,
                        "%s: %lld input messages after the last phase, %lld announced", name,
                        (long long)run->written, (long long)run->total);
        } else if (now - quiet_since >= quiet) {
            run->finished = true;
            break;
        }
        usleep(200000);
    }
    run->ms = hvs_test_now_ms() - start;
    rd_kafka_destroy(grp);
    rd_kafka_destroy(meta);
    for (int i = 0; i < HVS_FAULT_MAX_MEMBERS; i++)
        hvs_fault_member_stop(run, i);
    if (!run->finished)
        fprintf(stderr, "%s: not caught up after %.0f s (progress %.0f%%, %zu of %zu faults)\n",
                name, (double)run->ms / 1000, 100 * run->progress, run->fired, run->opts.npoints);
    collect_outputs(run);
    collect_dead_letters(run);
    hvs_test_proc_stop(&run->redis);
    printf("  %s: %.1f s, %zu outputs -> %zu keys, %zu dead letters -> %zu, %d restart(s)\n", name,
           (double)run->ms / 1000, run->nout, json_object_size(run->latest), run->ndead,
           json_object_size(run->dead), run->restarts);
    fflush(stdout);
    return run;
}

void hvs_fault_run_free(hvs_fault_run_t *run) {
    if (!run)
        return;
    for (int i = 0; i < HVS_FAULT_MAX_MEMBERS; i++)
        hvs_fault_member_stop(run, i);
    hvs_test_proc_stop(&run->redis);
    json_decref(run->latest);
    json_decref(run->history);
    json_decref(run->dead);
    free(run);
}

/* ---- comparing --------------------------------------------------------------------------- */

static void print_value(const char *label, const json_t *v) {
    char *s = v ? json_dumps(v, JSON_SORT_KEYS | JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    fprintf(stderr, "      %s %.1500s\n", label, s ? s : "(none)");
    free(s);
}

/* Note one differing member under `label` (counts: label -> how many keys), and print it. */
static void note_member(json_t *counts, bool print, const char *label, const json_t *x,
                        const json_t *y) {
    json_object_set_new(counts, label,
                        json_integer(json_integer_value(json_object_get(counts, label)) + 1));
    if (!print)
        return;
    char *xs = x ? json_dumps(x, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
    char *ys = y ? json_dumps(y, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
    fprintf(stderr, "        %s %.300s -> %.300s\n", label, xs ? xs : "(none)", ys ? ys : "(none)");
    free(xs);
    free(ys);
}

/* Two objects that differ: only the members that differ ("name: reference -> this run"), arrays
 * of one length element by element, labelled by a parallel "names" array where there is one
 * (FeatureVector: values[i] is names[i]). */
static void diff_members(const json_t *ref, const json_t *got, json_t *counts, bool print) {
    const char *k;
    json_t *a;
    json_t *names = json_object_get(ref, "names");
    char label[200];
    json_object_foreach((json_t *)ref, k, a) {
        json_t *b = json_object_get(got, k);
        if (b && json_equal(a, b))
            continue;
        if (!json_is_array(a) || !json_is_array(b) || json_array_size(a) != json_array_size(b)) {
            snprintf(label, sizeof label, "%s:", k);
            note_member(counts, print, label, a, b);
            continue;
        }
        for (size_t i = 0; i < json_array_size(a); i++) {
            json_t *x = json_array_get(a, i), *y = json_array_get(b, i);
            if (json_equal(x, y))
                continue;
            const char *n = json_array_size(names) == json_array_size(a)
                                ? json_string_value(json_array_get(names, i))
                                : NULL;
            snprintf(label, sizeof label, "%s[%zu]%s%s:", k, i, n ? " " : "", n ? n : "");
            note_member(counts, print, label, x, y);
        }
    }
    json_object_foreach((json_t *)got, k, a) {
        if (!json_object_get(ref, k)) {
            snprintf(label, sizeof label, "%s:", k);
            note_member(counts, print, label, NULL, a);
        }
    }
}

size_t hvs_fault_compare(const char *what, const json_t *ref, const json_t *got, int print_first) {
    size_t diffs = 0, differ = 0, missing = 0;
    const char *k;
    json_t *v;
    json_t *counts = json_object(); /* member label -> keys where it differs */
    json_object_foreach((json_t *)ref, k, v) {
        json_t *g = json_object_get(got, k);
        if (g && json_equal(v, g))
            continue;
        bool print = (int)diffs++ < print_first;
        differ += g != NULL;
        missing += g == NULL;
        if (print)
            fprintf(stderr, "    %s %s %s\n", what, g ? "differs" : "missing", k);
        if (json_is_object(v) && json_is_object(g)) {
            diff_members(v, g, counts, print);
        } else if (print) {
            print_value("reference:", v);
            print_value("this run: ", g);
        }
    }
    json_object_foreach((json_t *)got, k, v) {
        if (json_object_get(ref, k))
            continue;
        if ((int)diffs++ < print_first) {
            fprintf(stderr, "    %s extra %s\n", what, k);
            print_value("this run: ", v);
        }
    }
    if (diffs) { /* what differs, over every key; the first keys missing and extra */
        fprintf(stderr, "    %s: %zu differ, %zu missing, %zu extra; members that differ:", what,
                differ, missing, diffs - differ - missing);
        json_object_foreach(counts, k, v) {
            fprintf(stderr, " %s%lld", k, (long long)json_integer_value(v));
        }
        for (int which = 0; which < 2; which++) {
            const json_t *in = which ? got : ref, *other = which ? ref : got;
            size_t n = 0;
            json_object_foreach((json_t *)in, k, v) {
                if (json_object_get(other, k) || n++ >= 12)
                    continue;
                fprintf(stderr, "%s %s", n == 1 ? (which ? "\n    extra:" : "\n    missing:") : "",
                        k);
            }
            if (n > 12)
                fprintf(stderr, " ... (%zu)", n);
        }
        fputc('\n', stderr);
    }
    json_decref(counts);
    return diffs;
}

void hvs_fault_print_history(const hvs_fault_run_t *ref, const hvs_fault_run_t *run,
                             int print_first) {
    const char *k;
    json_t *v;
    int printed = 0;
    json_object_foreach(ref->latest, k, v) {
        json_t *g = json_object_get(run->latest, k);
        if (g && json_equal(v, g))
            continue;
        if (printed++ >= print_first)
            break;
        fprintf(stderr, "    history of %s (rank: = the reference's latest value, * another):\n",
                k);
        for (int which = 0; which < 2; which++) {
            json_t *h = json_object_get(which ? run->history : ref->history, k), *e;
            size_t i;
            fprintf(stderr, "      %s", which ? "this run: " : "reference:");
            json_array_foreach(h, i, e) {
                fprintf(stderr, " %lld%s",
                        (long long)json_integer_value(json_object_get(e, "rank")),
                        json_equal(json_object_get(e, "value"), v) ? "=" : "*");
            }
            fputc('\n', stderr);
        }
    }
}

void hvs_fault_check_same(const hvs_fault_run_t *ref, const hvs_fault_run_t *run) {
    HVS_CHECK(run->finished, "%s caught up (%.0f%%)", run->name, 100 * run->progress);
    HVS_CHECK(run->fired == run->opts.npoints, "%s: %zu of %zu faults fired", run->name, run->fired,
              run->opts.npoints);
    HVS_CHECK(run->crashes == 0, "%s: %d member crash(es) (abort, SIGSEGV...: see %s)", run->name,
              run->crashes, run->log);
    size_t dl = hvs_fault_compare("latest", ref->latest, run->latest, 5);
    HVS_CHECK(dl == 0, "%s: %zu of %zu keys differ from the reference", run->name, dl,
              json_object_size(ref->latest));
    if (dl)
        hvs_fault_print_history(ref, run, 5);
    size_t dd = hvs_fault_compare("dead letter", ref->dead, run->dead, 5);
    HVS_CHECK(dd == 0, "%s: %zu of %zu dead letters differ from the reference", run->name, dd,
              json_object_size(ref->dead));
}

/* ---- generated records --------------------------------------------------------------------- */

hvs_fault_rec_t *hvs_fault_recs_add(hvs_fault_recs_t *rs, int64_t at, const char *key,
                                    const void *buf, size_t len) {
    if (rs->n == rs->cap) {
        rs->cap = rs->cap ? 2 * rs->cap : 4096;
        rs->r = realloc(rs->r, rs->cap * sizeof *rs->r);
        HVS_REQUIRE(rs->r, "out of memory");
    }
    hvs_fault_rec_t *r = &rs->r[rs->n];
    r->at = at;
    r->seq = (int)rs->n++;
    snprintf(r->key, sizeof r->key, "%s", key);
    r->buf = malloc(len ? len : 1);
    HVS_REQUIRE(r->buf, "out of memory");
    memcpy(r->buf, buf, len);
    r->len = len;
    return r;
}

static int rec_cmp(const void *a, const void *b) {
    const hvs_fault_rec_t *x = a, *y = b;
    if (x->at != y->at)
        return x->at < y->at ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

void hvs_fault_recs_sort(hvs_fault_recs_t *rs) {
    if (rs->n)
        qsort(rs->r, rs->n, sizeof *rs->r, rec_cmp);
}

void hvs_fault_recs_free(hvs_fault_recs_t *rs) {
    for (size_t k = 0; k < rs->n; k++)
        free(rs->r[k].buf);
    free(rs->r);
    memset(rs, 0, sizeof *rs);
}

/* The input of a dead letter's key "<logical input>/<partition>/<offset>/<reason>", -1 none. */
static int dead_input(const hvs_fault_stage_t *st, const char *key) {
    for (int t = 0; t < HVS_FAULT_MAX_TOPICS && st->inputs[t]; t++) {
        size_t l = strlen(st->inputs[t]);
        if (strncmp(key, st->inputs[t], l) == 0 && key[l] == '/')
            return t;
    }
    return -1;
}

void hvs_fault_check_poisons(const hvs_fault_run_t *ref, const hvs_fault_run_t *run,
                             hvs_fault_poison_t *p, size_t n) {
    const hvs_fault_stage_t *st = run->world->stage;
    HVS_CHECK(run->finished, "%s: caught up", run->name);
    HVS_CHECK(run->restarts == 0, "%s: %d restarts", run->name, run->restarts);
    size_t dl = hvs_fault_compare("latest", ref->latest, run->latest, 5);
    HVS_CHECK(dl == 0, "%s: %zu of %zu outputs differ from the reference", run->name, dl,
              json_object_size(ref->latest));
    if (dl)
        hvs_fault_print_history(ref, run, 5);
    json_t *rest = json_object();
    const char *k;
    json_t *v;
    json_object_foreach(run->dead, k, v) {
        int input = dead_input(st, k);
        HVS_CHECK(input >= 0, "%s: a dead letter of another topic: %s", run->name, k);
        int32_t part = (int32_t)json_integer_value(json_object_get(v, "original_partition"));
        int64_t off = (int64_t)json_integer_value(json_object_get(v, "original_offset"));
        const char *reason = json_string_value(json_object_get(v, "error_code"));
        size_t i = 0;
        while (i < n && !(p[i].input == input && p[i].partition == part && p[i].offset == off))
            i++;
        if (i < n) {
            HVS_CHECK(hvs_test_streq(reason, p[i].reason),
                      "poison %s \"%s\" dead-lettered as %s, expected %s", st->inputs[input],
                      hvs_test_str(p[i].what), hvs_test_str(reason), p[i].reason);
            p[i].what = NULL; /* found */
            continue;
        }
        int64_t shift = 0;
        for (size_t j = 0; j < n; j++)
            shift += p[j].before && p[j].input == input && p[j].partition == part;
        json_t *c = json_deep_copy(v);
        json_object_set_new(c, "original_offset", json_integer(off - shift));
        char key[600];
        snprintf(key, sizeof key, "%s/%d/%lld/%s", input >= 0 ? st->inputs[input] : "-", (int)part,
                 (long long)(off - shift), hvs_test_str(reason));
        json_object_set_new(rest, key, c);
    }
    for (size_t i = 0; i < n; i++)
        HVS_CHECK(p[i].what == NULL,
                  "poison %s \"%s\" (partition %d offset %lld) not on the dead-letter topic",
                  st->inputs[p[i].input], hvs_test_str(p[i].what), (int)p[i].partition,
                  (long long)p[i].offset);
    size_t dd = hvs_fault_compare("dead letter", ref->dead, rest, 5);
    HVS_CHECK(dd == 0, "%s: %zu of the stream's %zu dead letters differ from the reference",
              run->name, dd, json_object_size(ref->dead));
    json_decref(rest);
}

/* ---- fault functions --------------------------------------------------------------------- */

static int member_of(void *arg) { return (int)(intptr_t)arg; }

void hvs_fault_kill9(hvs_fault_run_t *run, void *member) {
    hvs_fault_member_t *m = &run->members[member_of(member)];
    /* two points close together: the second kills the restarted member, not nobody */
    for (int64_t end = hvs_test_now_ms() + 30000;
         m->wanted && m->proc.pid <= 0 && hvs_test_now_ms() < end;)
        hvs_fault_wait(run, 50);
    HVS_CHECK(m->proc.pid > 0, "%s: a member to kill", run->name);
    if (m->proc.pid > 0)
        kill(m->proc.pid, SIGKILL); /* the supervisor reaps and restarts it */
    hvs_fault_wait(run, 100);
}

void hvs_fault_redis_restart(hvs_fault_run_t *run, void *arg) {
    (void)arg;
    int port = run->redis.port;
    hvs_test_proc_stop(&run->redis);
    HVS_REQUIRE(hvs_test_redis_start(&run->redis, port) == 0, "redis-server again on %d", port);
}

void hvs_fault_redis_flush(hvs_fault_run_t *run, void *arg) {
    (void)arg;
    hvs_redis_t *r = NULL;
    hvs_err_t err = {0};
    HVS_REQUIRE(hvs_redis_connect(run->redis.addr, NULL, &r, &err) == 0 &&
                    hvs_redis_command(r, NULL, &err, "FLUSHALL") == 0,
                "FLUSHALL: %s", err.msg);
    hvs_redis_destroy(r);
}

/* Whether a rebuild is under way: Redis holds a stage partition key without its epoch (a
 * rebuilding partition writes its offsets as it goes and the epoch once it has caught up).
 * -1 when Redis does not answer. */
static int rebuild_under_way(hvs_redis_t *r) {
    redisReply *keys = NULL;
    hvs_err_t err = {0};
    if (hvs_redis_command(r, &keys, &err, "KEYS hvs:stage:*") || !keys ||
        keys->type != REDIS_REPLY_ARRAY) {
        if (keys)
            freeReplyObject(keys);
        return -1;
    }
    bool without = false;
    for (size_t i = 0; i < keys->elements && !without; i++) {
        redisReply *e = NULL;
        if (hvs_redis_command(r, &e, &err, "HEXISTS %s epoch", keys->element[i]->str) == 0 && e &&
            e->type == REDIS_REPLY_INTEGER && e->integer == 0)
            without = true;
        if (e)
            freeReplyObject(e);
    }
    freeReplyObject(keys);
    return without;
}

static int rebuild_kills; /* kills that landed mid-rebuild, for the case's own check */

/* FLUSHALL, then kill -9 member 0 once it rebuilds. */
static void flush_then_kill_rebuild(hvs_fault_run_t *run, void *arg) {
    (void)arg;
    size_t before = hvs_fault_log_count(run, "rebuilding by replaying");
    hvs_fault_redis_flush(run, NULL);
    hvs_redis_t *r = NULL;
    hvs_err_t err = {0};
    HVS_REQUIRE(hvs_redis_connect(run->redis.addr, NULL, &r, &err) == 0, "redis: %s", err.msg);
    /* the member notices the loss, restarts, and replays: kill it once it has written some of
     * the rebuilt state but not the epoch that says the rebuild is complete */
    for (int64_t end = hvs_test_now_ms() + 60000; hvs_test_now_ms() < end;) {
        if (hvs_fault_log_count(run, "rebuilding by replaying") > before &&
            rebuild_under_way(r) == 1) {
            hvs_fault_kill9(run, NULL);
            rebuild_kills++;
            break;
        }
        hvs_fault_wait(run, 5);
    }
    hvs_redis_destroy(r);
}

void hvs_fault_redis_pause(hvs_fault_run_t *run, void *ms) {
    kill(run->redis.pid, SIGSTOP);
    hvs_fault_wait(run, (int)(intptr_t)ms);
    kill(run->redis.pid, SIGCONT);
}

void hvs_fault_worker_pause(hvs_fault_run_t *run, void *ms) {
    hvs_fault_member_t *m = &run->members[0];
    pid_t pid = m->proc.pid;
    if (pid > 0)
        kill(pid, SIGSTOP);
    hvs_fault_wait(run, (int)(intptr_t)ms);
    if (pid > 0 && m->proc.pid == pid)
        kill(pid, SIGCONT);
}

void hvs_fault_broker_down(hvs_fault_run_t *run, void *ms) {
    char reply[256];
    HVS_REQUIRE(
        hvs_test_devbroker_control(&run->world->broker, "broker down 1", reply, sizeof reply) == 0,
        "broker down: %s", reply);
    hvs_fault_wait(run, (int)(intptr_t)ms);
    HVS_REQUIRE(
        hvs_test_devbroker_control(&run->world->broker, "broker up 1", reply, sizeof reply) == 0,
        "broker up: %s", reply);
}

static void broker_control(hvs_fault_run_t *run, const char *line) {
    char reply[256];
    HVS_REQUIRE(hvs_test_devbroker_control(&run->world->broker, line, reply, sizeof reply) == 0,
                "%s: %s", line, reply);
}

void hvs_fault_broker_refuses_writes(hvs_fault_run_t *run, void *count) {
    char line[96];
    snprintf(line, sizeof line, "errors 0 %d NOT_ENOUGH_REPLICAS", (int)(intptr_t)count);
    broker_control(run, line);
}

void hvs_fault_case_flush_timeout(hvs_fault_world_t *w, const hvs_fault_run_t *ref,
                                  const char *env) {
    hvs_fault_opts_t o = {.npoints = 1, .env = env};
    hvs_fault_random_points(o.points, 1, 10, 0.2, 0.7);
    /* A stage fed in phases may take a whole phase in one batch (the alerter's first 5 482
     * messages): a later point lands between phases, where the refused requests go to the
     * harness's own producer writing the next phase and the stage's flush never waits. The
     * first phase is written before the member starts: at 0 its first outputs are refused. */
    if (w->stage->fill)
        o.points[0].at = 0;
    o.points[0].name = "broker refuses 200 produce requests (flush timeout lowered)";
    o.points[0].fn = hvs_fault_broker_refuses_writes;
    o.points[0].arg = (void *)200;
    hvs_fault_run_t *run = hvs_fault_run(w, "broker-down-long", &o);
    hvs_fault_check_same(ref, run);
    HVS_CHECK(run->restarts >= 1 && hvs_fault_log_count(run, "flush_timeout") > 0,
              "broker-down-long: a flush timed out (%zu log lines), %d restart(s)",
              hvs_fault_log_count(run, "flush_timeout"), run->restarts);
    hvs_fault_run_free(run);
}

hvs_fault_run_t *hvs_fault_case_second_member(hvs_fault_world_t *w, const hvs_fault_run_t *ref) {
    hvs_fault_opts_t o = {.npoints = 2};
    o.points[0] = (hvs_fault_point_t){0.2, "second member joins", hvs_fault_member_join, (void *)1};
    o.points[1] = (hvs_fault_point_t){0.6, "second member leaves", hvs_fault_member_leave,
                                      (void *)1};
    hvs_fault_run_t *run = hvs_fault_run(w, "second-member", &o);
    hvs_fault_check_same(ref, run);
    HVS_CHECK(hvs_fault_log_count(run, "revoked") > 0, "second-member: partitions were revoked");
    return run;
}

static hvs_fault_run_t *undisturbed(hvs_fault_world_t *w, const hvs_fault_run_t *ref,
                                    const char *name, const char *env) {
    hvs_fault_opts_t o = {.env = env};
    hvs_fault_run_t *run = hvs_fault_run(w, name, &o);
    hvs_fault_check_same(ref, run);
    HVS_CHECK(run->restarts == 0, "%s: %d restarts", name, run->restarts);
    return run;
}

hvs_fault_run_t *hvs_fault_case_again(hvs_fault_world_t *w, const hvs_fault_run_t *ref) {
    return undisturbed(w, ref, "again", NULL);
}

hvs_fault_run_t *hvs_fault_case_small_fetches(hvs_fault_world_t *w, const hvs_fault_run_t *ref) {
    return undisturbed(w, ref, "small-fetches", "HVS_KAFKA_MAX_PARTITION_FETCH_BYTES=2048");
}

hvs_fault_run_t *hvs_fault_case_kill9(hvs_fault_world_t *w, const hvs_fault_run_t *ref,
                                      uint64_t seed) {
    char name[32];
    snprintf(name, sizeof name, "kill9-s%llu", (unsigned long long)seed);
    hvs_fault_opts_t o = {.npoints = 3};
    hvs_fault_random_points(o.points, 3, seed, 0.05, 0.9);
    for (int i = 0; i < 3; i++)
        o.points[i] = (hvs_fault_point_t){o.points[i].at, "kill -9", hvs_fault_kill9, NULL};
    hvs_fault_run_t *run = hvs_fault_run(w, name, &o);
    hvs_fault_check_same(ref, run);
    HVS_CHECK(run->restarts >= 3, "%s: %d restarts after 3 kills", name, run->restarts);
    return run;
}

hvs_fault_run_t *hvs_fault_case_one(hvs_fault_world_t *w, const hvs_fault_run_t *ref,
                                    const char *name, uint64_t seed, const char *what,
                                    hvs_fault_fn fn, void *arg) {
    hvs_fault_opts_t o = {.npoints = 1};
    hvs_fault_random_points(o.points, 1, seed, 0.2, 0.7);
    o.points[0].name = what;
    o.points[0].fn = fn;
    o.points[0].arg = arg;
    hvs_fault_run_t *run = hvs_fault_run(w, name, &o);
    hvs_fault_check_same(ref, run);
    return run;
}

static hvs_fault_run_t *redis_lost(hvs_fault_world_t *w, const hvs_fault_run_t *ref, bool flush) {
    const char *name = flush ? "redis-flush" : "redis-restart";
    hvs_fault_run_t *run = flush ? hvs_fault_case_one(w, ref, name, 6, "FLUSHALL",
                                                      hvs_fault_redis_flush, NULL)
                                 : hvs_fault_case_one(w, ref, name, 5, "redis restart",
                                                      hvs_fault_redis_restart, NULL);
    HVS_CHECK(run->restarts >= 1 && hvs_fault_log_count(run, "state_lost") > 0,
              "%s: state_lost logged, %d restart(s)", name, run->restarts);
    return run;
}

hvs_fault_run_t *hvs_fault_case_redis_restart(hvs_fault_world_t *w, const hvs_fault_run_t *ref) {
    return redis_lost(w, ref, false);
}

hvs_fault_run_t *hvs_fault_case_redis_flush(hvs_fault_world_t *w, const hvs_fault_run_t *ref) {
    return redis_lost(w, ref, true);
}

hvs_fault_run_t *hvs_fault_case_rebuild_kill9(hvs_fault_world_t *w, const hvs_fault_run_t *ref) {
    int kills = rebuild_kills;
    hvs_fault_run_t *run = hvs_fault_case_one(w, ref, "rebuild-kill9", 12,
                                              "FLUSHALL, kill -9 while rebuilding",
                                              flush_then_kill_rebuild, NULL);
    HVS_CHECK(rebuild_kills > kills && run->restarts >= 2 &&
                  hvs_fault_log_count(run, "rebuilding by replaying") >= 2,
              "rebuild-kill9: killed while rebuilding (%d), %d restarts, %zu rebuilds",
              rebuild_kills - kills, run->restarts,
              hvs_fault_log_count(run, "rebuilding by replaying"));
    return run;
}

hvs_fault_run_t *hvs_fault_case_redis_pause(hvs_fault_world_t *w, const hvs_fault_run_t *ref) {
    return hvs_fault_case_one(w, ref, "redis-pause", 7, "redis SIGSTOP 10 s", hvs_fault_redis_pause,
                              (void *)10000);
}

hvs_fault_run_t *hvs_fault_case_worker_pause(hvs_fault_world_t *w, const hvs_fault_run_t *ref) {
    return hvs_fault_case_one(w, ref, "worker-pause", 8, "worker SIGSTOP 10 s",
                              hvs_fault_worker_pause, (void *)10000);
}

hvs_fault_run_t *hvs_fault_case_broker_down(hvs_fault_world_t *w, const hvs_fault_run_t *ref) {
    return hvs_fault_case_one(w, ref, "broker-down", 9, "broker down 15 s", hvs_fault_broker_down,
                              (void *)15000);
}

long long hvs_fault_rank_revision(const json_t *value) {
    return (long long)json_integer_value(json_object_get(value, "revision"));
}

void hvs_fault_member_join(hvs_fault_run_t *run, void *member) {
    hvs_fault_member_start(run, member_of(member));
}

void hvs_fault_member_leave(hvs_fault_run_t *run, void *member) {
    hvs_fault_member_stop(run, member_of(member));
}

size_t hvs_fault_log_count(const hvs_fault_run_t *run, const char *text) {
    FILE *f = fopen(run->log, "r");
    if (!f)
        return 0;
    char line[8192];
    size_t n = 0;
    while (fgets(line, sizeof line, f))
        n += strstr(line, text) != NULL;
    fclose(f);
    return n;
}

/* ---- producing raw records --------------------------------------------------------------- */

struct hvs_fault_producer {
    rd_kafka_t *rk;
    int32_t partition;
    int64_t offset;
    rd_kafka_resp_err_t err;
    int done;
};

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk;
    hvs_fault_producer_t *p = opaque;
    p->err = m->err;
    p->partition = m->partition;
    p->offset = m->offset;
    p->done = 1;
}

hvs_fault_producer_t *hvs_fault_producer_new(hvs_fault_world_t *w) {
    hvs_fault_producer_t *p = calloc(1, sizeof *p);
    HVS_REQUIRE(p, "out of memory");
    char e[256];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    HVS_REQUIRE(rd_kafka_conf_set(c, "bootstrap.servers", w->broker.addr, e, sizeof e) == 0 &&
                    rd_kafka_conf_set(c, "partitioner", "murmur2_random", e, sizeof e) == 0 &&
                    rd_kafka_conf_set(c, "message.max.bytes", "2000000", e, sizeof e) == 0 &&
                    rd_kafka_conf_set(c, "linger.ms", "0", e, sizeof e) == 0,
                "%s", e);
    rd_kafka_conf_set_dr_msg_cb(c, on_delivery);
    rd_kafka_conf_set_opaque(c, p);
    p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, e, sizeof e);
    HVS_REQUIRE(p->rk, "producer: %s", e);
    return p;
}

void hvs_fault_produce(hvs_fault_producer_t *p, const char *topic, const void *key, size_t keylen,
                       const void *value, size_t len, int32_t *partition, int64_t *offset) {
    p->done = 0;
    rd_kafka_resp_err_t e = rd_kafka_producev(
        p->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, key ? keylen : 0),
        RD_KAFKA_V_VALUE((void *)value, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_END);
    HVS_REQUIRE(e == RD_KAFKA_RESP_ERR_NO_ERROR, "produce to %s: %s", topic, rd_kafka_err2str(e));
    int64_t deadline = hvs_test_now_ms() + 10000;
    while (!p->done && hvs_test_now_ms() < deadline)
        rd_kafka_poll(p->rk, 50);
    HVS_REQUIRE(p->done && !p->err, "delivery to %s: %s", topic,
                p->done ? rd_kafka_err2str(p->err) : "timed out");
    if (partition)
        *partition = p->partition;
    if (offset)
        *offset = p->offset;
}

void hvs_fault_producer_free(hvs_fault_producer_t *p) {
    if (!p)
        return;
    rd_kafka_flush(p->rk, 5000);
    rd_kafka_destroy(p->rk);
    free(p);
}

size_t hvs_fault_count_reason(const json_t *dead, const char *input, const char *reason) {
    size_t n = 0, li = strlen(input);
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)dead, k, v) {
        const char *r = json_string_value(json_object_get(v, "error_code"));
        n += strncmp(k, input, li) == 0 && k[li] == '/' && (!reason || hvs_test_streq(r, reason));
    }
    return n;
}
