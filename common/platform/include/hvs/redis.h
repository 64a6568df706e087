/*
 * redis.h - Redis client for worker state: URL connect, reconnect with backoff, pipelined
 * batches, Lua scripts by SHA, and the key layout.
 *
 * Key layout: every key of a building's state is "hvs:{<building_id>}:<rest>" so Redis Cluster
 * keeps a building on one slot (the braces are the hash tag). Modules document their <rest>.
 *
 * Batches: commands are appended to a hvs_redis_batch_t and sent in one write, replies read in
 * order (pipelining). If the connection breaks during hvs_redis_batch_exec, the client reconnects
 * with exponential backoff (opts) and resends the WHOLE batch, so commands in a batch must be
 * idempotent (docs/design.md §5: state is addressed by event hour; applying twice = applying once).
 * A reply of type error (e.g. WRONGTYPE) is not retried: it is reported per command.
 * EVALSHA that answers NOSCRIPT (Redis restarted, SCRIPT FLUSH) is answered by loading the script
 * and resending the batch.
 *
 * Ownership: hvs_redis_t and batches are _new/_destroy (NULL-safe). Replies are owned by the
 * batch and valid until the next exec/reset/destroy. Script structs are the caller's (usually
 * static); the client fills their sha.
 * Thread-safety: none; one client per thread.
 * Errors: 0 or negative hvs_rc_t; HVS_EREDIS with reason "unreachable" after the retry budget,
 * "auth" (wrong/missing password: not retried), "bad_db" (SELECT refused: not retried),
 * "reply_error" when a command's reply is an error; HVS_ECONFIG "bad_url" for a bad URL, with a
 * message that names the URL with its password replaced by "***".
 * Allocation: batch commands are encoded into one arena that is kept across reset, so a batch
 * reused with hvs_redis_batch_add / _add_script allocates nothing once it has grown (hiredis
 * still allocates each reply); hvs_redis_batch_addf and hvs_redis_command allocate one
 * temporary per command for hiredis's formatter.
 */
#ifndef HVS_REDIS_H
#define HVS_REDIS_H

#include <hiredis/hiredis.h>
#include <stddef.h>

#include "hvs/err.h"

typedef struct hvs_redis hvs_redis_t;
typedef struct hvs_redis_batch hvs_redis_batch_t;

typedef struct hvs_redis_opts {
    int connect_timeout_ms; /* 0 = 2000 */
    int command_timeout_ms; /* 0 = 5000 */
    int retry_initial_ms;   /* first backoff; 0 = 50 */
    int retry_max_ms;       /* backoff cap; 0 = 2000 */
    int retry_budget_ms;    /* give up after this long unreachable; 0 = 30000 */
} hvs_redis_opts_t;

typedef struct hvs_redis_script {
    const char *name;   /* for logs */
    const char *source; /* Lua text */
    char sha[41];       /* filled by the client */
} hvs_redis_script_t;

/*
 * Connect to "redis://[[user]:password@]host[:port][/db]" (host may be "[ipv6]"; user and
 * password may be %-encoded; userinfo without ':' is a password). AUTH (AUTH user password when a
 * user is named) and SELECT are sent on every (re)connect. A server that is down or still
 * loading is retried with backoff within opts->retry_budget_ms; a wrong password is not.
 * opts may be NULL. On failure *out is untouched.
 */
int hvs_redis_connect(const char *url, const hvs_redis_opts_t *opts, hvs_redis_t **out,
                      hvs_err_t *err);
void hvs_redis_destroy(hvs_redis_t *r);

/* URL parsed into parts (for tests and the effective-config log); the password is never logged;
 * the user name, if any, is not returned. */
int hvs_redis_url_parse(const char *url, char *host, size_t hostlen, int *port, char *password,
                        size_t pwlen, int *db, hvs_err_t *err);

/* "redis://user:***@host..." for logs: url with its password masked (truncated to fit). */
int hvs_redis_url_redact(const char *url, char *buf, size_t buflen);

/* One command with reconnect/retry (same rules as a batch of one; the client reuses one internal
 * batch). *reply is the caller's to freeReplyObject; reply NULL discards it. */
int hvs_redis_command(hvs_redis_t *r, redisReply **reply, hvs_err_t *err, const char *fmt, ...);

/* Load (SCRIPT LOAD) and remember the sha in s->sha. */
int hvs_redis_script_load(hvs_redis_t *r, hvs_redis_script_t *s, hvs_err_t *err);

hvs_redis_batch_t *hvs_redis_batch_new(void);
void hvs_redis_batch_destroy(hvs_redis_batch_t *b);
/* Forget commands and replies, keep buffers (no allocation in steady state). */
void hvs_redis_batch_reset(hvs_redis_batch_t *b);
/* Append a command given as an argv (binary-safe); arguments are copied. */
int hvs_redis_batch_add(hvs_redis_batch_t *b, int argc, const char **argv, const size_t *argvlen);
/* Append a command in hiredis format ("HSET %s %s %b"). */
int hvs_redis_batch_addf(hvs_redis_batch_t *b, const char *fmt, ...);
/* Append EVALSHA of a loaded script with keys then args; HVS_EINVAL if s was never loaded. */
int hvs_redis_batch_add_script(hvs_redis_batch_t *b, const hvs_redis_script_t *s, int nkeys,
                               const char **keys, int nargs, const char **args,
                               const size_t *argslen);
size_t hvs_redis_batch_size(const hvs_redis_batch_t *b);
/*
 * Send every command in one pipeline and read every reply. 0 if all replies arrived (some may
 * be error replies: check hvs_redis_batch_reply, or use hvs_redis_batch_errors). Reconnects and
 * resends on connection loss within the retry budget.
 */
int hvs_redis_batch_exec(hvs_redis_t *r, hvs_redis_batch_t *b, hvs_err_t *err);
/*
 * The same, as one transaction (MULTI ... EXEC): Redis applies every command or none, and no
 * other client sees a part of it. The replies are the commands' own, as after
 * hvs_redis_batch_exec. A command refused while queued (wrong arity) aborts the transaction:
 * HVS_EREDIS "reply_error", nothing applied. On connection loss the whole transaction is resent
 * (it was applied entirely or not at all; commands must still be idempotent, for the case where
 * the connection broke after EXEC ran but before its reply arrived).
 */
int hvs_redis_batch_exec_atomic(hvs_redis_t *r, hvs_redis_batch_t *b, hvs_err_t *err);
/* Reply i (0-based) of the last exec; NULL if out of range. Owned by the batch. */
const redisReply *hvs_redis_batch_reply(const hvs_redis_batch_t *b, size_t i);
/* Number of error replies in the last exec. */
size_t hvs_redis_batch_errors(const hvs_redis_batch_t *b);

/* Reconnections since creation (metrics, tests). */
unsigned long hvs_redis_reconnects(const hvs_redis_t *r);

/*
 * Build "hvs:{<building>}:<suffix...>" into buf (suffix printf-style). Returns the length, or
 * HVS_EINVAL with err filled (the building id and what is wrong, or the key that does not
 * fit): the building id must pass hvs_id_check (ids.h), so no brace can move the key to
 * another building's slot. Workers validate ids where records enter; this check is the last
 * line of defence, and its result must be checked (a key not built must not be written).
 */
int hvs_redis_key(char *buf, size_t buflen, const char *building, hvs_err_t *err,
                  const char *suffix_fmt, ...) HVS_PRINTF(5, 6) HVS_WARN_UNUSED;

/*
 * After hvs_redis_batch_exec returned 0: 0 if no reply was an error, else HVS_EREDIS
 * "reply_error" with a message naming how many commands were refused and the first of them:
 * its command, its key and Redis's answer ("HSET hvs:{b}:agg:mk: WRONGTYPE ...").
 */
int hvs_redis_batch_check(const hvs_redis_batch_t *b, hvs_err_t *err);

#endif
