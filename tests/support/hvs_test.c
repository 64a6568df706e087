#include "hvs_test.h"

#include "hvs/redis.h"
#include "hvs/topics.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "hvs/err.h"
#include "hvs/kafka.h"

int hvs_test_passed;
int hvs_test_failed;

int hvs_test_done(void) {
    printf("%d passed, %d failed\n", hvs_test_passed, hvs_test_failed);
    fflush(stdout);
    return hvs_test_failed == 0 && hvs_test_passed > 0 ? 0 : 1;
}

const char *const hvs_test_heating_physics[] = {"hdh",
                                                "hdh_roll_24_mean",
                                                "temp_x_hour",
                                                "temp_x_radiation",
                                                "room_temp_c",
                                                "setpoint_c",
                                                "comfort_gap_c",
                                                "comfort_gap_prev",
                                                "valve_mean_pct",
                                                "room_temp_std_c",
                                                "room_flat_hours",
                                                NULL};

/* ---- named cases ------------------------------------------------------------------------- */

static void (*cleanups[16])(void);
static int ncleanups;

void hvs_test_cleanup(void (*fn)(void)) {
    HVS_REQUIRE(ncleanups < (int)(sizeof cleanups / sizeof cleanups[0]), "too many cleanups");
    cleanups[ncleanups++] = fn;
}

/* Each case ends with its wall time: where a suite's time goes shows in every CI log. */
static void run_case(const hvs_test_case_t *c) {
    printf("== %s\n", c->name);
    fflush(stdout);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    c->fn();
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("== %s: %.1f s\n", c->name,
           (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    fflush(stdout);
    fflush(stderr);
}

int hvs_test_main(const hvs_test_case_t *cases, int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--list") == 0) {
        for (const hvs_test_case_t *c = cases; c->name; c++)
            printf("%s\n", c->name);
        return 0;
    }
    for (int i = 1; i < argc; i++) {
        const hvs_test_case_t *c = cases;
        while (c->name && strcmp(c->name, argv[i]) != 0)
            c++;
        if (!c->name) {
            fprintf(stderr, "%s: no case \"%s\" (--list names them)\n", argv[0], argv[i]);
            return 2;
        }
    }
    if (argc > 1) {
        for (int i = 1; i < argc; i++)
            for (const hvs_test_case_t *c = cases; c->name; c++)
                if (strcmp(c->name, argv[i]) == 0)
                    run_case(c);
    } else {
        for (const hvs_test_case_t *c = cases; c->name; c++)
            run_case(c);
    }
    while (ncleanups > 0)
        cleanups[--ncleanups]();
    return hvs_test_done();
}

/* ---- reading topics back ---------------------------------------------------------------- */

/* Partitions of `topic` (0: it does not exist yet). */
static int partitions_of(rd_kafka_t *rk, const char *topic) {
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    int n = 0;
    if (rkt && rd_kafka_metadata(rk, 0, rkt, &md, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        md->topic_cnt == 1 && !md->topics[0].err)
        n = md->topics[0].partition_cnt;
    if (md)
        rd_kafka_metadata_destroy(md);
    if (rkt)
        rd_kafka_topic_destroy(rkt);
    return n;
}

/* Messages in the topics now: the sum over their partitions of high minus low watermarks. */
static size_t messages_in(rd_kafka_t *rk, const char *const *topics, size_t ntopics) {
    size_t n = 0;
    for (size_t i = 0; i < ntopics; i++) {
        int np = partitions_of(rk, topics[i]);
        for (int p = 0; p < np; p++) {
            int64_t lo = 0, hi = 0;
            HVS_REQUIRE(rd_kafka_query_watermark_offsets(rk, topics[i], p, &lo, &hi, 10000) == 0,
                        "tail: watermarks of %s [%d]", topics[i], p);
            n += (size_t)(hi - lo);
        }
    }
    return n;
}

/* A reader without a group: every partition of the topics assigned from the beginning. Joining
 * a new group costs the mock broker's initial rebalance delay (3 s) per read; a test reading
 * back a topic it does not commit on has no use for one. NULL when a topic does not exist yet
 * (a subscription picks it up once created). */
static rd_kafka_t *tail_assigned(const hvs_test_tail_t *t, size_t ntopics) {
    char errstr[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    const char *const props[][2] = {{"bootstrap.servers", t->brokers},
                                    {"group.id", "hvs-test-tail"}, /* required, never joined */
                                    {"client.id", "hvs-test-tail"},
                                    {"enable.auto.commit", "false"},
                                    {"fetch.wait.max.ms", "10"},
                                    {"log_level", "3"}};
    for (size_t i = 0; i < sizeof props / sizeof *props; i++)
        HVS_REQUIRE(rd_kafka_conf_set(conf, props[i][0], props[i][1], errstr, sizeof errstr) ==
                        RD_KAFKA_CONF_OK,
                    "tail conf %s: %s", props[i][0], errstr);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    HVS_REQUIRE(rk, "tail consumer: %s", errstr);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(16);
    for (size_t i = 0; i < ntopics; i++) {
        int np = partitions_of(rk, t->topics[i]);
        if (np == 0) {
            rd_kafka_topic_partition_list_destroy(l);
            rd_kafka_destroy(rk);
            return NULL;
        }
        for (int p = 0; p < np; p++)
            rd_kafka_topic_partition_list_add(l, t->topics[i], p)->offset =
                RD_KAFKA_OFFSET_BEGINNING;
    }
    HVS_REQUIRE(rd_kafka_assign(rk, l) == RD_KAFKA_RESP_ERR_NO_ERROR, "tail: assign");
    rd_kafka_topic_partition_list_destroy(l);
    return rk;
}

/* Up to max messages from the groupless reader, waiting at most wait_ms for the first. */
static size_t tail_poll_assigned(rd_kafka_t *rk, rd_kafka_message_t **msgs, size_t max,
                                 int wait_ms) {
    size_t n = 0;
    while (n < max) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, wait_ms);
        if (!m)
            break;
        wait_ms = 0;
        if (m->err) {
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                fprintf(stderr, "tail: %s\n", rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            continue;
        }
        msgs[n++] = m;
    }
    return n;
}

size_t hvs_test_tail(const hvs_test_tail_t *t, hvs_test_tail_fn fn, void *opaque) {
    static int groups;
    size_t ntopics = t->ntopics ? t->ntopics : 1;
    hvs_consumer_t *c = NULL;
    hvs_err_t err = {0};
    rd_kafka_t *rk = t->group || t->commit ? NULL : tail_assigned(t, ntopics);
    if (!rk) {
        char group[64];
        if (!t->group)
            snprintf(group, sizeof group, "hvs-test-tail-%d-%d", (int)getpid(), ++groups);
        hvs_kafka_conf_t kc = {.brokers = t->brokers,
                               .group = t->group ? t->group : group,
                               .client_id = "hvs-test-tail",
                               .fetch_wait_max_ms = 10};
        HVS_REQUIRE(hvs_consumer_new(&kc, t->topics, ntopics, NULL, &c, &err) == 0,
                    "tail consumer: %s", err.msg);
        if (t->assign_ms > 0)
            HVS_REQUIRE(hvs_consumer_wait_assignment(c, t->assign_ms, &err) == 0,
                        "tail assignment: %s", err.msg);
    }
    size_t want = t->to_end ? messages_in(rk ? rk : hvs_consumer_handle(c), t->topics, ntopics)
                            : t->want;
    size_t max = t->batch ? t->batch : 64;
    if (max > 512)
        max = 512;
    int poll_ms = t->poll_ms ? t->poll_ms : 100;
    int64_t now = hvs_test_now_ms(), deadline = now + (t->timeout_ms ? t->timeout_ms : 20000);
    int64_t last = now;
    size_t got = 0;
    rd_kafka_message_t *msgs[512];
    bool lingered = false;
    for (;;) {
        now = hvs_test_now_ms();
        int wait = poll_ms;
        if ((want || t->to_end) && got >= want) {
            if (t->linger_ms <= 0 || lingered)
                break;
            wait = t->linger_ms; /* one more poll: duplicates would show up now */
            lingered = true;
        } else if (now >= deadline || (t->idle_ms > 0 && now - last >= t->idle_ms)) {
            break;
        }
        size_t n = 0;
        if (rk)
            n = tail_poll_assigned(rk, msgs, max, wait);
        else
            hvs_consumer_poll_batch(c, msgs, max, wait, &n, &err);
        if (n)
            last = hvs_test_now_ms();
        for (size_t i = 0; i < n; i++)
            if (fn)
                fn(opaque, msgs[i]);
        got += n;
        if (t->commit && n)
            hvs_consumer_commit_batch(c, msgs, n, &err);
        hvs_consumer_release(msgs, n);
    }
    if (rk) {
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
    } else {
        hvs_consumer_close(c, &err);
        hvs_consumer_destroy(c);
    }
    return got;
}

json_t *hvs_test_tail_json(const char *env, const char *topic, const char *extra_args) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s %s tail %s --from-beginning --max 100000000 %s 2>/dev/null", env,
             HVS_TEST_HVSCTL, topic, extra_args ? extra_args : "");
    char *out = NULL;
    size_t len = 0;
    int rc = hvs_test_run(cmd, NULL, 0, &out, &len);
    if (rc != 0) {
        fprintf(stderr, "hvs_test_tail_json %s: exit %d\n", topic, rc);
        free(out);
        return NULL;
    }
    json_t *arr = json_array();
    char *line = out;
    while (line && *line) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = 0;
        json_error_t e;
        json_t *j = json_loads(line, JSON_ALLOW_NUL, &e);
        if (j)
            json_array_append_new(arr, j);
        else if (*line)
            fprintf(stderr, "hvs_test_tail_json %s: not JSON: %.200s\n", topic, line);
        line = nl ? nl + 1 : NULL;
    }
    free(out);
    return arr;
}

int64_t hvs_test_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int hvs_test_free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int port = -1;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static int connect_port(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Send `line`, read one reply line. */
static int roundtrip(int port, const char *line, char *reply, size_t replylen) {
    int fd = connect_port(port);
    if (fd < 0)
        return -1;
    size_t n = strlen(line);
    if (write(fd, line, n) != (ssize_t)n) {
        close(fd);
        return -1;
    }
    size_t got = 0;
    while (got + 1 < replylen) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, 5000) <= 0)
            break;
        ssize_t r = read(fd, reply + got, replylen - 1 - got);
        if (r <= 0)
            break;
        got += (size_t)r;
        if (memchr(reply, '\n', got))
            break;
    }
    reply[got] = '\0';
    char *nl = strpbrk(reply, "\r\n");
    if (nl)
        *nl = '\0';
    close(fd);
    return got > 0 ? 0 : -1;
}

static pid_t spawn(char *const argv[], int *stdout_fd) {
    int pipefd[2] = {-1, -1};
    if (stdout_fd && pipe(pipefd) != 0)
        return -1;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        if (stdout_fd) {
            dup2(pipefd[1], STDOUT_FILENO);
            close(pipefd[0]);
            close(pipefd[1]);
        } else {
            int devnull = open("/dev/null", O_WRONLY);
            if (devnull >= 0)
                dup2(devnull, STDOUT_FILENO);
        }
        execv(argv[0], argv);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    if (stdout_fd) {
        close(pipefd[1]);
        *stdout_fd = pipefd[0];
    }
    return pid;
}

int hvs_test_redis_start(hvs_test_proc_t *p, int port) {
    memset(p, 0, sizeof *p);
    snprintf(p->dir, sizeof p->dir, "/tmp/hvs-test-redis-XXXXXX");
    if (!mkdtemp(p->dir)) {
        fprintf(stderr, "redis: mkdtemp: %s\n", strerror(errno));
        return -1;
    }
    for (int attempt = 0; attempt < 5; attempt++) {
        p->port = port > 0 ? port : hvs_test_free_port();
        char portbuf[16];
        snprintf(portbuf, sizeof portbuf, "%d", p->port);
        char *argv[] = {
            HVS_TEST_REDIS_SERVER, "--port", portbuf, "--bind", "127.0.0.1",  "--save",  "",
            "--appendonly",        "no",     "--dir", p->dir,   "--loglevel", "warning", NULL};
        p->pid = spawn(argv, NULL);
        if (p->pid < 0)
            return -1;
        for (int i = 0; i < 100; i++) {
            char reply[64];
            if (roundtrip(p->port, "PING\r\n", reply, sizeof reply) == 0 &&
                strcmp(reply, "+PONG") == 0) {
                snprintf(p->addr, sizeof p->addr, "redis://127.0.0.1:%d", p->port);
                return 0;
            }
            int status;
            if (waitpid(p->pid, &status, WNOHANG) == p->pid) {
                p->pid = 0;
                break;
            }
            usleep(50000);
        }
        if (p->pid > 0)
            hvs_test_proc_kill(p);
        if (port > 0)
            usleep(200000); /* fixed port still in TIME_WAIT or held: try again */
    }
    fprintf(stderr, "redis-server did not start\n");
    return -1;
}

int hvs_test_devbroker_start(hvs_test_proc_t *p, const char *args) {
    memset(p, 0, sizeof *p);
    char *argv[32];
    int argc = 0;
    argv[argc++] = HVS_TEST_DEVBROKER;
    char *copy = args ? strdup(args) : NULL;
    if (copy) {
        for (char *save = NULL, *w = strtok_r(copy, " ", &save); w && argc < 30;
             w = strtok_r(NULL, " ", &save))
            argv[argc++] = w;
    }
    argv[argc] = NULL;
    int fd = -1;
    p->pid = spawn(argv, &fd);
    free(copy);
    if (p->pid < 0)
        return -1;
    /* First line: bootstrap address; second: "control 127.0.0.1:PORT". */
    char buf[512];
    size_t got = 0;
    int64_t deadline = hvs_test_now_ms() + 15000;
    while (hvs_test_now_ms() < deadline && got + 1 < sizeof buf) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, 200) <= 0)
            continue;
        ssize_t r = read(fd, buf + got, sizeof buf - 1 - got);
        if (r <= 0)
            break;
        got += (size_t)r;
        buf[got] = '\0';
        char *nl1 = strchr(buf, '\n');
        if (nl1 && strchr(nl1 + 1, '\n'))
            break;
    }
    buf[got] = '\0';
    /* Keep draining its stdout so it never blocks on a full pipe. */
    if (fork() == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        char sink[4096];
        while (read(fd, sink, sizeof sink) > 0) {
        }
        _exit(0);
    }
    close(fd);
    char ctl[128] = "";
    if (sscanf(buf, "%127s\ncontrol %127s", p->addr, ctl) < 1 ||
        strncmp(p->addr, "127.0.0.1:", 10) != 0) {
        fprintf(stderr, "devbroker printed no address: \"%s\"\n", buf);
        hvs_test_proc_kill(p);
        return -1;
    }
    snprintf(p->control, sizeof p->control, "%s", ctl);
    p->port = atoi(strchr(p->addr, ':') + 1);
    return 0;
}

static void reap(hvs_test_proc_t *p, int grace_ms) {
    int status;
    int64_t deadline = hvs_test_now_ms() + grace_ms;
    while (hvs_test_now_ms() < deadline) {
        if (waitpid(p->pid, &status, WNOHANG) == p->pid) {
            p->pid = 0;
            return;
        }
        usleep(10000);
    }
    kill(p->pid, SIGKILL);
    waitpid(p->pid, &status, 0);
    p->pid = 0;
}

static void cleanup_dir(hvs_test_proc_t *p) {
    if (p->dir[0]) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", p->dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", p->dir);
        p->dir[0] = '\0';
    }
}

int hvs_test_spawn(hvs_test_proc_t *p, const char *cmd, const char *log) {
    memset(p, 0, sizeof *p);
    char full[8192];
    snprintf(full, sizeof full, "exec %s", cmd);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            dup2(fd, STDERR_FILENO);
            close(fd);
        }
        execl("/bin/sh", "sh", "-c", full, (char *)NULL);
        _exit(127);
    }
    p->pid = pid;
    return 0;
}

bool hvs_test_proc_exited(hvs_test_proc_t *p, int *status) {
    int st;
    if (p->pid <= 0)
        return true;
    if (waitpid(p->pid, &st, WNOHANG) != p->pid)
        return false;
    p->pid = 0;
    if (status)
        *status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return true;
}

void hvs_test_proc_stop(hvs_test_proc_t *p) {
    if (p && p->pid > 0) {
        kill(p->pid, SIGTERM);
        reap(p, 5000);
    }
    if (p)
        cleanup_dir(p);
}

void hvs_test_proc_kill(hvs_test_proc_t *p) {
    if (p && p->pid > 0) {
        kill(p->pid, SIGKILL);
        reap(p, 5000);
    }
}

int hvs_test_devbroker_control(const hvs_test_proc_t *p, const char *line, char *reply,
                               size_t replylen) {
    const char *colon = strrchr(p->control, ':');
    if (!colon)
        return -1;
    char msg[512];
    snprintf(msg, sizeof msg, "%s\n", line);
    if (roundtrip(atoi(colon + 1), msg, reply, replylen) != 0)
        return -1;
    return strncmp(reply, "ok", 2) == 0 ? 0 : -1;
}

int hvs_test_run(const char *cmd, const char *input, size_t inlen, char **out, size_t *outlen) {
    char inpath[] = "/tmp/hvs-test-in-XXXXXX";
    int infd = mkstemp(inpath);
    if (infd < 0)
        return -1;
    if (input && inlen && write(infd, input, inlen) != (ssize_t)inlen) {
        close(infd);
        unlink(inpath);
        return -1;
    }
    close(infd);
    size_t cap = strlen(cmd) + sizeof inpath + 32;
    char *full = malloc(cap);
    if (!full)
        return -1;
    snprintf(full, cap, "( %s ) < %s", cmd, inpath);
    FILE *f = popen(full, "r");
    free(full);
    if (!f) {
        unlink(inpath);
        return -1;
    }
    char *buf = NULL;
    size_t len = 0, bcap = 0;
    char chunk[8192];
    size_t r;
    while ((r = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (out) {
            if (len + r + 1 > bcap) {
                bcap = (len + r + 1) * 2;
                char *nb = realloc(buf, bcap);
                if (!nb)
                    break;
                buf = nb;
            }
            memcpy(buf + len, chunk, r);
            len += r;
            buf[len] = '\0';
        }
    }
    int status = pclose(f);
    unlink(inpath);
    if (out) {
        *out = buf ? buf : strdup("");
        if (outlen)
            *outlen = len;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

typedef struct http_body {
    char *p;
    size_t len;
} http_body_t;

static size_t http_collect(char *ptr, size_t sz, size_t n, void *ud) {
    http_body_t *b = ud;
    char *np = realloc(b->p, b->len + sz * n + 1);
    if (!np)
        return 0;
    memcpy(np + b->len, ptr, sz * n);
    b->p = np;
    b->len += sz * n;
    b->p[b->len] = '\0';
    return sz * n;
}

long hvs_test_http(const char *method, const char *url, const char *payload, size_t plen,
                   char **out, char *ctype, size_t ctlen) {
    CURL *c = curl_easy_init();
    if (!c)
        return -1;
    http_body_t b = {NULL, 0};
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (payload) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, payload);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)plen);
    }
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, http_collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
    long status = -1;
    if (curl_easy_perform(c) == CURLE_OK) {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        char *ct = NULL;
        curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
        if (ctype)
            snprintf(ctype, ctlen, "%s", ct ? ct : "");
    }
    curl_easy_cleanup(c);
    if (out)
        *out = b.p ? b.p : strdup("");
    else
        free(b.p);
    return status;
}

double hvs_test_metric(const char *text, const char *name) {
    size_t n = strlen(name);
    for (const char *p = text; p && (p = strstr(p, name)); p += n) {
        if ((p == text || p[-1] == '\n') && (p[n] == ' ' || (p[n] == '{' && !strchr(name, '{')))) {
            const char *sp = strchr(p, ' ');
            return sp ? atof(sp + 1) : -1;
        }
    }
    return -1;
}

double hvs_test_hist_quantile(const char *text, const char *name, double q) {
    char prefix[160], cnt[160];
    snprintf(prefix, sizeof prefix, "%s_bucket{le=\"", name);
    snprintf(cnt, sizeof cnt, "%s_count", name);
    double total = hvs_test_metric(text, cnt);
    if (total <= 0)
        return -1;
    for (const char *p = strstr(text, prefix); p; p = strstr(p + 1, prefix)) {
        double le = atof(p + strlen(prefix));
        const char *sp = strchr(p, '}');
        double c = sp ? atof(sp + 2) : 0;
        if (c >= q * total)
            return le;
    }
    return -1;
}

double hvs_test_cpu_seconds(pid_t pid) {
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    unsigned long ut = 0, st = 0;
    if (p)
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st);
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

long hvs_test_status_kb(pid_t pid, const char *field) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long kb = -1;
    size_t n = strlen(field);
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, field, n) == 0 && line[n] == ':')
            kb = atol(line + n + 1);
    if (f)
        fclose(f);
    return kb;
}

double hvs_test_redis_used(const hvs_test_proc_t *redis) {
    char cmd[256], *out = NULL;
    snprintf(cmd, sizeof cmd, "redis-cli -p %d info memory | grep '^used_memory:' | cut -d: -f2",
             redis->port);
    hvs_test_run(cmd, NULL, 0, &out, NULL);
    double v = out ? atof(out) : 0;
    free(out);
    return v;
}

int hvs_test_redis_flushall(const hvs_test_proc_t *redis) {
    char reply[64];
    return roundtrip(redis->port, "FLUSHALL\r\n", reply, sizeof reply) == 0 &&
                   strncmp(reply, "+OK", 3) == 0
               ? 0
               : -1;
}

long long hvs_test_stage_offsets(const char *redis_url, const char *stage, const char *topic) {
    hvs_redis_t *r = NULL;
    hvs_err_t err = {0};
    if (hvs_redis_connect(redis_url, NULL, &r, &err) != 0)
        return -1;
    long long sum = 0;
    int parts = hvs_topic_partitions(hvs_topic_by_name(topic));
    for (int p = 0; p < parts; p++) {
        redisReply *rep = NULL;
        if (hvs_redis_command(r, &rep, &err, "HGET hvs:stage:%s:%d o:%s", stage, p,
                              hvs_topic_name(topic)) == 0 &&
            rep && rep->type == REDIS_REPLY_STRING)
            sum += atoll(rep->str);
        if (rep)
            freeReplyObject(rep);
    }
    hvs_redis_destroy(r);
    return sum;
}

/* The kind of key k (hvs_test_redis_kinds) into out. */
static void key_kind(const char *k, char *out, size_t cap) {
    if (strncmp(k, "hvs:", 4) == 0)
        k += 4;
    if (*k == '{' && strchr(k, '}'))
        k = strchr(k, '}') + 1 + (strchr(k, '}')[1] == ':');
    const char *c1 = strchr(k, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    size_t n = c2 ? (size_t)(c2 - k) : strlen(k);
    snprintf(out, cap, "%.*s", (int)n, k);
}

void hvs_test_redis_kinds(const char *redis_url, const char *label, double per, const char *unit) {
    hvs_redis_t *r = NULL;
    hvs_err_t err = {0};
    if (hvs_redis_connect(redis_url, NULL, &r, &err) != 0)
        return;
    enum { KINDS = 32 };
    char kind[KINDS][48];
    double bytes[KINDS];
    int nkinds = 0;
    char cursor[32] = "0";
    hvs_redis_batch_t *b = hvs_redis_batch_new();
    do {
        redisReply *rep = NULL;
        if (!b || hvs_redis_command(r, &rep, &err, "SCAN %s COUNT 1000", cursor) != 0 || !rep ||
            rep->type != REDIS_REPLY_ARRAY || rep->elements != 2) {
            if (rep)
                freeReplyObject(rep);
            break;
        }
        snprintf(cursor, sizeof cursor, "%s", rep->element[0]->str);
        const redisReply *keys = rep->element[1];
        hvs_redis_batch_reset(b);
        for (size_t i = 0; i < keys->elements; i++) {
            const char *argv[] = {"MEMORY", "USAGE", keys->element[i]->str, "SAMPLES", "0"};
            hvs_redis_batch_add(b, 5, argv, NULL);
        }
        if (keys->elements && hvs_redis_batch_exec(r, b, &err) == 0)
            for (size_t i = 0; i < keys->elements; i++) {
                const redisReply *m = hvs_redis_batch_reply(b, i);
                char k[48];
                key_kind(keys->element[i]->str, k, sizeof k);
                int at = 0;
                while (at < nkinds && strcmp(kind[at], k) != 0)
                    at++;
                if (at == nkinds && nkinds < KINDS) {
                    snprintf(kind[nkinds], sizeof kind[nkinds], "%s", k);
                    bytes[nkinds++] = 0;
                }
                if (at < nkinds && m && m->type == REDIS_REPLY_INTEGER)
                    bytes[at] += (double)m->integer;
            }
        freeReplyObject(rep);
    } while (strcmp(cursor, "0") != 0);
    double total = 0;
    printf("%s:", label);
    for (int i = 0; i < nkinds; i++) /* largest first */
        for (int j = i + 1; j < nkinds; j++)
            if (bytes[j] > bytes[i]) {
                double t = bytes[i];
                bytes[i] = bytes[j], bytes[j] = t;
                char tk[48];
                memcpy(tk, kind[i], sizeof tk), memcpy(kind[i], kind[j], sizeof tk);
                memcpy(kind[j], tk, sizeof tk);
            }
    for (int i = 0; i < nkinds; i++) {
        printf("%s %s %.2f", i ? "," : "", kind[i], bytes[i] / per / 1e3);
        total += bytes[i];
    }
    printf(" (total %.2f) KB per %s, MEMORY USAGE of the keys\n", total / per / 1e3, unit);
    hvs_redis_batch_destroy(b);
    hvs_redis_destroy(r);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double hvs_test_median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int hvs_test_json_lines(char *out, json_t **js, int max) {
    int n = 0;
    for (char *p = out, *nl; p && *p && (nl = strchr(p, '\n')); p = nl + 1) {
        *nl = '\0';
        if (n < max)
            js[n] = json_loads(p, 0, NULL);
        n++;
    }
    return n;
}

void hvs_test_json_lines_free(json_t **js, int n) {
    for (int i = 0; i < n; i++)
        json_decref(js[i]);
}

void hvs_test_print_phases(const char *text, const char *stage) {
    static const char *const phases[] = {"poll", "process", "publish_wait", "state_write",
                                         "commit"};
    printf("consume loop by phase (s):");
    for (size_t i = 0; i < sizeof phases / sizeof phases[0]; i++) {
        char name[128];
        snprintf(name, sizeof name, "hvs_%s_phase_seconds_total{phase=\"%s\"}", stage, phases[i]);
        printf(" %s %.2f", phases[i], hvs_test_metric(text, name));
    }
    printf("\n");
}

static uint64_t mix64(uint64_t x) { /* splitmix64's finaliser */
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

double hvs_test_draw(uint64_t seed, int salt, const int64_t *keys, size_t n) {
    uint64_t x = mix64((uint64_t)keys[n - 1]);
    for (size_t i = n - 1; i-- > 0;)
        x = mix64((uint64_t)keys[i] ^ x);
    x = mix64(seed ^ mix64((uint64_t)salt ^ x));
    return (double)(x >> 11) / (double)(1ULL << 53);
}

uint64_t hvs_test_rand(uint64_t *state) {
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545f4914f6cdd1du;
}

size_t hvs_test_damage(unsigned char *msg, size_t len, int kind, uint64_t *state, size_t *at) {
    *at = 5 + (size_t)(hvs_test_rand(state) % (len - 5));
    switch (kind) {
    case 0: return *at;
    case 1: msg[len] = (unsigned char)hvs_test_rand(state); return len + 1;
    case 2: msg[*at] ^= (unsigned char)(1u << (hvs_test_rand(state) % 8)); return len;
    default:
        memmove(msg + *at + 1, msg + *at, len - *at);
        msg[*at] = (unsigned char)hvs_test_rand(state);
        return len + 1;
    }
}
