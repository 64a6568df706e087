#!/usr/bin/python3
"""Cross-check of hvacstream's Avro layer against an independent implementation (Debian's
python3-avro). For every schema in schemas/: it must parse with python3-avro; the sample
record must survive C encode -> Python decode and Python encode -> C decode unchanged, with the
Confluent wire header (magic 0 + big-endian id from schemas/schema-ids.tsv) on every message.
Aggregate v1/v2 -> v3 (rooms, uncounted_kwh), Building v1/v2/v3 -> v4 (team, meter, apartment meter) and ModelVersion
v1 -> v2 (folds) are resolved both ways across the two implementations.

usage: avro_interop.py SOURCE_DIR SERDE_TOOL
"""
import datetime
import io
import json
import math
import struct
import subprocess
import sys

import avro.io
import avro.schema

src, tool = sys.argv[1], sys.argv[2]
passed = failed = 0


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("FAIL:", what, file=sys.stderr)


def natural(value):
    """python-avro values -> the natural JSON the C side prints (bytes as code points 0-255)."""
    if isinstance(value, bytes):
        return value.decode("latin-1")
    if isinstance(value, datetime.datetime):  # timestamp-millis
        return round(value.timestamp() * 1000)
    if isinstance(value, dict):
        return {k: natural(v) for k, v in value.items()}
    if isinstance(value, list):
        return [natural(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def to_python(schema, value):
    """Natural JSON -> values python-avro's writer takes (bytes fields as bytes)."""
    t = schema.type
    if schema.props.get("logicalType") == "timestamp-millis" and isinstance(value, int):
        epoch = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
        return epoch + datetime.timedelta(milliseconds=value)
    if t == "union":
        if value is None:
            return None
        for b in schema.schemas:
            if b.type != "null":
                try:
                    return to_python(b, value)
                except (TypeError, AttributeError):
                    continue
        return value
    if t in ("bytes", "fixed"):
        return value.encode("latin-1")
    if t == "record":
        return {f.name: to_python(f.type, value.get(f.name)) for f in schema.fields}
    if t == "array":
        return [to_python(schema.items, v) for v in value]
    if t == "map":
        return {k: to_python(schema.values, v) for k, v in value.items()}
    return value


ids = {}
for line in open(f"{src}/schemas/schema-ids.tsv"):
    if line.startswith("#") or not line.strip():
        continue
    sid, record, path = line.split("\t")
    ids[path.strip()] = int(sid)

names = ["Reading", "DeadLetter", "Building", "Aggregate", "Weather", "FeatureVector",
         "AnomalyScore", "Forecast", "Alert", "Feedback", "ModelVersion"]
for name in names:
    text = open(f"{src}/schemas/{name}.avsc").read()
    schema = avro.schema.parse(text)
    check(schema.fullname == f"hvacstream.{name}", f"{name}: full name {schema.fullname}")
    sample = json.load(open(f"{src}/tests/data/samples/{name}.json"))

    # C encodes, Python decodes.
    enc = subprocess.run([tool, "encode", name], input=json.dumps(sample).encode(),
                         capture_output=True)
    check(enc.returncode == 0, f"{name}: C encode: {enc.stderr.decode()}")
    if enc.returncode != 0:
        continue
    magic, sid = struct.unpack(">bI", enc.stdout[:5])
    check(magic == 0 and sid == ids[f"{name}.avsc"], f"{name}: header {magic} {sid}")
    decoded = avro.io.DatumReader(schema).read(avro.io.BinaryDecoder(io.BytesIO(enc.stdout[5:])))
    check(natural(decoded) == sample, f"{name}: C->Python differs:\n{natural(decoded)}\n{sample}")

    # Python encodes, C decodes.
    buf = io.BytesIO()
    buf.write(struct.pack(">bI", 0, ids[f"{name}.avsc"]))
    avro.io.DatumWriter(schema).write(to_python(schema, sample), avro.io.BinaryEncoder(buf))
    dec = subprocess.run([tool, "decode", name], input=buf.getvalue(), capture_output=True)
    check(dec.returncode == 0, f"{name}: C decode: {dec.stderr.decode()}")
    if dec.returncode == 0:
        check(json.loads(dec.stdout) == sample, f"{name}: Python->C differs:\n{dec.stdout}")
    check(buf.getvalue() == enc.stdout, f"{name}: C and Python encodings differ byte for byte")


def check_evolution(name, added, version="v1", apt_added=None):
    """v1 (history/<name>.v1.avsc) against the current schema, both directions across the two
    implementations: python3-avro as a v1 reader of our current bytes drops the fields v1 lacked
    (`added`, their defaults; `apt_added` likewise in every apartment of a Building); our
    decoder reads python3-avro's v1 bytes with those defaults."""
    v1_path = f"history/{name}.{version}.avsc"
    v1 = avro.schema.parse(open(f"{src}/schemas/{v1_path}").read())
    v2 = avro.schema.parse(open(f"{src}/schemas/{name}.avsc").read())
    sample = json.load(open(f"{src}/tests/data/samples/{name}.json"))
    check(all(sample.get(k) not in (None, []) for k in added),
          f"{name} sample carries {', '.join(added)}")
    old = {k: v for k, v in sample.items() if k not in added}
    want = dict(old, **added)
    if apt_added:
        check(all(a.get(k) is not None for a in sample["apartments"] for k in apt_added),
              f"{name} sample's apartments carry {', '.join(apt_added)}")
        old["apartments"] = [{k: v for k, v in a.items() if k not in apt_added}
                             for a in sample["apartments"]]
        want["apartments"] = [dict(a, **apt_added) for a in old["apartments"]]
    enc = subprocess.run([tool, "encode", name], input=json.dumps(sample).encode(),
                         capture_output=True)
    cur = ids[f"{name}.avsc"]
    check(enc.returncode == 0 and struct.unpack(">bI", enc.stdout[:5]) == (0, cur),
          f"{name} current: C encode, id {cur}")
    if enc.returncode == 0:
        as_v1 = avro.io.DatumReader(v2, v1).read(avro.io.BinaryDecoder(io.BytesIO(enc.stdout[5:])))
        check(natural(as_v1) == old,
              f"{name} current read by a v1 reader (python):\n{natural(as_v1)}")
    buf = io.BytesIO()
    buf.write(struct.pack(">bI", 0, ids[v1_path]))
    avro.io.DatumWriter(v1).write(to_python(v1, old), avro.io.BinaryEncoder(buf))
    dec = subprocess.run([tool, "decode", name], input=buf.getvalue(), capture_output=True)
    check(dec.returncode == 0, f"{name} v1 (python) C decode: {dec.stderr.decode()}")
    if dec.returncode == 0:
        check(json.loads(dec.stdout) == want,
              f"{name} v1 (python) read by the current C reader:\n{dec.stdout}")


# Aggregate v1 (id 4) against v3 (rooms, uncounted_kwh; id 18): a v1 reader drops them, v1 bytes
# read as rooms = [], uncounted_kwh null; v2 (id 14) likewise for uncounted_kwh. Building v1
# (id 3) against v4 (team, meter; the apartments' meter): dropped, or null; v2 (id 16) for the
# meters alone.
check_evolution("Aggregate", {"rooms": [], "uncounted_kwh": None})
check_evolution("Aggregate", {"uncounted_kwh": None}, "v2")
check_evolution("Building", {"team": None, "meter": None}, "v1", {"meter": None})
check_evolution("Building", {"meter": None}, "v2", {"meter": None})
# Building v3 (id 17) against v4 (an apartment's own meter; id 20): dropped, or null.
check_evolution("Building", {}, "v3", {"meter": None})
# ModelVersion v1 (id 11) against v2 (per-fold backtest figures, id 19): folds dropped, or [].
check_evolution("ModelVersion", {"folds": []})

# Older versions in history/ parse too.
for path in ids:
    if path.startswith("history/"):
        avro.schema.parse(open(f"{src}/schemas/{path}").read())
        passed += 1

print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
