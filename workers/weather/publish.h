/*
 * publish.h - Weather records (schemas/Weather.avsc) onto weather.hourly: the hours of a
 * response that changed since the last published record of their (building, hour) (history.h),
 * keyed by building id, partition chosen by the producer's partitioner (murmur2_random, so a
 * building's weather lands in the same partition number as its other data).
 *
 * issued_at of every record is the `issued_at` given (the clock time of the poll whose response
 * first showed these values): a record is never stamped earlier than the moment its value was
 * fetched, and an unchanged forecast is not re-published, so it keeps its older issued_at.
 *
 * Ownership: the publisher borrows serde and producer (both must outlive it) and owns its
 * encoder; `topic` and `provider` are copied. Thread-safety: one thread. Errors: HVS_ESERDE
 * (encoding) or the producer's error (HVS_ETIMEOUT: local queue full for 10 s, HVS_EKAFKA); the
 * history then records exactly the hours queued before the failure.
 */
#ifndef WX_PUBLISH_H
#define WX_PUBLISH_H

#include <stddef.h>

#include "history.h"
#include "hvs/kafka.h"
#include "hvs/serde.h"
#include "openmeteo.h"

typedef struct wx_publisher wx_publisher_t;

int wx_publisher_new(hvs_serde_t *s, hvs_producer_t *p, const char *topic, const char *provider,
                     wx_publisher_t **out, hvs_err_t *err);
void wx_publisher_destroy(wx_publisher_t *pub);

typedef struct wx_location_ref {
    const char *building_id;
    double latitude, longitude;
} wx_location_ref_t;

/*
 * Publish the changed hours of one response and record them in hist. Hours before `cut` are
 * ignored and forgotten. counts[WX_OBSERVED], counts[WX_FORECAST] are incremented by what was
 * queued.
 */
int wx_publish(wx_publisher_t *pub, wx_history_t *hist, const wx_location_ref_t *loc,
               const wx_hour_t *hours, size_t n, hvs_ms_t issued_at, hvs_ms_t cut, size_t counts[2],
               hvs_err_t *err);

/* Encode one record into the publisher's buffer (valid until its next use). */
int wx_publisher_encode(wx_publisher_t *pub, const wx_location_ref_t *loc, const wx_hour_t *h,
                        hvs_ms_t issued_at, const void **buf, size_t *len, hvs_err_t *err);

#endif
