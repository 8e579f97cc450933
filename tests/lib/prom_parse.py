#!/usr/bin/python3
"""Parses a Prometheus exposition with Prometheus's own Python client, the way a scraper does.

Usage: prom_parse.py text|openmetrics < exposition
Prints one JSON document: {"families": {name: type}, "samples": [[name, labels, value], ...]}.
Exits 1 with the parser's error when the text is not valid in that format (the OpenMetrics
parser is strict: # EOF, _total on counters, one family per name, no repeated sample).
"""
import json
import math
import sys

fmt = sys.argv[1]
text = sys.stdin.read()
try:
    if fmt == "openmetrics":
        from prometheus_client.openmetrics.parser import text_string_to_metric_families
    elif fmt == "text":
        from prometheus_client.parser import text_string_to_metric_families
    else:
        sys.exit(f"unknown format {fmt!r}")
    families = list(text_string_to_metric_families(text))
except Exception as e:  # the parser's own error, shown to the test
    print(f"parse error ({fmt}): {e}", file=sys.stderr)
    sys.exit(1)
out = {"families": {}, "samples": []}
for f in families:
    out["families"][f.name] = f.type
    for s in f.samples:
        v = s.value
        out["samples"].append([s.name, s.labels, None if math.isnan(v) else v])
print(json.dumps(out))
