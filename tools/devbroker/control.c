/*
 * The fault-injection channel: one text command per line on 127.0.0.1, each answered with one
 * line "ok ..." or "error <why>". Tests use it to take brokers away, add latency and make
 * requests fail (the mock's rd_kafka_mock_* API).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "devbroker.h"
#include "hvs/log.h"
#include "hvs/topics.h"

typedef struct control {
    rd_kafka_mock_cluster_t *mc;
    int fd;
} control_t;

int devbroker_listen(uint16_t port, int *fd, uint16_t *bound, hvs_err_t *err) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) != 0 || listen(s, 64) != 0 ||
        getsockname(s, (struct sockaddr *)&a, &len) != 0) {
        int e = errno;
        if (s >= 0)
            close(s);
        return hvs_err_set(err, HVS_EIO, "listen", "cannot listen on 127.0.0.1:%u: %s",
                           (unsigned)port, strerror(e));
    }
    *fd = s;
    *bound = ntohs(a.sin_port);
    return HVS_OK;
}

/* Error code for a name as librdkafka spells it, without the RD_KAFKA_RESP_ERR_ prefix. */
static int err_by_name(const char *name, rd_kafka_resp_err_t *out) {
    const struct rd_kafka_err_desc *descs;
    size_t n;
    rd_kafka_get_err_descs(&descs, &n);
    for (size_t i = 0; i < n; i++)
        if (descs[i].name && strcmp(descs[i].name, name) == 0) {
            *out = descs[i].code;
            return 0;
        }
    return -1;
}

/* Run one command line; the answer goes into reply. */
static void run(rd_kafka_mock_cluster_t *mc, char *line, char *reply, size_t rlen) {
    char w[4][128] = {{0}};
    int n = sscanf(line, "%127s %127s %127s %127s", w[0], w[1], w[2], w[3]);
    rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR_NO_ERROR;
    if (n >= 1 && strcmp(w[0], "ping") == 0) {
        snprintf(reply, rlen, "ok pong");
        return;
    }
    if (n == 3 && strcmp(w[0], "broker") == 0 &&
        (strcmp(w[1], "down") == 0 || strcmp(w[1], "up") == 0)) {
        int id = atoi(w[2]);
        e = strcmp(w[1], "down") == 0 ? rd_kafka_mock_broker_set_down(mc, id)
                                      : rd_kafka_mock_broker_set_up(mc, id);
    } else if (n == 3 && strcmp(w[0], "rtt") == 0) {
        e = rd_kafka_mock_broker_set_rtt(mc, atoi(w[1]), atoi(w[2]));
    } else if (n == 4 && strcmp(w[0], "errors") == 0) {
        rd_kafka_resp_err_t code;
        int cnt = atoi(w[2]);
        if (cnt <= 0 || cnt > 1000 || err_by_name(w[3], &code) != 0) {
            snprintf(reply, rlen, "error unknown error name %s or bad count", w[3]);
            return;
        }
        rd_kafka_resp_err_t *errs = malloc((size_t)cnt * sizeof *errs);
        if (!errs) {
            snprintf(reply, rlen, "error out of memory");
            return;
        }
        for (int i = 0; i < cnt; i++)
            errs[i] = code;
        rd_kafka_mock_push_request_errors_array(mc, (int16_t)atoi(w[1]), (size_t)cnt, errs);
        free(errs);
    } else if (n == 4 && strcmp(w[0], "topic") == 0 && strcmp(w[1], "create") == 0) {
        int parts = atoi(w[3]);
        if (parts < 1 || parts > HVS_MAX_PARTITIONS) {
            snprintf(reply, rlen, "error partition count %s is not 1..%d", w[3],
                     HVS_MAX_PARTITIONS);
            return;
        }
        e = rd_kafka_mock_topic_create(mc, w[2], parts, 1);
    } else {
        snprintf(reply, rlen,
                 "error unknown command (ping | broker down|up ID | rtt ID MS | "
                 "errors APIKEY COUNT ERRNAME | topic create NAME N)");
        return;
    }
    if (e)
        snprintf(reply, rlen, "error %s", rd_kafka_err2str(e));
    else
        snprintf(reply, rlen, "ok");
    hvs_log_fields(HVS_LOG_INFO, "control", "command", HVS_LFS("command", line),
                   HVS_LFS("reply", reply));
}

static void serve_connection(rd_kafka_mock_cluster_t *mc, int c) {
    char buf[1024];
    size_t got = 0;
    while (got + 1 < sizeof buf) {
        struct pollfd p = {.fd = c, .events = POLLIN};
        if (poll(&p, 1, 2000) <= 0)
            break;
        ssize_t r = read(c, buf + got, sizeof buf - 1 - got);
        if (r <= 0)
            break;
        got += (size_t)r;
        buf[got] = '\0';
        char *nl;
        while ((nl = strchr(buf, '\n')) != NULL) {
            *nl = '\0';
            if (nl > buf && nl[-1] == '\r')
                nl[-1] = '\0';
            char reply[512];
            run(mc, buf, reply, sizeof reply);
            size_t rl = strlen(reply);
            reply[rl++] = '\n';
            if (write(c, reply, rl) != (ssize_t)rl)
                return;
            size_t rest = got - (size_t)(nl + 1 - buf);
            memmove(buf, nl + 1, rest);
            got = rest;
            buf[got] = '\0';
        }
    }
}

static void *control_main(void *arg) {
    control_t *ctl = arg;
    while (!devbroker_stopping()) {
        struct pollfd p = {.fd = ctl->fd, .events = POLLIN};
        if (poll(&p, 1, 200) <= 0)
            continue;
        int c = accept(ctl->fd, NULL, NULL);
        if (c < 0)
            continue;
        serve_connection(ctl->mc, c);
        close(c);
    }
    close(ctl->fd);
    free(ctl);
    return NULL;
}

int control_start(rd_kafka_mock_cluster_t *mc, int fd, pthread_t *thread, hvs_err_t *err) {
    control_t *ctl = malloc(sizeof *ctl);
    if (!ctl)
        return hvs_err_set(err, HVS_ENOMEM, NULL, "control: out of memory");
    ctl->mc = mc;
    ctl->fd = fd;
    if (pthread_create(thread, NULL, control_main, ctl) != 0) {
        free(ctl);
        return hvs_err_set(err, HVS_EIO, NULL, "control: cannot start thread");
    }
    return HVS_OK;
}
