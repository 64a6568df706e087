/*
 * At-least-once across shutdowns, over a real hvs-devbroker: a consumer process (this binary in
 * "child" mode, started through hvs_app like every worker) processes a stream of 100k messages,
 * writing each processed id to a file before committing. It is sent SIGTERM mid-stream (must
 * finish its batch, commit, leave, exit 0) and restarted; then SIGKILLed mid-stream and
 * restarted. Every id must be processed at least once and none skipped (count and checksum);
 * after the graceful stop nothing is processed twice, so the committed offsets were exactly the
 * processed ones.
 */
#include <signal.h>
#include <sys/wait.h>

#include "hvs/app.h"
#include "hvs/kafka.h"
#include "hvs/log.h"
#include "hvs_test.h"

#define TOTAL 100000
#define TOPIC "readings.raw"

/* Child: consume TOPIC, append ids to `path`, commit after each batch. */
static int child(const char *path) {
    hvs_app_t app;
    hvs_app_spec_t spec = {
        .worker = "sigterm-child", .summary = "test", .no_http = true, .quiet = true};
    hvs_err_t err;
    if (hvs_app_init(&app, &spec, 0, NULL, &err) != 0)
        return 3;
    hvs_log_set_level(HVS_LOG_WARN);
    hvs_kafka_conf_t kc;
    hvs_app_kafka_conf(&app, &kc);
    const char *topics[] = {TOPIC};
    hvs_consumer_t *c;
    if (hvs_consumer_new(&kc, topics, 1, NULL, &c, &err) != 0)
        return 4;
    FILE *out = fopen(path, "a");
    if (!out)
        return 5;
    static rd_kafka_message_t *msgs[500];
    while (hvs_app_running()) {
        size_t n;
        hvs_consumer_poll_batch(c, msgs, 500, 100, &n, &err);
        for (size_t i = 0; i < n; i++) {
            uint32_t id;
            memcpy(&id, msgs[i]->payload, sizeof id);
            fprintf(out, "%u\n", id);
        }
        fflush(out); /* the batch's effect is durable (in the kernel) before the commit */
        if (hvs_consumer_commit_batch(c, msgs, n, &err) != 0)
            fprintf(stderr, "commit failed: %s\n", err.msg);
        hvs_consumer_release(msgs, n);
        usleep(2000); /* a worker's processing time: lets the signal land mid-stream */
    }
    hvs_consumer_close(c, &err);
    hvs_consumer_destroy(c);
    fclose(out);
    hvs_app_fini(&app);
    return 0;
}

static pid_t start_child(const char *self, const char *path) {
    pid_t pid = fork();
    if (pid == 0) {
        execl(self, self, "child", path, (char *)NULL);
        _exit(127);
    }
    return pid;
}

static long count_lines(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    long n = 0;
    int ch;
    while ((ch = fgetc(f)) != EOF)
        n += ch == '\n';
    fclose(f);
    return n;
}

/* Wait until the file has at least `lines` lines; 0 ok. */
static int wait_lines(const char *path, long lines, int timeout_ms) {
    int64_t deadline = hvs_test_now_ms() + timeout_ms;
    while (hvs_test_now_ms() < deadline) {
        if (count_lines(path) >= lines)
            return 0;
        usleep(50000);
    }
    return -1;
}

typedef struct tally {
    long lines, distinct, duplicates;
    unsigned long long checksum; /* of distinct ids */
} tally_t;

static tally_t tally(const char *path) {
    static unsigned char seen[TOTAL];
    memset(seen, 0, sizeof seen);
    tally_t t = {0, 0, 0, 0};
    FILE *f = fopen(path, "r");
    unsigned id;
    while (f && fscanf(f, "%u", &id) == 1) {
        t.lines++;
        if (id >= TOTAL)
            continue;
        if (seen[id]++)
            t.duplicates++;
        else {
            t.distinct++;
            t.checksum += id;
        }
    }
    if (f)
        fclose(f);
    return t;
}

static int run_scenario(const char *self, const char *brokers, const char *group, int sig) {
    char path[128];
    snprintf(path, sizeof path, "/tmp/hvs-sigterm-%d-%s.txt", (int)getpid(), group);
    unlink(path);
    setenv("HVS_KAFKA_GROUP", group, 1);
    pid_t pid = start_child(self, path);
    HVS_REQUIRE(pid > 0, "fork");
    HVS_CHECK(wait_lines(path, 20000, 60000) == 0, "%s: first consumer got going", group);
    kill(pid, sig);
    int status;
    waitpid(pid, &status, 0);
    long after_stop = count_lines(path);
    if (sig == SIGTERM)
        HVS_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s: graceful exit (status %d)",
                  group, status);
    HVS_CHECK(after_stop < TOTAL, "%s: stopped mid-stream (%ld processed)", group, after_stop);
    pid = start_child(self, path);
    HVS_CHECK(wait_lines(path, TOTAL, 60000) == 0, "%s: restart finished the stream", group);
    usleep(300000); /* anything replayed twice would show up now */
    kill(pid, SIGTERM);
    waitpid(pid, &status, 0);
    tally_t t = tally(path);
    unsigned long long want_sum = (unsigned long long)TOTAL * (TOTAL - 1) / 2;
    HVS_CHECK_EQ_INT(t.distinct, TOTAL);
    HVS_CHECK(t.checksum == want_sum, "%s: checksum %llu, want %llu", group, t.checksum, want_sum);
    if (sig == SIGTERM)
        HVS_CHECK_EQ_INT(t.duplicates, 0);
    fprintf(stderr, "%s: stopped after %ld, %ld lines, %ld duplicates\n", group, after_stop,
            t.lines, t.duplicates);
    unlink(path);
    return 0;
}

/* The fixture the cases share, started by the first case that needs it: a devbroker whose
 * TOPIC holds the TOTAL ids, and the settings the child consumers read. Each case consumes the
 * whole stream with its own group. */
static const char *self;
static hvs_test_proc_t broker;

static void stop_broker(void) { hvs_test_proc_stop(&broker); }

static const char *filled_broker(void) {
    if (broker.pid)
        return broker.addr;
    HVS_REQUIRE(hvs_test_devbroker_start(&broker, "--partitions 4") == 0, "devbroker");
    hvs_test_cleanup(stop_broker);
    hvs_kafka_conf_t kc = {.brokers = broker.addr, .client_id = "test"};
    hvs_producer_t *p;
    hvs_err_t err;
    HVS_REQUIRE(hvs_producer_new(&kc, &p, &err) == 0, "producer");
    for (uint32_t id = 0; id < TOTAL; id++) {
        char key[16];
        int klen = snprintf(key, sizeof key, "b%u", id % 97);
        HVS_REQUIRE(hvs_producer_send(p, TOPIC, RD_KAFKA_PARTITION_UA, key, (size_t)klen, &id,
                                      sizeof id, &err) == 0,
                    "send");
    }
    HVS_REQUIRE(hvs_producer_flush(p, 30000, &err) == 0, "flush: %s", err.msg);
    hvs_producer_destroy(p);

    setenv("HVS_KAFKA_BROKERS", broker.addr, 1);
    setenv("HVS_KAFKA_FETCH_WAIT_MAX_MS", "10", 1);
    /* The killed member holds its partitions until its session expires: keep that short. */
    setenv("HVS_KAFKA_SESSION_TIMEOUT_MS", "6000", 1);
    return broker.addr;
}

static void test_sigterm(void) { run_scenario(self, filled_broker(), "sigterm", SIGTERM); }
static void test_sigkill(void) { run_scenario(self, filled_broker(), "sigkill", SIGKILL); }

static const hvs_test_case_t cases[] = {
    {"sigterm_commits_processed_no_duplicates_none_skipped", test_sigterm},
    {"sigkill_reprocesses_none_skipped", test_sigkill},
    HVS_TEST_CASES_END,
};

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "child") == 0)
        return child(argv[2]);
    hvs_log_init("test", HVS_LOG_WARN, NULL);
    self = argv[0];
    return hvs_test_main(cases, argc, argv);
}
