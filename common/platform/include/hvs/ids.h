/*
 * ids.h - the one rule for the ids that address state: building, apartment, device and room
 * ids, wherever they enter (a Kafka record, a JSON line, a topology record, a Redis key).
 *
 * An id is accepted when it is
 *   - 1..HVS_ID_MAX bytes (longer: "id_too_long"; empty: "bad_id");
 *   - valid UTF-8: no stray continuation byte, no truncated sequence, no overlong encoding, no
 *     surrogate (U+D800..U+DFFF), nothing above U+10FFFF ("bad_id");
 *   - printable: no C0 control (U+0000..U+001F, so no NUL inside), no DEL (U+007F), no C1
 *     control (U+0080..U+009F) ("bad_id") - controls break logs, and the aggregator's stored
 *     buckets use C0 separators;
 *   - free of '{' and '}' ("bad_id"): a building id is the Redis Cluster hash tag of its keys
 *     ("hvs:{<building>}:..."), and a brace in it would move the key to another building's
 *     slot or name another building's key.
 * The same rule for every kind of id keeps one answer to "is this id good" across workers: an
 * id one worker stores, the next one reads.
 *
 * A keyed topic's record must carry its building id as its Kafka key (the co-partitioning of
 * docs/design.md §2 depends on it: state of a building whose key differs lands in another
 * partition's worker). hvs_id_check_key refuses a record whose key is absent or differs:
 * "key_mismatch" in both cases (an absent key is a key that does not match; one reason keeps
 * dead-letter queries simple).
 *
 * Thread-safety: pure functions. Errors: 0, or HVS_EINVAL with err->reason one of the
 * HVS_ID_R_* below and err->msg naming the field and the byte offset that failed.
 */
#ifndef HVS_IDS_H
#define HVS_IDS_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>

#include "hvs/err.h"

#define HVS_ID_MAX 256 /* bytes of an id (UTF-8) */

#define HVS_ID_R_BAD "bad_id"                /* empty, invalid UTF-8, control char, brace */
#define HVS_ID_R_TOO_LONG "id_too_long"      /* over HVS_ID_MAX bytes */
#define HVS_ID_R_KEY_MISMATCH "key_mismatch" /* Kafka key absent or not the building id */

/* Check a NUL-terminated id; `field` names it in the message ("building_id"). */
int hvs_id_check(const char *id, const char *field, hvs_err_t *err);

/* The same for `len` bytes that need not be NUL-terminated (an Avro string, a Kafka key): a
 * NUL byte inside is a control character. */
int hvs_id_check_n(const char *id, size_t len, const char *field, hvs_err_t *err);

/* The record's Kafka key must be exactly `building_id` (already checked by hvs_id_check):
 * else HVS_EINVAL "key_mismatch" with both named (the key's bytes shown printable). */
int hvs_id_check_key(const rd_kafka_message_t *m, const char *building_id, hvs_err_t *err);

#endif
