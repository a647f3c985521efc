#!/usr/bin/env python3
"""Parses a /metrics body with the Prometheus project's own parser
(prometheus_client) and prints one line per family: NAME TYPE SAMPLES.
Exits non-zero on anything the parser refuses."""
import sys

from prometheus_client.parser import text_string_to_metric_families


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        text = f.read()
    for family in text_string_to_metric_families(text):
        print(family.name, family.type, len(family.samples))


if __name__ == "__main__":
    main()
