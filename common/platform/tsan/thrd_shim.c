/*
 * Built only with HVS_TSAN: C11 thrd_create, thrd_join and thrd_detach over pthreads.
 *
 * Why: librdkafka starts every thread of its own (rdk:main, rdk:broker*, rdk:mock) with C11
 * thrd_create. glibc 2.36 implements that without going through the pthread_create symbol, and
 * the ThreadSanitizer runtimes of Debian 12 (GCC 12's libtsan, clang 14's) intercept only
 * pthread_create. Those threads then have no ThreadSanitizer state and crash in their first
 * intercepted call (a SEGV inside the sanitizer's allocator, seen in hvs-devbroker's mock
 * cluster thread). Defined here, in every executable of a TSan build, these interpose glibc's:
 * librdkafka's threads start through pthread_create, which TSan sees. Linked in by
 * common/CMakeLists.txt with -Wl,--undefined=thrd_create; never part of a normal build.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <threads.h>

typedef struct start {
    thrd_start_t fn;
    void *arg;
} start_t;

static void *trampoline(void *p) {
    start_t s = *(start_t *)p;
    free(p);
    /* glibc's thrd_join and thrd_exit carry the int result in the pthread result pointer */
    return (void *)(intptr_t)s.fn(s.arg);
}

int thrd_create(thrd_t *thr, thrd_start_t fn, void *arg) {
    start_t *s = malloc(sizeof *s);
    if (!s)
        return thrd_nomem;
    s->fn = fn;
    s->arg = arg;
    pthread_t t;
    int rc = pthread_create(&t, NULL, trampoline, s);
    if (rc != 0) {
        free(s);
        return rc == EAGAIN ? thrd_nomem : thrd_error;
    }
    *thr = (thrd_t)t;
    return thrd_success;
}

int thrd_join(thrd_t thr, int *res) {
    void *p = NULL;
    if (pthread_join((pthread_t)thr, &p) != 0)
        return thrd_error;
    if (res)
        *res = (int)(intptr_t)p;
    return thrd_success;
}

int thrd_detach(thrd_t thr) {
    return pthread_detach((pthread_t)thr) == 0 ? thrd_success : thrd_error;
}
