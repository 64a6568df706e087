/*
 * hvs_test.h - support for tests and benchmarks: assertions and real services on free ports.
 *
 * Services: hvs_test_redis_start starts a real redis-server (no persistence) on a free loopback
 * port; hvs_test_devbroker_start starts the real hvs-devbroker and reads its two address lines.
 * Both wait until the service answers, and hvs_test_proc_stop sends SIGTERM and reaps it (SIGKILL
 * after 5 s). Processes are also killed if the test process dies (PR_SET_PDEATHSIG).
 *
 * Assertions: HVS_CHECK prints file:line and the message and counts a failure; the test keeps
 * going. hvs_test_done() prints "N passed, M failed" and returns the exit status.
 *
 * Named cases: a test file lists its cases in a table and main is hvs_test_main (below); every
 * case runs alone (`./test_x case_name`), `./test_x --list` names them. A case that needs
 * services starts them itself, or through a fixture the file starts lazily and registers with
 * hvs_test_cleanup.
 *
 * Reading topics back: hvs_test_tail (a fresh consumer, every message from the beginning until N
 * or a timeout) and hvs_test_tail_json (the same through `hvsctl tail`, as JSON objects).
 * Thread-safety: none; tests are single-threaded around these calls.
 */
#ifndef HVS_TEST_H
#define HVS_TEST_H

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

extern int hvs_test_passed;
extern int hvs_test_failed;

#define HVS_CHECK(cond, ...)                                                                       \
    do {                                                                                           \
        if (cond) {                                                                                \
            hvs_test_passed++;                                                                     \
        } else {                                                                                   \
            hvs_test_failed++;                                                                     \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                        \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
        }                                                                                          \
    } while (0)

/* Fatal: setup that the rest of the test cannot do without. */
#define HVS_REQUIRE(cond, ...)                                                                     \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "FATAL %s:%d: %s: ", __FILE__, __LINE__, #cond);                       \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

#define HVS_CHECK_EQ_INT(a, b)                                                                     \
    HVS_CHECK((long long)(a) == (long long)(b), "%s = %lld, expected %s = %lld", #a,               \
              (long long)(a), #b, (long long)(b))
static inline int hvs_test_streq(const char *a, const char *b) {
    return a && b && strcmp(a, b) == 0;
}
static inline const char *hvs_test_str(const char *s) { return s ? s : "(null)"; }
#define HVS_CHECK_EQ_STR(a, b)                                                                     \
    HVS_CHECK(hvs_test_streq((a), (b)), "%s = \"%s\", expected \"%s\"", #a, hvs_test_str(a),       \
              hvs_test_str(b))
#define HVS_CHECK_NEAR(a, b, tol)                                                                  \
    HVS_CHECK(fabs((double)(a) - (double)(b)) <= (tol), "%s = %.9g, expected %.9g", #a,            \
              (double)(a), (double)(b))

/* Print the closing line and return 0 if nothing failed. */
int hvs_test_done(void);

/* ---- named cases ------------------------------------------------------------------------- */

typedef struct hvs_test_case {
    const char *name;
    void (*fn)(void);
} hvs_test_case_t;

/* Ends a case table. */
#define HVS_TEST_CASES_END                                                                         \
    { NULL, NULL }

/*
 * A test's main: runs every case of `cases` (terminated by HVS_TEST_CASES_END) in order, or only
 * those named on the command line (in the order named); `--list` prints the names and runs
 * nothing. Each case's name is printed ("== name") before it runs. After the cases, the cleanups
 * registered with hvs_test_cleanup run (last first). Returns hvs_test_done()'s status, or 2 for
 * an unknown case name.
 */
int hvs_test_main(const hvs_test_case_t *cases, int argc, char **argv);

/* Run fn after the cases (fixtures started lazily by a case: stop services, remove files).
 * At most 16. */
void hvs_test_cleanup(void (*fn)(void));

typedef struct hvs_test_proc {
    pid_t pid;
    int port;          /* main port */
    char addr[128];    /* redis: "redis://127.0.0.1:PORT"; devbroker: "127.0.0.1:PORT" */
    char control[128]; /* devbroker: control channel "127.0.0.1:PORT"; else "" */
    char dir[256];     /* scratch directory of the process (removed on stop) */
} hvs_test_proc_t;

/* A TCP port that was free a moment ago on 127.0.0.1. */
int hvs_test_free_port(void);

/* 0 on success; on failure prints why and returns -1. `port` 0 = pick a free one (a fixed port
 * is for restart tests that need the same address again). */
int hvs_test_redis_start(hvs_test_proc_t *p, int port);
/* `args` extra command-line words (may be NULL), e.g. "--partitions 4". */
int hvs_test_devbroker_start(hvs_test_proc_t *p, const char *args);
/* Start `cmd` through /bin/sh (exec'd, so p->pid is the program itself: SIGKILL hits it), stdout
 * and stderr appended to `log`. For workers under test. 0 or -1. */
int hvs_test_spawn(hvs_test_proc_t *p, const char *cmd, const char *log);
/* Has the process exited? (reaps it; *status = exit code or 128 + signal) */
bool hvs_test_proc_exited(hvs_test_proc_t *p, int *status);
/* SIGTERM, wait up to 5 s, then SIGKILL. Safe on a stopped/zeroed struct. */
void hvs_test_proc_stop(hvs_test_proc_t *p);
/* SIGKILL now and reap (crash tests). */
void hvs_test_proc_kill(hvs_test_proc_t *p);

/* Send one line to the devbroker control channel; the reply line (without newline) goes into
 * reply. Returns 0 when the reply starts with "ok". */
int hvs_test_devbroker_control(const hvs_test_proc_t *p, const char *line, char *reply,
                               size_t replylen);

/*
 * Run a command through /bin/sh -c, feeding `input` (may be NULL) to stdin and capturing stdout
 * into a malloc'd *out (may be NULL to discard). Returns the exit status (or -1).
 */
int hvs_test_run(const char *cmd, const char *input, size_t inlen, char **out, size_t *outlen);

/*
 * One HTTP request over loopback with libcurl: returns the status (-1 when no answer). The body
 * goes into *out (malloc'd, NUL-terminated; caller frees; `out` may be NULL), the content type
 * into ctype (may be NULL). `payload` NULL = no body.
 */
long hvs_test_http(const char *method, const char *url, const char *payload, size_t plen,
                   char **out, char *ctype, size_t ctlen);

/* Features only heat's models may read (heating physics, comfort, rooms): what the other
 * profiles' forecast_drop must leave out (data/profiles/profiles.ini), listed here apart from it.
 * NULL-terminated. */
extern const char *const hvs_test_heating_physics[];

/* ---- reading topics back ---------------------------------------------------------------- */

struct rd_kafka_message_s; /* rd_kafka_message_t, <librdkafka/rdkafka.h> */

/* What hvs_test_tail reads and when it stops. Zero fields take the defaults named. */
typedef struct hvs_test_tail {
    const char *brokers;       /* required: "host:port" */
    const char *const *topics; /* required: effective names */
    size_t ntopics;            /* 0 = 1 */
    const char *group;         /* NULL = no group (see hvs_test_tail), or when a topic does not
                                    exist yet a new one ("hvs-test-tail-<pid>-<n>") */
    size_t want;               /* stop once this many arrived; 0 = only on idle or timeout */
    int timeout_ms;            /* overall limit; 0 = 20000 */
    int idle_ms;               /* stop after this long without a message; 0 = never */
    int linger_ms;             /* after `want` arrived, one more poll this long: late
                                    duplicates show (they are passed on and counted) */
    int assign_ms;             /* > 0: first wait this long for the group's assignment (fatal
                                    if none); a groupless read is assigned at once */
    int poll_ms;               /* one poll's wait; 0 = 100 */
    size_t batch;              /* messages per poll; 0 = 64, at most 512 */
    bool commit;               /* commit each batch after the callback saw it */
    bool to_end;               /* want = what the topics held when the read started (the sum
                                    over partitions of high minus low watermarks): "all of it"
                                    without waiting out a timeout to prove nothing else came */
} hvs_test_tail_t;

/* Called for each message in order of arrival; the message is only valid during the call. */
typedef void (*hvs_test_tail_fn)(void *opaque, const struct rd_kafka_message_s *m);

/*
 * Read every message of t->topics from the beginning with a fresh consumer (fetch.wait.max.ms
 * 10) until t->want arrived (t->to_end: all the topics held at the start), t->idle_ms passed
 * without one, or t->timeout_ms. Without t->group or t->commit, and when every topic exists,
 * the consumer joins no group: it assigns every partition itself (a group's first join costs
 * the mock broker 3 s); otherwise it subscribes through the common kafka layer. Calls fn (may be NULL) for each. Returns how many were read. The consumer is
 * closed and freed before it returns; nothing is left for the caller to free. Fatal (exit 1)
 * when the consumer cannot be created.
 */
size_t hvs_test_tail(const hvs_test_tail_t *t, hvs_test_tail_fn fn, void *opaque);

/*
 * Every message of `topic` from the beginning, read by the operator's tool (`hvsctl tail
 * --from-beginning`, stops at the end of the topic): a JSON array of hvsctl tail's objects
 * ("key", "value", "partition", "offset", ...; for dead letters "reason" etc.). `env` is put
 * before the command ("HVS_KAFKA_BROKERS=... "); `extra_args` (may be NULL) after it.
 * Returns a new array (the caller json_decref's it), or NULL with a message on stderr when
 * hvsctl fails. Lines that are not JSON are reported and skipped.
 */
struct json_t *hvs_test_tail_json(const char *env, const char *topic, const char *extra_args);

/* Split `out` (a tool's stdout; modified in place) into lines parsed as JSON: js[i] is the i-th
 * line's value, NULL where a line is not JSON (at most `max` are kept). Returns the number of
 * lines. The caller frees the values with hvs_test_json_lines_free(js, min(count, max)). */
int hvs_test_json_lines(char *out, struct json_t **js, int max);
void hvs_test_json_lines_free(struct json_t **js, int n);

/* Monotonic milliseconds. */
int64_t hvs_test_now_ms(void);

/* Value of a sample in a Prometheus text exposition ("name" or "name{labels}" exactly as
 * written), or -1 when absent. */
double hvs_test_metric(const char *text, const char *name);
/* Upper bound of the bucket holding quantile q of a histogram's samples, -1 when empty. */
double hvs_test_hist_quantile(const char *text, const char *name, double q);

/* One line "consume loop by phase (s): poll .. process .. publish_wait .. state_write .. commit .."
 * from a stage's hvs_<stage>_phase_seconds_total in a /metrics text. */
void hvs_test_print_phases(const char *text, const char *stage);
/* User + system CPU seconds a process has used so far (-1 when it is gone). */
double hvs_test_cpu_seconds(pid_t pid);
/* A "Name:  N kB" field of /proc/<pid>/status (e.g. "VmHWM" peak resident, "VmRSS"), in kB;
 * -1 when the process or the field is not there. */
long hvs_test_status_kb(pid_t pid, const char *field);
/* used_memory of the redis-server `redis` (INFO memory), bytes; 0 when it does not answer. */
double hvs_test_redis_used(const hvs_test_proc_t *redis);
/* FLUSHALL on the redis-server `redis`: 0, or -1 when it did not answer +OK. */
int hvs_test_redis_flushall(const hvs_test_proc_t *redis);
/* Sum over `topic`'s partitions of the offsets `stage` stored with its state in the Redis at
 * `redis_url` (hvs:stage:<stage>:<P>, field o:<topic>, stage.h): how far the stage applied it. */
long long hvs_test_stage_offsets(const char *redis_url, const char *stage, const char *topic);
/* Print Redis's bytes by key kind (MEMORY USAGE, exact), divided by `per` ("<label>: agg:s 5.1,
 * agg:mk 2.0 KB per apartment"): a kind is the key without "hvs:", its building tag and its last
 * id ("hvs:{B}:sc:a:<apt>" is "sc:a", "hvs:stage:scorer:3" is "stage:scorer"). */
void hvs_test_redis_kinds(const char *redis_url, const char *label, double per, const char *unit);
/* The median of v[0..n) (sorts v in place); n > 0. */
double hvs_test_median(double *v, int n);

/* A fixed pseudo-random sequence (xorshift64*): *state is the generator, seeded by the test, so
 * a failure reproduces. */
uint64_t hvs_test_rand(uint64_t *state);
/* A uniform draw in [0, 1) decided by (seed, salt, keys[0..n)) alone (splitmix64's finaliser
 * folded over the keys from the last, then salt, then seed): a seeded stream's choices do not
 * depend on the order it is generated in. n >= 1. */
double hvs_test_draw(uint64_t seed, int salt, const int64_t *keys, size_t n);
/* Damage a wire message in place for differential tests of readers: kind 0 cuts it at a random
 * byte of the body, 1 appends a random byte, 2 flips one bit of the body, 3 inserts a random
 * byte into it. msg holds len bytes (more than the 5-byte header) and room for one more; returns
 * the new length and *at, the body offset it changed. */
size_t hvs_test_damage(unsigned char *msg, size_t len, int kind, uint64_t *state, size_t *at);

#endif
