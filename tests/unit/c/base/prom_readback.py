#!/usr/bin/env python3
"""prom_readback.py FILE -- reads a Prometheus text exposition back with the reference
client's parser (Debian python3-prometheus-client) and prints one JSON line per sample:
[family, type, sample name, {labels}, value].  test_metrics.c compares these lines with
what it wrote, so escaping and values are checked by a parser that is not ours.  Exits 1
(with the parser's message) when the text does not parse."""
import json
import sys

from prometheus_client.parser import text_string_to_metric_families


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        text = f.read()
    try:
        for fam in text_string_to_metric_families(text):
            for s in fam.samples:
                print(json.dumps([fam.name, fam.type, s.name, s.labels, s.value], sort_keys=True))
    except Exception as e:  # the parser raises ValueError and others on bad input
        print("parse error: %s" % e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
