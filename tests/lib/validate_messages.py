#!/usr/bin/python3
"""Checks messages a station published against docs/asyncapi.yaml, the contract central builds on.

Usage: validate_messages.py docs/asyncapi.yaml messages.jsonl
Each line of messages.jsonl is {"topic": "...", "payload": "<the payload as text>"}.
Every message on a channel the station sends on must parse as JSON and match one of that
channel's message payload schemas; a message on a topic no channel describes is an error too.
Messages on channels the station receives on (commands from dispatch) are not the station's and
are skipped, as are empty payloads (a retained message cleared). Prints one line per violation
and exits 1 if there is any; prints how many were checked otherwise.
"""
import json
import re
import sys

try:
    import jsonschema
    import yaml
except ImportError as e:  # what the test command installs: say so
    sys.exit(f"cannot validate the contract: {e} (apt-get install python3-jsonschema python3-yaml)")

spec_path, messages_path = sys.argv[1], sys.argv[2]
with open(spec_path, encoding="utf-8") as f:
    spec = yaml.safe_load(f)


def resolve(ref):
    node = spec
    for part in ref.lstrip("#/").split("/"):
        node = node[part]
    return node


# The station's direction per channel, from the operations.
direction = {}
for op in spec["operations"].values():
    channel = op["channel"]["$ref"].split("/")[-1]
    direction[channel] = op["action"]

channels = []
for name, ch in spec["channels"].items():
    pattern = re.escape(ch["address"])
    # {prefix} may span levels; every other parameter is one level.
    pattern = pattern.replace(re.escape("{prefix}"), ".+", 1)
    pattern = re.sub(r"\\\{[A-Za-z]+\\\}", "[^/]+", pattern)
    schemas = []
    for msg in ch["messages"].values():
        m = resolve(msg["$ref"]) if "$ref" in msg else msg
        schemas.append((m.get("name", "?"), m["payload"]))
    channels.append((name, re.compile("^" + pattern + "$"), schemas))

resolver = jsonschema.RefResolver(base_uri="", referrer=spec)
validators = {}


def validator(schema):
    key = id(schema)
    if key not in validators:
        validators[key] = jsonschema.Draft7Validator(schema, resolver=resolver)
    return validators[key]


violations = []
checked = 0
with open(messages_path, encoding="utf-8") as f:
    for line in f:
        m = json.loads(line)
        topic, text = m["topic"], m["payload"]
        if text == "":
            continue
        matches = [c for c in channels if c[1].match(topic)]
        if not matches:
            violations.append(f"{topic}: no channel of the contract has this topic")
            continue
        name, _, schemas = matches[0]
        if direction.get(name) != "send":
            continue
        try:
            payload = json.loads(text)
        except ValueError as e:
            violations.append(f"{topic}: not JSON ({e}): {text[:200]}")
            continue
        checked += 1
        errors = []
        for message, schema in schemas:
            found = sorted(validator(schema).iter_errors(payload), key=lambda e: list(e.path))
            if not found:
                errors = None
                break
            errors.extend(f"{message}: /{'/'.join(map(str, e.path))}: {e.message}" for e in found[:3])
        if errors:
            violations.append(f"{topic}: {'; '.join(errors)}\n    payload: {text[:400]}")

for v in violations:
    print(v)
if violations:
    sys.exit(1)
print(f"{checked} messages match docs/asyncapi.yaml")
