#!/usr/bin/env python3
"""Fits the response model's prior (engine/src/learning/response_model.cc):
a Platt scaling P(click) = sigmoid(a * blend + b) of the plugins' blend P on
the demo world's history.

Procedure: generate the demo world (`tailor demo`, seed 42, ending now);
copy it and delete the last day of events (the held-out day); train the
plugins on the copy (`tailor train`); for a random
sample of customers ask `tailor decide` (in-process, on the copy, placement
home, every offer) for the blend P of each offer shown; label a (customer,
offer) pair 1 when the customer clicked, carted or bought an item of the offer's
category during the held-out day; fit a, b by logistic regression (Newton,
no penalty) on (blend, label).

Usage (from the repository root, with a build in BUILD):
  python3 tools/fit_response_prior.py --build build --customers 300 --jobs 3 --work /tmp/respcal
Prints the two constants and the fit's calibration.
"""
import argparse
import concurrent.futures
import json
import math
import os
import random
import sqlite3
import subprocess
import sys

DAY_MS = 86400000


def run(cmd):
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def fit_platt(xs, ys, iters=50):
    a, b = 0.0, 0.0
    for _ in range(iters):
        # Newton step on the 2-parameter log-likelihood.
        g = [0.0, 0.0]
        h = [[0.0, 0.0], [0.0, 0.0]]
        for x, y in zip(xs, ys):
            p = 1 / (1 + math.exp(-(a * x + b)))
            g[0] += (p - y) * x
            g[1] += p - y
            w = p * (1 - p)
            h[0][0] += w * x * x
            h[0][1] += w * x
            h[1][1] += w
        h[1][0] = h[0][1]
        det = h[0][0] * h[1][1] - h[0][1] * h[1][0]
        if abs(det) < 1e-12:
            break
        da = (h[1][1] * g[0] - h[0][1] * g[1]) / det
        db = (-h[1][0] * g[0] + h[0][0] * g[1]) / det
        a, b = a - da, b - db
        if abs(da) + abs(db) < 1e-10:
            break
    return a, b


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--config", default="config/tailor.yaml")
    ap.add_argument("--customers", type=int, default=400)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--work", default="/tmp/respcal")
    ap.add_argument("--jobs", type=int, default=4, help="decides run at once")
    args = ap.parse_args()
    tailor = os.path.join(args.build, "bin", "tailor")
    plugins = os.path.join(args.build, "plugins")
    os.makedirs(args.work, exist_ok=True)
    full = os.path.join(args.work, "full.db")
    train = os.path.join(args.work, "train.db")
    run([tailor, "demo", "--store", full, "--force"])
    con = sqlite3.connect(full)
    end = con.execute("select max(ts_ms) from events").fetchone()[0] + 1
    cut = end - DAY_MS
    cat = dict(con.execute("select id, category from items"))
    positive = set()
    for cust, item in con.execute(
        "select customer_id, item_id from events where ts_ms >= ? and type in "
        "('click','purchase','add_to_cart')", (cut,)):
        if item in cat:
            positive.add((cust, cat[item]))
    customers = [r[0] for r in con.execute("select id from customers order by id")]
    con.close()
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(train + suffix):
            os.remove(train + suffix)
    run(["sqlite3", full, f".backup {train}"])
    t = sqlite3.connect(train)
    t.execute("drop trigger if exists events_append_only")
    t.execute("delete from events where ts_ms >= ?", (cut,))
    t.commit()
    t.close()
    # Train once and register the models, so that each decide loads them
    # instead of training at start.
    for plugin in ("popularity", "cf", "content", "dna"):
        run([tailor, "train", plugin, "-c", args.config, "--store", train, "--plugin-dir",
             plugins])
    rng = random.Random(args.seed)
    sample = rng.sample(customers, min(args.customers, len(customers)))
    def decide(c):
        out = run([tailor, "decide", "-c", args.config, "--store", train, "--plugin-dir", plugins,
                   "--customer", c, "--placement", "home", "--limit", "50", "--json"])
        return c, json.loads(out)

    xs, ys = [], []
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        for i, (c, reply) in enumerate(pool.map(decide, sample)):
            for o in reply.get("offers", []):
                if not o.get("category"):
                    continue
                xs.append(o["why"]["propensity"])
                ys.append(1 if (c, o["category"]) in positive else 0)
            if (i + 1) % 25 == 0:
                print(f"{i + 1}/{len(sample)} customers, {len(xs)} pairs, {sum(ys)} positive",
                      file=sys.stderr)
    with open(os.path.join(args.work, "pairs.json"), "w") as f:
        json.dump({"blend": xs, "label": ys}, f)
    a, b = fit_platt(xs, ys)
    # 10-bin reliability of the fitted prior on the same pairs.
    bins = [[0, 0.0, 0] for _ in range(10)]
    for x, y in zip(xs, ys):
        p = 1 / (1 + math.exp(-(a * x + b)))
        k = min(9, int(p * 10))
        bins[k][0] += 1
        bins[k][1] += p
        bins[k][2] += y
    ece = sum(abs(s / n - k / n) * n for n, s, k in bins if n) / len(xs)
    print(json.dumps({"slope": a, "intercept": b, "pairs": len(xs), "positives": sum(ys),
                      "base_rate": sum(ys) / len(ys), "ece": ece,
                      "mean_blend": sum(xs) / len(xs)}, indent=1))


if __name__ == "__main__":
    main()
