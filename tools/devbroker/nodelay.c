/*
 * nodelay.c - TCP_NODELAY on every connection this process accepts, the mock brokers' included.
 *
 * librdkafka's mock cluster (rdkafka_mock.c, 2.0.2) accepts client connections with a plain
 * accept() and never disables Nagle. A broker answers several in-flight requests of one
 * connection back to back; with Nagle, each small response after the first waits for the
 * client's ACK of the previous one, and the client delays its ACK (~40 ms on Linux) since it has
 * nothing to send: every produce batch then waited ~40 ms for its acknowledgements, which no real
 * Kafka broker (socket.tcp.no.delay) makes it wait. We cannot change the library, so the
 * executable defines accept(): the dynamic linker binds librdkafka's call to the executable's
 * definition (exported with -Wl,--export-dynamic-symbol=accept), which calls the next one
 * (libc's, or a sanitizer's interceptor) and sets the option on the new socket.
 * Thread-safe: the next accept() is looked up once (pthread_once). A socket that is not TCP
 * refuses the option harmlessly; the accept's own result and errno are returned unchanged.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* RTLD_NEXT */
#endif
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/socket.h>

typedef int (*accept_fn)(int, struct sockaddr *, socklen_t *);

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static accept_fn g_next;

static void find_next(void) {
    /* dlsym returns void *; going through uintptr_t keeps -Wpedantic quiet about the cast */
    g_next = (accept_fn)(uintptr_t)dlsym(RTLD_NEXT, "accept");
}

int accept(int fd, struct sockaddr *addr, socklen_t *len) {
    pthread_once(&g_once, find_next);
    if (!g_next) {
        errno = ENOSYS;
        return -1;
    }
    int s = g_next(fd, addr, len);
    if (s >= 0) {
        int saved = errno, one = 1;
        (void)setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        errno = saved;
    }
    return s;
}
