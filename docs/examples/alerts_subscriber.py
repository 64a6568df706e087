#!/usr/bin/python3
"""A downstream app subscribed to hvacstream's `alerts` topic: prints every new UNSEEN alert.

It needs nothing of hvacstream but the Alert schema file: Debian 12's python3 with
python3-confluent-kafka and python3-avro (`apt-get install python3-confluent-kafka
python3-avro`), and schemas/Alert.avsc.

    /usr/bin/python3 docs/examples/alerts_subscriber.py --bootstrap 127.0.0.1:9092 \\
        --group alerts-app --from-beginning

Each value is Avro behind the Confluent wire header: byte 0 is the magic 0, bytes 1-4 the
big-endian schema id, then the Avro body, decoded with the writer schema that id names. The
fixed id of the current Alert schema is 9 (schemas/schema-ids.tsv); --schema-id changes it (with
a Schema Registry the id is the registry's). A value with another id, a wrong magic byte or a
body that does not decode is reported on stderr and skipped.

Alerts are a table keyed by alert_id ("<entity>#<UTC date>#<TYPE>"): a later record of an id
(by updated_at) replaces the earlier, an older one is ignored. An alert whose latest record is
UNSEEN is printed once, as first seen (later evidence on it updates the table, not the screen):

    UNSEEN <alert_id> team=<team|-> rank=<rank|-> severity=<severity> score=<score> <summary>

or, with --json, as the record in JSON (timestamps in epoch milliseconds), one per line.

The subscriber reads in its own consumer group (--group) and commits its offsets: restarted, it
continues where it left off. The table is kept in memory only: --from-beginning re-reads the
topic from its first offset and rebuilds it. For tests, --max-messages N stops after N messages
and --idle-exit S after S seconds without one; otherwise it runs until Ctrl-C or SIGTERM.
"""
import argparse
import datetime
import io
import json
import os
import signal
import struct
import sys
import time

import avro.io
import avro.schema
from confluent_kafka import OFFSET_BEGINNING, Consumer

ALERT_SCHEMA_ID = 9  # hvacstream.Alert in schemas/schema-ids.tsv
DEFAULT_SCHEMA = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                              "..", "..", "schemas", "Alert.avsc")


def parse_args():
    p = argparse.ArgumentParser(description="Print new UNSEEN hvacstream alerts.")
    p.add_argument("--bootstrap", required=True, help="Kafka bootstrap servers, host:port")
    p.add_argument("--group", required=True, help="consumer group of this subscriber")
    p.add_argument("--topic", default="alerts")
    p.add_argument("--schema", default=DEFAULT_SCHEMA, help="path to Alert.avsc")
    p.add_argument("--schema-id", type=int, default=ALERT_SCHEMA_ID,
                   help="schema id of that file on the wire (default %(default)s)")
    p.add_argument("--from-beginning", action="store_true",
                   help="read the topic from its first offset, whatever the group committed")
    p.add_argument("--json", action="store_true", help="print each alert as a JSON line")
    p.add_argument("--max-messages", type=int, default=0, metavar="N",
                   help="stop after N messages (0: no limit)")
    p.add_argument("--idle-exit", type=float, default=0, metavar="SECONDS",
                   help="stop after this long without a message (0: never)")
    return p.parse_args()


def warn(text):
    print("alerts_subscriber: " + text, file=sys.stderr, flush=True)


def decode(value, writers, reader):
    """Wire header + Avro body -> the record as a dict; ValueError says why not."""
    if value is None or len(value) < 5:
        raise ValueError("shorter than the 5-byte wire header")
    magic, schema_id = struct.unpack(">bI", value[:5])
    if magic != 0:
        raise ValueError("magic byte %d, expected 0" % magic)
    writer = writers.get(schema_id)
    if writer is None:
        raise ValueError("unknown schema id %d (known: %s)"
                         % (schema_id, ", ".join(map(str, sorted(writers)))))
    body = io.BytesIO(value[5:])
    try:
        record = avro.io.DatumReader(writer, reader).read(avro.io.BinaryDecoder(body))
    except Exception as e:  # python3-avro raises several kinds on a corrupt body
        raise ValueError("schema id %d: Avro body does not decode: %s" % (schema_id, e))
    if body.tell() != len(value) - 5:
        raise ValueError("schema id %d: %d bytes after the record"
                         % (schema_id, len(value) - 5 - body.tell()))
    return record


def epoch_ms(t):
    """python3-avro gives timestamp-millis as an aware datetime."""
    if isinstance(t, datetime.datetime):
        return round(t.timestamp() * 1000)
    return t


def show(alert, as_json):
    if as_json:
        out = dict(alert, first_seen=epoch_ms(alert["first_seen"]),
                   updated_at=epoch_ms(alert["updated_at"]))
        print(json.dumps(out), flush=True)
        return
    rank = alert["rank"]
    print("UNSEEN %s team=%s rank=%s severity=%s score=%.2f %s"
          % (alert["alert_id"], alert["team"] or "-", "-" if rank is None else rank,
             alert["severity"], alert["score"], alert["summary"]), flush=True)


def main():
    args = parse_args()
    with open(args.schema) as f:
        reader = avro.schema.parse(f.read())
    writers = {args.schema_id: reader}  # older versions: add their id and file here
    last = time.monotonic()  # of the last message or assignment, for --idle-exit

    def on_assign(consumer, partitions):
        nonlocal last
        last = time.monotonic()  # the idle time starts once partitions are assigned
        if args.from_beginning:
            for tp in partitions:
                tp.offset = OFFSET_BEGINNING
            consumer.assign(partitions)

    consumer = Consumer({
        "bootstrap.servers": args.bootstrap,
        "group.id": args.group,
        "auto.offset.reset": "earliest" if args.from_beginning else "latest",
        "enable.auto.commit": True,
    })
    consumer.subscribe([args.topic], on_assign=on_assign)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

    latest = {}  # alert_id -> latest record (the compacted table)
    printed = set()  # alert_ids printed as UNSEEN
    read = skipped = 0
    try:
        while not args.max_messages or read < args.max_messages:
            msg = consumer.poll(0.2)
            if msg is None:
                if args.idle_exit and time.monotonic() - last >= args.idle_exit:
                    break
                continue
            if msg.error():
                warn("kafka: %s" % msg.error())
                continue
            read += 1
            last = time.monotonic()
            where = "%s[%d]@%d" % (msg.topic(), msg.partition(), msg.offset())
            try:
                alert = decode(msg.value(), writers, reader)
            except ValueError as e:
                skipped += 1
                warn("%s: %s: skipped" % (where, e))
                continue
            aid = alert["alert_id"]
            old = latest.get(aid)
            if old is not None and epoch_ms(alert["updated_at"]) < epoch_ms(old["updated_at"]):
                continue  # older than what we have: the table keeps the latest
            latest[aid] = alert
            if alert["status"] == "UNSEEN" and aid not in printed:
                printed.add(aid)
                show(alert, args.json)
    except KeyboardInterrupt:
        pass
    finally:
        consumer.close()  # commits the offsets read so far
    warn("%d messages, %d alerts, %d printed, %d skipped"
         % (read, len(latest), len(printed), skipped))


if __name__ == "__main__":
    main()
