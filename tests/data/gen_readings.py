#!/usr/bin/python3
"""Writes readings.sample.jsonl: deterministic raw meter data in the seeds' format (001/004)
for the demo and tests. Two buildings, four apartments each with three rooms, one autumn day
at 15-minute steps; tablets send only values that changed (rounded to the sensor's
resolution), cumulative counters rise with heating demand, setpoints follow a night set-back.
One to three lines of each kind of bad input are mixed in, each marked by its apartment id
"bad_<reason>" (the reason `hvsctl ingest` must give it) so tests can count them.

usage: gen_readings.py > readings.sample.jsonl"""
import datetime
import json
import math
import random

rng = random.Random(20241027)
start = datetime.datetime(2024, 10, 27, tzinfo=datetime.timezone.utc)
rooms = ["living_room", "bedroom", "kitchen"]
out = []


def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


for b, (bldg, loss) in enumerate([("bldg_A123", 0.9), ("bldg_B777", 0.45)]):
    for a in range(4):
        apt = f"apt_{(a + 1) * 100 + b + 1}"
        heat = 10000 + rng.uniform(0, 5000)
        water = 50000 + rng.uniform(0, 20000)
        temps = {r: 20.5 + rng.uniform(-1, 1) for r in rooms}
        last = {}
        for step in range(96):
            t = start + datetime.timedelta(minutes=15 * step)
            hour = t.hour + t.minute / 60
            outdoor = 6 + 5 * math.sin((hour - 9) / 24 * 2 * math.pi)
            setpoint = 18.0 if hour < 6 or hour >= 22 else 21.5
            readings = []
            demand = 0.0
            for r in rooms:
                temps[r] += 0.25 * (setpoint - temps[r]) + rng.gauss(0, 0.05)
                demand += max(0.0, (temps[r] - outdoor)) * loss * 0.01
                for sensor, value in (("room_temp_c", round(temps[r], 1)),
                                      ("setpoint_temp_c", setpoint)):
                    if last.get((sensor, r)) != value:
                        readings.append({"sensor_type": sensor, "room_name": r, "value": value})
                        last[(sensor, r)] = value
            heat += demand
            if 6 <= hour < 9 or 18 <= hour < 22:
                water += rng.choice([0, 0, 5, 12, 40])
            for sensor, value in (("heating_energy_kwh", round(heat, 1)),
                                  ("hot_water_litres", round(water, 1))):
                if last.get(sensor) != value:
                    readings.append({"sensor_type": sensor, "value": value})
                    last[sensor] = value
            if readings:
                out.append({"timestamp_str": iso(t), "building_id": bldg,
                            "apartment_id": apt, "readings": readings})


def bad(reason, line):
    out.insert(rng.randrange(len(out)), line)


T = '"timestamp_str": "2024-10-27T12:00:00Z"'
R = '"readings": [{"sensor_type": "room_temp_c", "room_name": "kitchen", "value": 21.0}]'
bad("json_missing_field", f'{{{T}, "apartment_id": "bad_json_missing_field", {R}}}')
bad("json_wrong_type", f'{{{T}, "building_id": "bldg_A123", "apartment_id": "bad_json_wrong_type", '
    '"readings": [{"sensor_type": "room_temp_c", "value": "21.0"}]}')
bad("non_finite", f'{{{T}, "building_id": "bldg_A123", "apartment_id": "bad_non_finite", '
    '"readings": [{"sensor_type": "heating_energy_kwh", "value": NaN}]}')
bad("timestamp_too_old", '{"timestamp_str": "1970-01-01T00:00:00Z", "building_id": "bldg_A123", '
    f'"apartment_id": "bad_timestamp_too_old", {R}}}')
bad("timestamp_in_future", '{"timestamp_str": "2999-01-01T00:00:00Z", "building_id": "bldg_A123", '
    f'"apartment_id": "bad_timestamp_in_future", {R}}}')
bad("id_too_long", f'{{{T}, "building_id": "{"b" * 300}", "apartment_id": "bad_id_too_long", {R}}}')
bad("unknown_sensor", f'{{{T}, "building_id": "bldg_B777", "apartment_id": "bad_unknown_sensor", '
    '"readings": [{"sensor_type": "co2_ppm", "value": 450}]}')
bad("value_out_of_range", f'{{{T}, "building_id": "bldg_B777", "apartment_id": "bad_value_out_of_range", '
    '"readings": [{"sensor_type": "hot_water_litres", "value": -12.5}]}')
bad("json_syntax", '{"timestamp_str": "2024-10-27T12:00:00Z", "building_id": "bldg_B777", "apartment_id": "bad_json_syntax"')
bad("json_missing_field", f'{{{T}, "building_id": "bldg_B777", "apartment_id": "bad_json_missing_field"}}')
bad("json_wrong_type", f'{{{T}, "building_id": "bldg_B777", "apartment_id": "bad_json_wrong_type", '
    '"readings": {"sensor_type": "room_temp_c", "value": 21.0}}')
bad("non_finite", f'{{{T}, "building_id": "bldg_B777", "apartment_id": "bad_non_finite", '
    '"readings": [{"sensor_type": "room_temp_c", "room_name": "bedroom", "value": -Infinity}]}')
bad("non_finite", f'{{{T}, "building_id": "bldg_A123", "apartment_id": "bad_non_finite", '
    '"readings": [{"sensor_type": "hot_water_litres", "value": 1e999}]}')
bad("bad_timestamp", '{"timestamp_str": "2024-10-27 12:00:00", "building_id": "bldg_A123", '
    f'"apartment_id": "bad_bad_timestamp", {R}}}')
bad("bad_timestamp", '{"timestamp_str": "27/10/2024 12:00", "building_id": "bldg_B777", '
    f'"apartment_id": "bad_bad_timestamp", {R}}}')
bad("bad_id", f'{{{T}, "building_id": "", "apartment_id": "bad_bad_id", {R}}}')
bad("empty_readings", f'{{{T}, "building_id": "bldg_A123", "apartment_id": "bad_empty_readings", '
    '"readings": []}')
many = ", ".join('{"sensor_type": "room_temp_c", "room_name": "room_%d", "value": 20.0}' % i
                 for i in range(40))
bad("too_many_readings", f'{{{T}, "building_id": "bldg_A123", "apartment_id": "bad_too_many_readings", '
    f'"readings": [{many}]}}')
bad("value_out_of_range", f'{{{T}, "building_id": "bldg_A123", "apartment_id": "bad_value_out_of_range", '
    '"readings": [{"sensor_type": "room_temp_c", "room_name": "kitchen", "value": 500}]}')

for rec in out:
    print(rec if isinstance(rec, str) else json.dumps(rec))
