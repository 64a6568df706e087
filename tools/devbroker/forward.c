/*
 * Bootstrap forwarder for a fixed --port: the mock cluster binds its brokers to ports it
 * chooses, so a fixed address (e.g. the default HVS_KAFKA_BROKERS=127.0.0.1:9092) is served by
 * relaying bytes to the first mock broker. Clients use it for bootstrap; the metadata they get
 * names the brokers' own addresses, which they connect to directly afterwards.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "devbroker.h"
#include "hvs/log.h"

typedef struct forward {
    int fd;
    uint16_t target;
} forward_t;

typedef struct pair {
    int a, b;
} pair_t;

/* Relay both ways until either side closes or the broker stops. */
static void *relay(void *arg) {
    pair_t *p = arg;
    char buf[65536];
    struct pollfd fds[2] = {{.fd = p->a, .events = POLLIN}, {.fd = p->b, .events = POLLIN}};
    while (!devbroker_stopping()) {
        if (poll(fds, 2, 200) <= 0)
            continue;
        int done = 0;
        for (int i = 0; i < 2 && !done; i++) {
            if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            ssize_t r = read(fds[i].fd, buf, sizeof buf);
            if (r <= 0) {
                done = 1;
                break;
            }
            int to = fds[1 - i].fd;
            for (ssize_t off = 0; off < r;) {
                ssize_t w = write(to, buf + off, (size_t)(r - off));
                if (w <= 0) {
                    done = 1;
                    break;
                }
                off += w;
            }
        }
        if (done)
            break;
    }
    close(p->a);
    close(p->b);
    free(p);
    return NULL;
}

static void *forward_main(void *arg) {
    forward_t *f = arg;
    while (!devbroker_stopping()) {
        struct pollfd p = {.fd = f->fd, .events = POLLIN};
        if (poll(&p, 1, 200) <= 0)
            continue;
        int c = accept(f->fd, NULL, NULL);
        if (c < 0)
            continue;
        int up = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_port = htons(f->target),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        pair_t *pr = malloc(sizeof *pr);
        pthread_t t;
        if (up < 0 || !pr || connect(up, (struct sockaddr *)&a, sizeof a) != 0) {
            hvs_log_warn("devbroker", "bootstrap forward to port %u failed", (unsigned)f->target);
            close(c);
            if (up >= 0)
                close(up);
            free(pr);
            continue;
        }
        pr->a = c;
        pr->b = up;
        if (pthread_create(&t, NULL, relay, pr) != 0) {
            close(c);
            close(up);
            free(pr);
            continue;
        }
        pthread_detach(t);
    }
    close(f->fd);
    free(f);
    return NULL;
}

int forward_start(int fd, uint16_t target_port, pthread_t *thread, hvs_err_t *err) {
    forward_t *f = malloc(sizeof *f);
    if (!f)
        return hvs_err_set(err, HVS_ENOMEM, NULL, "forward: out of memory");
    f->fd = fd;
    f->target = target_port;
    if (pthread_create(thread, NULL, forward_main, f) != 0) {
        free(f);
        return hvs_err_set(err, HVS_EIO, NULL, "forward: cannot start thread");
    }
    return HVS_OK;
}
