#!/usr/bin/python3
"""Decode one message fetched by plain kcat with an independent Avro decoder (python3-avro):
check the Confluent wire header, decode the body with the .avsc file, print natural JSON.
usage: kcat_decode.py MESSAGE_FILE SCHEMA_FILE EXPECTED_ID"""
import datetime
import io
import json
import struct
import sys

import avro.io
import avro.schema

data = open(sys.argv[1], "rb").read()
schema = avro.schema.parse(open(sys.argv[2]).read())
magic, sid = struct.unpack(">bI", data[:5])
if magic != 0 or sid != int(sys.argv[3]):
    sys.exit(f"bad header: magic {magic} id {sid}")
rec = avro.io.DatumReader(schema).read(avro.io.BinaryDecoder(io.BytesIO(data[5:])))


def natural(v):
    if isinstance(v, datetime.datetime):
        return round(v.timestamp() * 1000)
    if isinstance(v, dict):
        return {k: natural(x) for k, x in v.items()}
    if isinstance(v, list):
        return [natural(x) for x in v]
    return v


print(json.dumps(natural(rec), sort_keys=True))
