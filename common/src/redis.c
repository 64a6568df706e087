/*
 * Redis client (see hvs/redis.h) on hiredis 0.14. Commands of a batch are kept as encoded RESP
 * in one reusable arena, written in one go and answered in order; a lost connection means
 * reconnect with exponential backoff and jitter and resend the whole batch.
 */
#include "hvs/redis.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "hvs/log.h"
#include "hvs/time.h"

struct hvs_redis {
    char host[256];
    int port;
    char password[256];
    int db;
    hvs_redis_opts_t opts;
    redisContext *ctx;
    unsigned long reconnects;
    unsigned int seed;
};

typedef struct cmd_ref {
    size_t off, len;
    const hvs_redis_script_t *script; /* EVALSHA of this script, for NOSCRIPT recovery */
} cmd_ref_t;

struct hvs_redis_batch {
    char *arena;
    size_t used, cap;
    cmd_ref_t *cmds;
    size_t n, capcmds;
    redisReply **replies;
    size_t nreplies, capreplies;
    size_t errors;
};

int hvs_redis_url_parse(const char *url, char *host, size_t hostlen, int *port, char *password,
                        size_t pwlen, int *db, hvs_err_t *err) {
    const char *p = url;
    if (!url || strncmp(p, "redis://", 8) != 0)
        return hvs_err_set(err, HVS_ECONFIG, "bad_url",
                           "Redis URL must look like redis://[:password@]host[:port][/db]");
    p += 8;
    *port = 6379;
    *db = 0;
    password[0] = '\0';
    const char *at = strrchr(p, '@');
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        const char *pw = colon ? colon + 1 : p; /* "user:pw@" or "pw@" */
        size_t n = (size_t)(at - pw);
        if (n >= pwlen)
            return hvs_err_set(err, HVS_ECONFIG, "bad_url", "Redis URL: password too long");
        memcpy(password, pw, n);
        password[n] = '\0';
        p = at + 1;
    }
    size_t hl = strcspn(p, ":/");
    if (hl == 0 || hl >= hostlen)
        return hvs_err_set(err, HVS_ECONFIG, "bad_url", "Redis URL: missing or too long host");
    memcpy(host, p, hl);
    host[hl] = '\0';
    p += hl;
    if (*p == ':') {
        char *end;
        long v = strtol(p + 1, &end, 10);
        if (end == p + 1 || v < 1 || v > 65535 || (*end && *end != '/'))
            return hvs_err_set(err, HVS_ECONFIG, "bad_url", "Redis URL: bad port after host %s",
                               host);
        *port = (int)v;
        p = end;
    }
    if (*p == '/' && p[1]) {
        char *end;
        long v = strtol(p + 1, &end, 10);
        if (end == p + 1 || *end || v < 0 || v > 1000)
            return hvs_err_set(err, HVS_ECONFIG, "bad_url", "Redis URL: bad database number");
        *db = (int)v;
    } else if (*p && strcmp(p, "/") != 0) {
        return hvs_err_set(err, HVS_ECONFIG, "bad_url", "Redis URL: unexpected text after host");
    }
    return HVS_OK;
}

static struct timeval tv_ms(int ms) {
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    return tv;
}

/* Send one command on the raw context; 0 if the reply is not an error. */
static int raw_command(redisContext *c, hvs_err_t *err, const char *what, int argc,
                       const char **argv) {
    redisReply *r = redisCommandArgv(c, argc, argv, NULL);
    if (!r)
        return hvs_err_set(err, HVS_EREDIS, "unreachable", "%s: %s", what, c->errstr);
    int rc = HVS_OK;
    if (r->type == REDIS_REPLY_ERROR)
        rc = hvs_err_set(err, HVS_EREDIS, "auth", "%s: %s", what, r->str);
    freeReplyObject(r);
    return rc;
}

/* One attempt to (re)connect, authenticate and select the db. */
static int connect_once(hvs_redis_t *r, hvs_err_t *err) {
    if (r->ctx) {
        redisFree(r->ctx);
        r->ctx = NULL;
    }
    redisContext *c = redisConnectWithTimeout(r->host, r->port, tv_ms(r->opts.connect_timeout_ms));
    if (!c || c->err) {
        int rc = hvs_err_set(err, HVS_EREDIS, "unreachable", "Redis %s:%d: %s", r->host, r->port,
                             c ? c->errstr : "out of memory");
        if (c)
            redisFree(c);
        return rc;
    }
    redisSetTimeout(c, tv_ms(r->opts.command_timeout_ms));
    redisEnableKeepAlive(c);
    int rc = HVS_OK;
    if (r->password[0]) {
        const char *argv[] = {"AUTH", r->password};
        rc = raw_command(c, err, "AUTH", 2, argv);
    }
    if (rc == HVS_OK && r->db) {
        char db[16];
        snprintf(db, sizeof db, "%d", r->db);
        const char *argv[] = {"SELECT", db};
        rc = raw_command(c, err, "SELECT", 2, argv);
    }
    if (rc == HVS_OK) {
        const char *argv[] = {"PING"};
        rc = raw_command(c, err, "PING", 1, argv); /* NOAUTH shows here when a password is needed */
    }
    if (rc != HVS_OK) {
        redisFree(c);
        return rc;
    }
    r->ctx = c;
    return HVS_OK;
}

/* Reconnect with exponential backoff and jitter until the retry budget runs out. */
static int reconnect(hvs_redis_t *r, hvs_err_t *err) {
    hvs_ms_t deadline = hvs_time_mono_ms() + r->opts.retry_budget_ms;
    int backoff = r->opts.retry_initial_ms;
    for (int attempt = 0;; attempt++) {
        int rc = connect_once(r, err);
        if (rc == HVS_OK) {
            r->reconnects++;
            hvs_log_fields(HVS_LOG_INFO, "redis", "reconnected", HVS_LFS("host", r->host),
                           HVS_LFI("port", r->port), HVS_LFI("attempts", attempt + 1));
            return HVS_OK;
        }
        if (err && strcmp(err->reason, "auth") == 0)
            return rc; /* a wrong password does not get better by retrying */
        hvs_ms_t now = hvs_time_mono_ms();
        if (now >= deadline) {
            char last[HVS_ERR_MSG_MAX / 2] = "";
            if (err)
                memcpy(last, err->msg, sizeof last - 1); /* err->msg is rewritten below */
            return hvs_err_set(err, HVS_EREDIS, "unreachable", "unreachable for %d ms (%s)",
                               r->opts.retry_budget_ms, last);
        }
        int sleep_ms = backoff / 2 + (int)(rand_r(&r->seed) % (unsigned)(backoff / 2 + 1));
        if (now + sleep_ms > deadline)
            sleep_ms = (int)(deadline - now);
        usleep((useconds_t)sleep_ms * 1000);
        backoff = backoff * 2 > r->opts.retry_max_ms ? r->opts.retry_max_ms : backoff * 2;
    }
}

int hvs_redis_connect(const char *url, const hvs_redis_opts_t *opts, hvs_redis_t **out,
                      hvs_err_t *err) {
    hvs_redis_t *r = calloc(1, sizeof *r);
    if (!r)
        return hvs_err_set(err, HVS_ENOMEM, NULL, "redis: out of memory");
    int rc = hvs_redis_url_parse(url, r->host, sizeof r->host, &r->port, r->password,
                                 sizeof r->password, &r->db, err);
    if (rc) {
        free(r);
        return rc;
    }
    if (opts)
        r->opts = *opts;
    if (!r->opts.connect_timeout_ms)
        r->opts.connect_timeout_ms = 2000;
    if (!r->opts.command_timeout_ms)
        r->opts.command_timeout_ms = 5000;
    if (!r->opts.retry_initial_ms)
        r->opts.retry_initial_ms = 50;
    if (!r->opts.retry_max_ms)
        r->opts.retry_max_ms = 2000;
    if (!r->opts.retry_budget_ms)
        r->opts.retry_budget_ms = 30000;
    r->seed = (unsigned)hvs_time_now_ms();
    rc = connect_once(r, err);
    if (rc) {
        free(r);
        return rc;
    }
    *out = r;
    return HVS_OK;
}

void hvs_redis_destroy(hvs_redis_t *r) {
    if (!r)
        return;
    if (r->ctx)
        redisFree(r->ctx);
    free(r);
}

unsigned long hvs_redis_reconnects(const hvs_redis_t *r) { return r->reconnects; }

hvs_redis_batch_t *hvs_redis_batch_new(void) { return calloc(1, sizeof(hvs_redis_batch_t)); }

static void free_replies(hvs_redis_batch_t *b) {
    for (size_t i = 0; i < b->nreplies; i++)
        if (b->replies[i])
            freeReplyObject(b->replies[i]);
    b->nreplies = 0;
    b->errors = 0;
}

void hvs_redis_batch_reset(hvs_redis_batch_t *b) {
    free_replies(b);
    b->used = 0;
    b->n = 0;
}

void hvs_redis_batch_destroy(hvs_redis_batch_t *b) {
    if (!b)
        return;
    free_replies(b);
    free(b->replies);
    free(b->arena);
    free(b->cmds);
    free(b);
}

size_t hvs_redis_batch_size(const hvs_redis_batch_t *b) { return b->n; }

/* Append encoded command bytes; takes nothing over. */
static int push(hvs_redis_batch_t *b, const char *cmd, size_t len,
                const hvs_redis_script_t *script) {
    if (b->used + len > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->used + len)
            cap *= 2;
        char *na = realloc(b->arena, cap);
        if (!na)
            return HVS_ENOMEM;
        b->arena = na;
        b->cap = cap;
    }
    if (b->n == b->capcmds) {
        size_t cap = b->capcmds ? b->capcmds * 2 : 64;
        cmd_ref_t *nc = realloc(b->cmds, cap * sizeof *nc);
        if (!nc)
            return HVS_ENOMEM;
        b->cmds = nc;
        b->capcmds = cap;
    }
    memcpy(b->arena + b->used, cmd, len);
    b->cmds[b->n++] = (cmd_ref_t){b->used, len, script};
    b->used += len;
    return HVS_OK;
}

int hvs_redis_batch_add(hvs_redis_batch_t *b, int argc, const char **argv, const size_t *argvlen) {
    char *cmd = NULL;
    int len = redisFormatCommandArgv(&cmd, argc, argv, argvlen);
    if (len < 0)
        return HVS_ENOMEM;
    int rc = push(b, cmd, (size_t)len, NULL);
    redisFreeCommand(cmd);
    return rc;
}

int hvs_redis_batch_addf(hvs_redis_batch_t *b, const char *fmt, ...) {
    char *cmd = NULL;
    va_list ap;
    va_start(ap, fmt);
    int len = redisvFormatCommand(&cmd, fmt, ap);
    va_end(ap);
    if (len < 0)
        return HVS_EINVAL;
    int rc = push(b, cmd, (size_t)len, NULL);
    redisFreeCommand(cmd);
    return rc;
}

int hvs_redis_batch_add_script(hvs_redis_batch_t *b, const hvs_redis_script_t *s, int nkeys,
                               const char **keys, int nargs, const char **args,
                               const size_t *argslen) {
    int argc = 3 + nkeys + nargs;
    const char **argv = malloc((size_t)argc * sizeof *argv);
    size_t *lens = malloc((size_t)argc * sizeof *lens);
    if (!argv || !lens) {
        free(argv);
        free(lens);
        return HVS_ENOMEM;
    }
    char nk[16];
    snprintf(nk, sizeof nk, "%d", nkeys);
    argv[0] = "EVALSHA", lens[0] = 7;
    argv[1] = s->sha, lens[1] = strlen(s->sha);
    argv[2] = nk, lens[2] = strlen(nk);
    for (int i = 0; i < nkeys; i++)
        argv[3 + i] = keys[i], lens[3 + i] = strlen(keys[i]);
    for (int i = 0; i < nargs; i++)
        argv[3 + nkeys + i] = args[i], lens[3 + nkeys + i] = argslen ? argslen[i] : strlen(args[i]);
    char *cmd = NULL;
    int len = redisFormatCommandArgv(&cmd, argc, argv, lens);
    free(argv);
    free(lens);
    if (len < 0)
        return HVS_ENOMEM;
    int rc = push(b, cmd, (size_t)len, s);
    redisFreeCommand(cmd);
    return rc;
}

int hvs_redis_script_load(hvs_redis_t *r, hvs_redis_script_t *s, hvs_err_t *err) {
    redisReply *reply = NULL;
    int rc = hvs_redis_command(r, &reply, err, "SCRIPT LOAD %s", s->source);
    if (rc)
        return rc;
    if (reply->type != REDIS_REPLY_STRING || reply->len != 40) {
        rc = hvs_err_set(err, HVS_EREDIS, "reply_error", "SCRIPT LOAD %s: %s", s->name,
                         reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
    } else {
        memcpy(s->sha, reply->str, 40);
        s->sha[40] = '\0';
    }
    freeReplyObject(reply);
    return rc;
}

/* One pass: write every command, read every reply. <0 on a connection failure. */
static int exec_once(hvs_redis_t *r, hvs_redis_batch_t *b, hvs_err_t *err) {
    free_replies(b);
    if (b->capreplies < b->n) {
        redisReply **nr = realloc(b->replies, b->n * sizeof *nr);
        if (!nr)
            return hvs_err_set(err, HVS_ENOMEM, NULL, "redis batch: out of memory");
        b->replies = nr;
        b->capreplies = b->n;
    }
    if (!r->ctx)
        return hvs_err_set(err, HVS_EREDIS, "unreachable", "not connected");
    for (size_t i = 0; i < b->n; i++)
        if (redisAppendFormattedCommand(r->ctx, b->arena + b->cmds[i].off, b->cmds[i].len) !=
            REDIS_OK)
            return hvs_err_set(err, HVS_EREDIS, "unreachable", "append: %s", r->ctx->errstr);
    for (size_t i = 0; i < b->n; i++) {
        void *reply = NULL;
        if (redisGetReply(r->ctx, &reply) != REDIS_OK || !reply)
            return hvs_err_set(err, HVS_EREDIS, "unreachable", "Redis %s:%d: %s", r->host,
                               r->port, r->ctx->errstr);
        b->replies[b->nreplies++] = reply;
        if (((redisReply *)reply)->type == REDIS_REPLY_ERROR)
            b->errors++;
    }
    return HVS_OK;
}

/* Did a script command answer NOSCRIPT? Load those scripts again. */
static int reload_scripts(hvs_redis_t *r, hvs_redis_batch_t *b, hvs_err_t *err) {
    int reloaded = 0;
    for (size_t i = 0; i < b->nreplies; i++) {
        redisReply *rep = b->replies[i];
        if (b->cmds[i].script && rep->type == REDIS_REPLY_ERROR &&
            strncmp(rep->str, "NOSCRIPT", 8) == 0) {
            hvs_redis_script_t copy = *b->cmds[i].script;
            if (hvs_redis_script_load(r, &copy, err) != HVS_OK)
                return -1;
            reloaded++;
        }
    }
    return reloaded;
}

int hvs_redis_batch_exec(hvs_redis_t *r, hvs_redis_batch_t *b, hvs_err_t *err) {
    int noscript_retried = 0;
    for (;;) {
        int rc = exec_once(r, b, err);
        if (rc == HVS_OK) {
            if (b->errors && !noscript_retried) {
                int reloaded = reload_scripts(r, b, err);
                if (reloaded < 0)
                    return err ? err->code : HVS_EREDIS;
                if (reloaded > 0) {
                    noscript_retried = 1; /* the same SHA is valid again: resend once */
                    continue;
                }
            }
            return HVS_OK;
        }
        if (rc == HVS_ENOMEM)
            return rc;
        hvs_log_fields(HVS_LOG_WARN, "redis", "connection lost, batch will be resent",
                       HVS_LFS("error", err ? err->msg : ""), HVS_LFI("commands", b->n));
        rc = reconnect(r, err);
        if (rc)
            return rc;
    }
}

const redisReply *hvs_redis_batch_reply(const hvs_redis_batch_t *b, size_t i) {
    return i < b->nreplies ? b->replies[i] : NULL;
}

size_t hvs_redis_batch_errors(const hvs_redis_batch_t *b) { return b->errors; }

int hvs_redis_command(hvs_redis_t *r, redisReply **reply, hvs_err_t *err, const char *fmt, ...) {
    char *cmd = NULL;
    va_list ap;
    va_start(ap, fmt);
    int len = redisvFormatCommand(&cmd, fmt, ap);
    va_end(ap);
    if (len < 0)
        return hvs_err_set(err, HVS_EINVAL, NULL, "redis: bad command format \"%s\"", fmt);
    hvs_redis_batch_t *b = hvs_redis_batch_new();
    int rc = b ? push(b, cmd, (size_t)len, NULL) : HVS_ENOMEM;
    redisFreeCommand(cmd);
    if (rc == HVS_OK)
        rc = hvs_redis_batch_exec(r, b, err);
    if (rc == HVS_OK) {
        *reply = b->replies[0];
        b->replies[0] = NULL;
    } else if (rc == HVS_ENOMEM) {
        hvs_err_set(err, HVS_ENOMEM, NULL, "redis: out of memory");
    }
    hvs_redis_batch_destroy(b);
    return rc;
}

int hvs_redis_key(char *buf, size_t buflen, const char *building, const char *suffix_fmt, ...) {
    if (!building || !*building || strpbrk(building, "{}"))
        return HVS_EINVAL;
    int n = snprintf(buf, buflen, "hvs:{%s}:", building);
    if (n < 0 || (size_t)n >= buflen)
        return HVS_EINVAL;
    va_list ap;
    va_start(ap, suffix_fmt);
    int m = vsnprintf(buf + n, buflen - (size_t)n, suffix_fmt, ap);
    va_end(ap);
    if (m < 0 || (size_t)(n + m) >= buflen)
        return HVS_EINVAL;
    return n + m;
}
