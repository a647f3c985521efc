#!/usr/bin/env python3
"""Checks real requests and replies from tailord against docs/schema/.

Input: a JSON Lines file of {"request": {...}, "reply": {...}} pairs, as a
test recorded them. Every request is validated against docs/schema/TYPE.json
and its reply against TYPE.reply.json, or error.reply.json for an error.
Where tailord refused a request as bad_request, the request's schema must
refuse it too (the schema is not looser than the server). Prints one line per
pair and exits 1 on any disagreement."""
import json
import os
import sys

import jsonschema

SCHEMA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs", "schema")


def load(name):
    with open(os.path.join(SCHEMA_DIR, name), encoding="utf-8") as f:
        schema = json.load(f)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def main():
    failures = 0
    validators = {}

    def validator(name):
        if name not in validators:
            validators[name] = load(name)
        return validators[name]

    with open(sys.argv[1], encoding="utf-8") as f:
        pairs = [json.loads(line) for line in f if line.strip()]
    for n, pair in enumerate(pairs):
        request, reply = pair["request"], pair["reply"]
        kind = request.get("type", "?")
        problems = []
        request_errors = list(validator(kind + ".json").iter_errors(request))
        refused = reply.get("error", {}).get("code") == "bad_request"
        if refused and not request_errors:
            problems.append("tailord refused it (" + reply["error"]["message"] +
                            ") but the schema accepts it")
        if not refused and request_errors:
            problems.append("request: " + request_errors[0].message)
        reply_schema = "error.reply.json" if "error" in reply else kind + ".reply.json"
        for e in validator(reply_schema).iter_errors(reply):
            problems.append("reply (" + reply_schema + ") at /" +
                            "/".join(str(p) for p in e.absolute_path) + ": " + e.message)
        status = "ok" if not problems else "FAIL"
        print(f"{n:3} {kind:18} {'refused' if refused else 'accepted':8} {status}")
        for p in problems:
            print("      " + p)
        failures += bool(problems)
    print(f"{len(pairs)} pairs, {failures} disagreements")
    sys.exit(1 if failures or not pairs else 0)


if __name__ == "__main__":
    main()
