/*
 * Redis client (see hvs/redis.h) on hiredis 0.14. Commands of a batch are encoded as RESP straight
 * into one reusable arena, written in one go and answered in order; a lost connection means
 * reconnect with exponential backoff and jitter and resend the whole batch.
 */
#include "hvs/redis.h"

#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "hvs/ids.h"
#include "hvs/log.h"
#include "hvs/time.h"

struct hvs_redis {
    char host[256];
    int port;
    char user[128];
    char password[256];
    int db;
    hvs_redis_opts_t opts;
    redisContext *ctx;
    unsigned long reconnects;
    unsigned int seed;
    hvs_redis_batch_t *scratch; /* reused by hvs_redis_command */
};

typedef struct cmd_ref {
    size_t off, len;
    const hvs_redis_script_t *script; /* EVALSHA of this script, for NOSCRIPT recovery */
} cmd_ref_t;

struct hvs_redis_batch {
    char *arena; /* every command's RESP bytes, back to back */
    size_t used, cap;
    cmd_ref_t *cmds;
    size_t n, capcmds;
    redisReply **replies;
    size_t nreplies, capreplies;
    size_t errors;
    bool atomic; /* exec_atomic: MULTI ... EXEC */
};

typedef struct url_parts {
    char host[256];
    int port;
    char user[128];
    char password[256];
    int db;
} url_parts_t;

/*
 * The URL with its password replaced by "***" (for messages: a bad URL is named, its secret
 * never). Works on anything "scheme://[userinfo@]rest"; without a user, the whole userinfo is
 * taken as the password.
 */
static void url_redact(const char *url, char *out, size_t outlen) {
    if (!url) {
        snprintf(out, outlen, "(null)");
        return;
    }
    const char *auth = strstr(url, "://");
    auth = auth ? auth + 3 : url;
    const char *at = strrchr(auth, '@');
    if (!at) {
        snprintf(out, outlen, "%.200s", url);
        return;
    }
    const char *colon = memchr(auth, ':', (size_t)(at - auth));
    size_t keep = colon ? (size_t)(colon + 1 - url) : (size_t)(auth - url);
    snprintf(out, outlen, "%.*s***%.200s", (int)(keep < 200 ? keep : 200), url, at);
}

static int hexval(char c) {
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* Percent-decode [s, s+n) into out (NUL-terminated); -1 on a bad escape, NUL or overflow. */
static int pct_decode(const char *s, size_t n, char *out, size_t outlen) {
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == '%') {
            if (i + 2 >= n)
                return -1;
            int hi = hexval(s[i + 1]), lo = hexval(s[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            c = hi * 16 + lo;
            i += 2;
        }
        if (c == 0 || o + 1 >= outlen)
            return -1;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return 0;
}

/* Up to maxd decimal digits at *p (nothing else); advances *p. -1 if none or too many. */
static long parse_digits(const char **p, int maxd) {
    long v = 0;
    int nd = 0;
    while (**p >= '0' && **p <= '9') {
        if (++nd > maxd)
            return -1;
        v = v * 10 + (**p - '0');
        (*p)++;
    }
    return nd ? v : -1;
}

#define URL_FORM "redis://[[user]:password@]host[:port][/db]"

static int parse_url(const char *url, url_parts_t *u, hvs_err_t *err) {
    char shown[300];
    url_redact(url, shown, sizeof shown);
    memset(u, 0, sizeof *u);
    u->port = 6379;
    if (!url || strncmp(url, "redis://", 8) != 0) {
        if (url && strncmp(url, "rediss://", 9) == 0)
            return hvs_err_set(err, HVS_ECONFIG, "bad_url",
                               "Redis URL \"%s\": TLS (rediss://) is not supported", shown);
        return hvs_err_set(err, HVS_ECONFIG, "bad_url", "Redis URL \"%s\" is not of the form %s",
                           shown, URL_FORM);
    }
    const char *p = url + 8;
    const char *at = strrchr(p, '@');
    if (at) {
        /* "user:password@", ":password@" or "password@" (userinfo without ':' is a password) */
        const char *colon = memchr(p, ':', (size_t)(at - p));
        const char *pw = colon ? colon + 1 : p;
        if (colon && pct_decode(p, (size_t)(colon - p), u->user, sizeof u->user) != 0)
            return hvs_err_set(err, HVS_ECONFIG, "bad_url",
                               "Redis URL \"%s\": bad or too long user name", shown);
        if (pct_decode(pw, (size_t)(at - pw), u->password, sizeof u->password) != 0)
            return hvs_err_set(err, HVS_ECONFIG, "bad_url",
                               "Redis URL \"%s\": bad %%-escape or too long password", shown);
        p = at + 1;
    }
    size_t hl;
    if (*p == '[') { /* IPv6 literal */
        const char *close = strchr(p, ']');
        if (!close)
            return hvs_err_set(err, HVS_ECONFIG, "bad_url", "Redis URL \"%s\": missing ']'", shown);
        hl = (size_t)(close - p - 1);
        if (hl == 0 || hl >= sizeof u->host || strspn(p + 1, "0123456789abcdefABCDEF:.") != hl)
            return hvs_err_set(err, HVS_ECONFIG, "bad_url", "Redis URL \"%s\": bad IPv6 address",
                               shown);
        memcpy(u->host, p + 1, hl);
        p = close + 1;
    } else {
        hl = strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_");
        if (hl == 0 || hl >= sizeof u->host)
            return hvs_err_set(err, HVS_ECONFIG, "bad_url",
                               "Redis URL \"%s\": missing, bad or too long host", shown);
        memcpy(u->host, p, hl);
        p += hl;
    }
    u->host[hl] = '\0';
    if (*p == ':') {
        p++;
        long v = parse_digits(&p, 5);
        if (v < 1 || v > 65535)
            return hvs_err_set(err, HVS_ECONFIG, "bad_url",
                               "Redis URL \"%s\": port must be 1..65535", shown);
        u->port = (int)v;
    }
    if (*p == '/' && p[1]) {
        p++;
        long v = parse_digits(&p, 6);
        if (v < 0)
            return hvs_err_set(err, HVS_ECONFIG, "bad_url",
                               "Redis URL \"%s\": database must be a number", shown);
        u->db = (int)v;
    } else if (*p == '/') {
        p++;
    }
    if (*p)
        return hvs_err_set(err, HVS_ECONFIG, "bad_url",
                           "Redis URL \"%s\": unexpected \"%.32s\" (form: %s)", shown, p, URL_FORM);
    return HVS_OK;
}

int hvs_redis_url_parse(const char *url, char *host, size_t hostlen, int *port, char *password,
                        size_t pwlen, int *db, hvs_err_t *err) {
    url_parts_t u;
    int rc = parse_url(url, &u, err);
    if (rc == HVS_OK && (strlen(u.host) >= hostlen || strlen(u.password) >= pwlen))
        rc = hvs_err_set(err, HVS_EINVAL, NULL, "Redis URL: host or password buffer too small");
    if (rc == HVS_OK) {
        memcpy(host, u.host, strlen(u.host) + 1);
        memcpy(password, u.password, strlen(u.password) + 1);
        *port = u.port;
        *db = u.db;
    }
    explicit_bzero(u.password, sizeof u.password);
    return rc;
}

int hvs_redis_url_redact(const char *url, char *buf, size_t buflen) {
    if (!buf || !buflen)
        return HVS_EINVAL;
    url_redact(url, buf, buflen);
    return HVS_OK;
}

/*
 * hiredis writes with write(2): a peer that vanished raises SIGPIPE, whose default action kills
 * the process. A library must not depend on the program ignoring it, so socket I/O runs with
 * SIGPIPE blocked in this thread and a SIGPIPE raised meanwhile is consumed (write then fails
 * with EPIPE, which is a connection loss like any other).
 */
typedef struct sigpipe_guard {
    sigset_t old;
    int was_pending;
    int active;
} sigpipe_guard_t;

static void sigpipe_block(sigpipe_guard_t *g) {
    struct sigaction sa;
    /* programs that ignore SIGPIPE (hvs_app does) pay one syscall, not four */
    g->active = !(sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN);
    if (!g->active)
        return;
    sigset_t set, pending;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    sigpending(&pending);
    g->was_pending = sigismember(&pending, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, &g->old);
}

static void sigpipe_unblock(sigpipe_guard_t *g) {
    if (!g->active)
        return;
    sigset_t set, pending;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    sigpending(&pending);
    if (!g->was_pending && sigismember(&pending, SIGPIPE)) {
        struct timespec zero = {0, 0};
        sigtimedwait(&set, NULL, &zero);
    }
    pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}

static struct timeval tv_ms(int ms) {
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    return tv;
}

/* Is this error reply one that goes away by itself (server starting, busy script, failover)? */
static int transient_reply(const char *e) {
    static const char *const t[] = {"LOADING", "BUSY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN"};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (strncmp(e, t[i], strlen(t[i])) == 0)
            return 1;
    return 0;
}

/*
 * Send one handshake command on the raw context. 0 if the reply is not an error; otherwise
 * *retry says whether trying again later can help (connection lost, server still loading), and
 * the reason is "unreachable", `fatal_reason` ("auth", "bad_db") or "auth" for NOAUTH.
 */
static int handshake(redisContext *c, hvs_err_t *err, const char *what, const char *fatal_reason,
                     int argc, const char **argv, int *retry) {
    redisReply *r = redisCommandArgv(c, argc, argv, NULL);
    if (!r) {
        *retry = 1;
        return hvs_err_set(err, HVS_EREDIS, "unreachable", "%s: %s", what, c->errstr);
    }
    int rc = HVS_OK;
    if (r->type == REDIS_REPLY_ERROR) {
        *retry = transient_reply(r->str);
        const char *reason = *retry ? "unreachable"
                             : strncmp(r->str, "NOAUTH", 6) == 0 ||
                                     strncmp(r->str, "WRONGPASS", 9) == 0
                                 ? "auth"
                                 : fatal_reason;
        rc = hvs_err_set(err, HVS_EREDIS, reason, "%s: %s", what, r->str);
    }
    freeReplyObject(r);
    return rc;
}

/* One attempt to (re)connect, authenticate and select the db. *retry as for handshake(). */
static int connect_once(hvs_redis_t *r, hvs_err_t *err, int *retry) {
    *retry = 1;
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
        /* Redis 6 ACL form when a user is named; the bare form is user "default" */
        const char *argv3[] = {"AUTH", r->user, r->password};
        const char *argv2[] = {"AUTH", r->password};
        rc = r->user[0] ? handshake(c, err, "AUTH", "auth", 3, argv3, retry)
                        : handshake(c, err, "AUTH", "auth", 2, argv2, retry);
    }
    if (rc == HVS_OK && r->db) {
        char db[16];
        snprintf(db, sizeof db, "%d", r->db);
        const char *argv[] = {"SELECT", db};
        rc = handshake(c, err, "SELECT", "bad_db", 2, argv, retry);
    }
    if (rc == HVS_OK) {
        const char *argv[] = {"PING"};
        /* NOAUTH shows here when the server wants a password we do not have */
        rc = handshake(c, err, "PING", "reply_error", 1, argv, retry);
    }
    if (rc != HVS_OK) {
        if (err)
            hvs_err_wrap(err, "Redis %s:%d", r->host, r->port);
        redisFree(c);
        return rc;
    }
    r->ctx = c;
    return HVS_OK;
}

/*
 * Connect (again) with exponential backoff and jitter until it works, a failure that retrying
 * cannot fix (wrong password, bad db), or the retry budget runs out ("unreachable").
 */
static int connect_retry(hvs_redis_t *r, hvs_err_t *err) {
    hvs_err_t local;
    if (!err)
        err = &local; /* the reason decides whether to go on */
    hvs_ms_t deadline = hvs_time_mono_ms() + r->opts.retry_budget_ms;
    int backoff = r->opts.retry_initial_ms;
    for (int attempt = 1;; attempt++) {
        int retry;
        int rc = connect_once(r, err, &retry);
        if (rc == HVS_OK) {
            if (attempt > 1)
                hvs_log_fields(HVS_LOG_INFO, "redis", "connected after retries",
                               HVS_LFS("host", r->host), HVS_LFI("port", r->port),
                               HVS_LFI("attempts", attempt));
            return HVS_OK;
        }
        if (!retry)
            return rc;
        hvs_ms_t now = hvs_time_mono_ms();
        if (now >= deadline) {
            char last[HVS_ERR_MSG_MAX / 2];
            size_t ll = strnlen(err->msg, sizeof last - 1); /* err->msg is rewritten below */
            memcpy(last, err->msg, ll);
            last[ll] = '\0';
            return hvs_err_set(err, HVS_EREDIS, "unreachable",
                               "Redis %s:%d unreachable for %d ms, %d attempts (last: %s)", r->host,
                               r->port, r->opts.retry_budget_ms, attempt, last);
        }
        /* "equal jitter": half the backoff fixed, half random, so clients do not stampede */
        int sleep_ms = backoff / 2 + (int)(rand_r(&r->seed) % (unsigned)(backoff / 2 + 1));
        if (now + sleep_ms > deadline)
            sleep_ms = (int)(deadline - now);
        usleep((useconds_t)sleep_ms * 1000);
        backoff = backoff > r->opts.retry_max_ms / 2 ? r->opts.retry_max_ms : backoff * 2;
    }
}

int hvs_redis_connect(const char *url, const hvs_redis_opts_t *opts, hvs_redis_t **out,
                      hvs_err_t *err) {
    hvs_redis_t *r = calloc(1, sizeof *r);
    if (!r)
        return hvs_err_set(err, HVS_ENOMEM, NULL, "redis: out of memory");
    url_parts_t u;
    int rc = parse_url(url, &u, err);
    if (rc) {
        free(r);
        return rc;
    }
    memcpy(r->host, u.host, sizeof r->host);
    memcpy(r->user, u.user, sizeof r->user);
    memcpy(r->password, u.password, sizeof r->password);
    explicit_bzero(u.password, sizeof u.password);
    r->port = u.port;
    r->db = u.db;
    if (opts)
        r->opts = *opts;
    if (r->opts.connect_timeout_ms <= 0)
        r->opts.connect_timeout_ms = 2000;
    if (r->opts.command_timeout_ms <= 0)
        r->opts.command_timeout_ms = 5000;
    if (r->opts.retry_initial_ms <= 0)
        r->opts.retry_initial_ms = 50;
    if (r->opts.retry_max_ms <= 0)
        r->opts.retry_max_ms = 2000;
    if (r->opts.retry_budget_ms <= 0)
        r->opts.retry_budget_ms = 30000;
    r->seed = (unsigned)hvs_time_now_ms() ^ (unsigned)getpid();
    sigpipe_guard_t g;
    sigpipe_block(&g);
    rc = connect_retry(r, err);
    sigpipe_unblock(&g);
    if (rc) {
        hvs_redis_destroy(r);
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
    hvs_redis_batch_destroy(r->scratch);
    explicit_bzero(r->password, sizeof r->password);
    free(r);
}

unsigned long hvs_redis_reconnects(const hvs_redis_t *r) { return r ? r->reconnects : 0; }

hvs_redis_batch_t *hvs_redis_batch_new(void) { return calloc(1, sizeof(hvs_redis_batch_t)); }

static void free_replies(hvs_redis_batch_t *b) {
    for (size_t i = 0; i < b->nreplies; i++)
        if (b->replies[i])
            freeReplyObject(b->replies[i]);
    b->nreplies = 0;
    b->errors = 0;
}

void hvs_redis_batch_reset(hvs_redis_batch_t *b) {
    if (!b)
        return;
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

/* Room for `need` more bytes in the arena (grows by doubling; offsets stay valid). */
static int arena_reserve(hvs_redis_batch_t *b, size_t need) {
    if (b->used + need <= b->cap)
        return HVS_OK;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->used + need)
        cap *= 2;
    char *na = realloc(b->arena, cap);
    if (!na)
        return HVS_ENOMEM;
    b->arena = na;
    b->cap = cap;
    return HVS_OK;
}

/* "<prefix><n>\r\n" into the arena (RESP array or bulk header). */
static int put_header(hvs_redis_batch_t *b, char prefix, size_t n) {
    /* by hand: snprintf here was a noticeable share of a state-writing worker's time */
    char tmp[32], *e = tmp + sizeof tmp, *p = e;
    *--p = '\n';
    *--p = '\r';
    do {
        *--p = (char)('0' + n % 10);
        n /= 10;
    } while (n);
    *--p = prefix;
    size_t len = (size_t)(e - p);
    if (arena_reserve(b, len))
        return HVS_ENOMEM;
    memcpy(b->arena + b->used, p, len);
    b->used += len;
    return HVS_OK;
}

/* One bulk string "$<len>\r\n<bytes>\r\n". */
static int put_bulk(hvs_redis_batch_t *b, const char *s, size_t len) {
    if (put_header(b, '$', len) || arena_reserve(b, len + 2))
        return HVS_ENOMEM;
    memcpy(b->arena + b->used, s, len);
    memcpy(b->arena + b->used + len, "\r\n", 2);
    b->used += len + 2;
    return HVS_OK;
}

/* Record the command written since `off`; on failure forget its bytes. */
static int commit_cmd(hvs_redis_batch_t *b, size_t off, int rc, const hvs_redis_script_t *script) {
    if (rc == HVS_OK && b->n == b->capcmds) {
        size_t cap = b->capcmds ? b->capcmds * 2 : 64;
        cmd_ref_t *nc = realloc(b->cmds, cap * sizeof *nc);
        if (!nc)
            rc = HVS_ENOMEM;
        else
            b->cmds = nc, b->capcmds = cap;
    }
    if (rc != HVS_OK) {
        b->used = off;
        return rc;
    }
    b->cmds[b->n++] = (cmd_ref_t){off, b->used - off, script};
    return HVS_OK;
}

/* Append already-encoded command bytes (from hiredis's formatter). */
static int push(hvs_redis_batch_t *b, const char *cmd, size_t len) {
    size_t off = b->used;
    int rc = arena_reserve(b, len);
    if (rc == HVS_OK) {
        memcpy(b->arena + b->used, cmd, len);
        b->used += len;
    }
    return commit_cmd(b, off, rc, NULL);
}

int hvs_redis_batch_add(hvs_redis_batch_t *b, int argc, const char **argv, const size_t *argvlen) {
    if (argc < 1 || !argv)
        return HVS_EINVAL;
    /* encoded straight into the arena: no allocation once the arena has grown */
    size_t off = b->used;
    int rc = put_header(b, '*', (size_t)argc);
    for (int i = 0; rc == HVS_OK && i < argc; i++)
        rc = put_bulk(b, argv[i], argvlen ? argvlen[i] : strlen(argv[i]));
    return commit_cmd(b, off, rc, NULL);
}

int hvs_redis_batch_addf(hvs_redis_batch_t *b, const char *fmt, ...) {
    char *cmd = NULL;
    va_list ap;
    va_start(ap, fmt);
    int len = redisvFormatCommand(&cmd, fmt, ap);
    va_end(ap);
    if (len < 0)
        return HVS_EINVAL;
    int rc = push(b, cmd, (size_t)len);
    redisFreeCommand(cmd);
    return rc;
}

int hvs_redis_batch_add_script(hvs_redis_batch_t *b, const hvs_redis_script_t *s, int nkeys,
                               const char **keys, int nargs, const char **args,
                               const size_t *argslen) {
    if (!s || strlen(s->sha) != 40 || nkeys < 0 || nargs < 0)
        return HVS_EINVAL; /* not loaded: NOSCRIPT recovery could not fix the SHA we send */
    char nk[16];
    int nkl = snprintf(nk, sizeof nk, "%d", nkeys);
    size_t off = b->used;
    int rc = put_header(b, '*', (size_t)(3 + nkeys + nargs));
    if (rc == HVS_OK)
        rc = put_bulk(b, "EVALSHA", 7);
    if (rc == HVS_OK)
        rc = put_bulk(b, s->sha, 40);
    if (rc == HVS_OK)
        rc = put_bulk(b, nk, (size_t)nkl);
    for (int i = 0; rc == HVS_OK && i < nkeys; i++)
        rc = put_bulk(b, keys[i], strlen(keys[i]));
    for (int i = 0; rc == HVS_OK && i < nargs; i++)
        rc = put_bulk(b, args[i], argslen ? argslen[i] : strlen(args[i]));
    return commit_cmd(b, off, rc, s);
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
/* exec_once's answer when Redis refused a transaction (EXECABORT): an error, but the
 * connection is fine, so batch_exec must not reconnect and resend. */
#define EXEC_REFUSED 1

/* Read one reply of the pipeline into *out (the caller owns it). */
static int read_reply(hvs_redis_t *r, redisReply **out, hvs_err_t *err) {
    void *reply = NULL;
    if (redisGetReply(r->ctx, &reply) != REDIS_OK || !reply)
        return hvs_err_set(err, HVS_EREDIS, "unreachable", "Redis %s:%d: %s", r->host, r->port,
                           r->ctx->errstr);
    *out = reply;
    return HVS_OK;
}

/* MULTI, the commands, EXEC: EXEC's array becomes the batch's replies, one per command, as if
 * they had been sent alone (a command refused while queued aborts the whole transaction: every
 * reply is then that EXECABORT error). */
static int exec_atomic_once(hvs_redis_t *r, hvs_redis_batch_t *b, hvs_err_t *err) {
    if (redisAppendCommand(r->ctx, "MULTI") != REDIS_OK)
        return hvs_err_set(err, HVS_EREDIS, "unreachable", "append: %s", r->ctx->errstr);
    for (size_t i = 0; i < b->n; i++)
        if (redisAppendFormattedCommand(r->ctx, b->arena + b->cmds[i].off, b->cmds[i].len) !=
            REDIS_OK)
            return hvs_err_set(err, HVS_EREDIS, "unreachable", "append: %s", r->ctx->errstr);
    if (redisAppendCommand(r->ctx, "EXEC") != REDIS_OK)
        return hvs_err_set(err, HVS_EREDIS, "unreachable", "append: %s", r->ctx->errstr);
    int rc = HVS_OK;
    redisReply *rep = NULL;
    for (size_t i = 0; i < b->n + 1 && rc == HVS_OK; i++) { /* +OK, then QUEUED per command */
        rc = read_reply(r, &rep, err);
        if (rc == HVS_OK)
            freeReplyObject(rep);
    }
    if (rc == HVS_OK)
        rc = read_reply(r, &rep, err);
    if (rc != HVS_OK)
        return rc;
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements == b->n) {
        for (size_t i = 0; i < b->n; i++) {
            b->replies[b->nreplies++] = rep->element[i];
            if (rep->element[i]->type == REDIS_REPLY_ERROR)
                b->errors++;
            rep->element[i] = NULL; /* handed to the batch */
        }
        freeReplyObject(rep);
        return HVS_OK;
    }
    /* EXECABORT (or a nil array): nothing of the transaction was applied; not a lost
     * connection, so not resent */
    int aborted = rep->type == REDIS_REPLY_ERROR;
    char why[200];
    snprintf(why, sizeof why, "%s", aborted ? rep->str : "transaction not executed");
    freeReplyObject(rep);
    hvs_err_set(err, HVS_EREDIS, "reply_error", "Redis %s:%d: a transaction of %zu commands: %s",
                r->host, r->port, b->n, why);
    return EXEC_REFUSED;
}

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
        return hvs_err_set(err, HVS_EREDIS, "unreachable", "Redis %s:%d: not connected", r->host,
                           r->port);
    if (b->atomic)
        return exec_atomic_once(r, b, err);
    for (size_t i = 0; i < b->n; i++)
        if (redisAppendFormattedCommand(r->ctx, b->arena + b->cmds[i].off, b->cmds[i].len) !=
            REDIS_OK)
            return hvs_err_set(err, HVS_EREDIS, "unreachable", "append: %s", r->ctx->errstr);
    for (size_t i = 0; i < b->n; i++) {
        void *reply = NULL;
        if (redisGetReply(r->ctx, &reply) != REDIS_OK || !reply)
            return hvs_err_set(err, HVS_EREDIS, "unreachable", "Redis %s:%d: %s", r->host, r->port,
                               r->ctx->errstr);
        b->replies[b->nreplies++] = reply;
        if (((redisReply *)reply)->type == REDIS_REPLY_ERROR)
            b->errors++;
    }
    return HVS_OK;
}

/* Load again every distinct script whose EVALSHA answered NOSCRIPT (once each, not once per
 * command). Returns how many were loaded, or <0. */
static int reload_scripts(hvs_redis_t *r, hvs_redis_batch_t *b, hvs_err_t *err) {
    const hvs_redis_script_t *done[16];
    int ndone = 0;
    for (size_t i = 0; i < b->nreplies; i++) {
        redisReply *rep = b->replies[i];
        const hvs_redis_script_t *s = b->cmds[i].script;
        if (!s || rep->type != REDIS_REPLY_ERROR || strncmp(rep->str, "NOSCRIPT", 8) != 0)
            continue;
        int seen = 0;
        for (int k = 0; k < ndone && !seen; k++)
            seen = done[k] == s || strcmp(done[k]->sha, s->sha) == 0;
        if (seen)
            continue;
        hvs_redis_script_t copy = *s; /* same source, same SHA: the batch's bytes stay valid */
        int rc = hvs_redis_script_load(r, &copy, err);
        if (rc != HVS_OK)
            return rc;
        hvs_log_fields(HVS_LOG_INFO, "redis", "script loaded again after NOSCRIPT",
                       HVS_LFS("script", s->name ? s->name : ""));
        if (ndone < (int)(sizeof done / sizeof done[0]))
            done[ndone++] = s;
    }
    return ndone;
}

static int batch_exec(hvs_redis_t *r, hvs_redis_batch_t *b, hvs_err_t *err) {
    int noscript_retried = 0;
    for (;;) {
        int rc = exec_once(r, b, err);
        if (rc == HVS_OK) {
            if (b->errors && !noscript_retried) {
                int reloaded = reload_scripts(r, b, err);
                if (reloaded < 0)
                    return reloaded;
                if (reloaded > 0) {
                    noscript_retried = 1; /* the same SHA is valid again: resend once */
                    continue;
                }
            }
            return HVS_OK;
        }
        if (rc == HVS_ENOMEM)
            return rc;
        if (rc == EXEC_REFUSED)
            return HVS_EREDIS;
        hvs_log_fields(HVS_LOG_WARN, "redis", "connection lost, batch will be resent",
                       HVS_LFS("error", err ? err->msg : ""), HVS_LFI("commands", b->n));
        rc = connect_retry(r, err);
        if (rc)
            return rc;
        r->reconnects++;
    }
}

int hvs_redis_batch_exec(hvs_redis_t *r, hvs_redis_batch_t *b, hvs_err_t *err) {
    sigpipe_guard_t g;
    sigpipe_block(&g);
    int rc = batch_exec(r, b, err);
    sigpipe_unblock(&g);
    return rc;
}

int hvs_redis_batch_exec_atomic(hvs_redis_t *r, hvs_redis_batch_t *b, hvs_err_t *err) {
    b->atomic = true;
    int rc = hvs_redis_batch_exec(r, b, err);
    b->atomic = false;
    return rc;
}

const redisReply *hvs_redis_batch_reply(const hvs_redis_batch_t *b, size_t i) {
    return i < b->nreplies ? b->replies[i] : NULL;
}

size_t hvs_redis_batch_errors(const hvs_redis_batch_t *b) { return b->errors; }

int hvs_redis_command(hvs_redis_t *r, redisReply **reply, hvs_err_t *err, const char *fmt, ...) {
    if (!r->scratch && !(r->scratch = hvs_redis_batch_new()))
        return hvs_err_set(err, HVS_ENOMEM, NULL, "redis: out of memory");
    hvs_redis_batch_t *b = r->scratch;
    hvs_redis_batch_reset(b);
    char *cmd = NULL;
    va_list ap;
    va_start(ap, fmt);
    int len = redisvFormatCommand(&cmd, fmt, ap);
    va_end(ap);
    if (len < 0)
        return hvs_err_set(err, HVS_EINVAL, NULL, "redis: bad command format \"%s\"", fmt);
    int rc = push(b, cmd, (size_t)len);
    redisFreeCommand(cmd);
    if (rc == HVS_OK)
        rc = hvs_redis_batch_exec(r, b, err);
    if (rc == HVS_OK && reply) {
        *reply = b->replies[0]; /* handed over: the caller frees it */
        b->replies[0] = NULL;
    } else if (rc == HVS_ENOMEM) {
        hvs_err_set(err, HVS_ENOMEM, NULL, "redis: out of memory");
    }
    hvs_redis_batch_reset(b);
    return rc;
}

int hvs_redis_key(char *buf, size_t buflen, const char *building, hvs_err_t *err,
                  const char *suffix_fmt, ...) {
    int rc = hvs_id_check(building, "building id of a Redis key", err);
    if (rc)
        return rc;
    int n = snprintf(buf, buflen, "hvs:{%s}:", building);
    if (n < 0 || (size_t)n >= buflen)
        return hvs_err_set(err, HVS_EINVAL, "key_too_long",
                           "Redis key of building %.100s does not fit %zu bytes", building, buflen);
    va_list ap;
    va_start(ap, suffix_fmt);
    int m = vsnprintf(buf + n, buflen - (size_t)n, suffix_fmt, ap);
    va_end(ap);
    if (m < 0 || (size_t)(n + m) >= buflen)
        return hvs_err_set(err, HVS_EINVAL, "key_too_long",
                           "Redis key %.100s... does not fit %zu bytes", buf, buflen);
    return n + m;
}

/* Argument `want` (0-based) of the RESP-encoded command at `c`, or "?" (into out). */
static void cmd_arg(const char *c, size_t len, int want, char *out, size_t cap) {
    const char *p = c, *end = c + len;
    snprintf(out, cap, "?");
    if (p >= end || *p != '*')
        return;
    p = memchr(p, '\n', (size_t)(end - p));
    for (int i = 0; p && ++p < end && *p == '$'; i++) {
        size_t n = (size_t)strtoull(p + 1, NULL, 10);
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl || nl + 1 + n > end)
            return;
        if (i == want) {
            size_t k = n < cap - 1 ? n : cap - 1;
            memcpy(out, nl + 1, k);
            out[k] = '\0';
            return;
        }
        p = nl + 1 + n + 1; /* past the bulk's "\r\n": at its '\n' */
    }
}

int hvs_redis_batch_check(const hvs_redis_batch_t *b, hvs_err_t *err) {
    if (!b->errors)
        return HVS_OK;
    for (size_t i = 0; i < b->nreplies && i < b->n; i++) {
        const redisReply *rep = b->replies[i];
        if (!rep || rep->type != REDIS_REPLY_ERROR)
            continue;
        char cmd[32], key[300];
        cmd_arg(b->arena + b->cmds[i].off, b->cmds[i].len, 0, cmd, sizeof cmd);
        cmd_arg(b->arena + b->cmds[i].off, b->cmds[i].len, b->cmds[i].script ? 3 : 1, key,
                sizeof key);
        return hvs_err_set(err, HVS_EREDIS, "reply_error",
                           "%zu of %zu commands refused by Redis; the first: %s %s: %.120s",
                           b->errors, b->n, cmd, key, rep->str ? rep->str : "");
    }
    return hvs_err_set(err, HVS_EREDIS, "reply_error", "%zu of %zu commands refused by Redis",
                       b->errors, b->n);
}
