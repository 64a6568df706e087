#!/usr/bin/python3
"""Reads wire-format Feedback messages with an independent Avro implementation (Debian's
python3-avro), for tests/common/test_feedback.c: one JSON line per file named, {"id": schema id,
"value": the record (labelled_at as epoch ms), "rest": bytes left after the record}.

usage: feedback_read.py SCHEMA.avsc MESSAGE...
"""
import datetime
import io
import json
import struct
import sys

import avro.io
import avro.schema

schema = avro.schema.parse(open(sys.argv[1]).read())
for path in sys.argv[2:]:
    data = open(path, "rb").read()
    magic, sid = struct.unpack(">bI", data[:5])
    body = io.BytesIO(data[5:])
    value = avro.io.DatumReader(schema).read(avro.io.BinaryDecoder(body))
    if isinstance(value["labelled_at"], datetime.datetime):
        value["labelled_at"] = round(value["labelled_at"].timestamp() * 1000)
    print(json.dumps({"magic": magic, "id": sid, "value": value,
                      "rest": len(data) - 5 - body.tell()}))
