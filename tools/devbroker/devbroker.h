/*
 * hvs-devbroker internals: the control channel and the bootstrap forwarder, each a thread that
 * runs until devbroker_stopping() is true. Both listen on 127.0.0.1 only.
 */
#ifndef HVS_DEVBROKER_H
#define HVS_DEVBROKER_H

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <pthread.h>
#include <stdint.h>

#include "hvs/err.h"

int devbroker_stopping(void);

/* Listen on 127.0.0.1:port (0 = any) and return the socket and the bound port. */
int devbroker_listen(uint16_t port, int *fd, uint16_t *bound, hvs_err_t *err);

/* Serve control commands for `mc` on the listening socket `fd`. */
int control_start(rd_kafka_mock_cluster_t *mc, int fd, pthread_t *thread, hvs_err_t *err);

/* Forward every connection accepted on `fd` to 127.0.0.1:target_port, bytes both ways. */
int forward_start(int fd, uint16_t target_port, pthread_t *thread, hvs_err_t *err);

#endif
