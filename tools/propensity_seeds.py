#!/usr/bin/env python3
"""`tailor eval propensity` over several stratified splits, with mean and sd.

    tools/propensity_seeds.py DATA.csv[.gz] [--seeds 42,1,2,3,4] [--sklearn]
        [--work /tmp/propensity-seeds] [--tailor build/bin/tailor] [--json OUT]
        -- --label y --positive yes --drop duration [other eval flags]

One split moves a bank-marketing AUC by about ±0.007, more than most
differences worth deciding on, so figures are compared over several. Each
seed is split with tools/bank_split.py (--sklearn: scikit-learn's split for
that random_state), evaluated, and reported; the summary gives mean ± sd of
the served gbdt, the logistic baseline and their paired difference.
Standard library only.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def mean_sd(xs):
    return statistics.mean(xs), (statistics.stdev(xs) if len(xs) > 1 else 0.0)


def main() -> int:
    argv = sys.argv[1:]
    eval_args = []
    if "--" in argv:
        cut = argv.index("--")
        argv, eval_args = argv[:cut], argv[cut + 1 :]
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("data")
    ap.add_argument("--seeds", default="42,1,2,3,4")
    ap.add_argument("--sklearn", action="store_true")
    ap.add_argument("--work", default="/tmp/propensity-seeds")
    ap.add_argument("--tailor", default=os.path.join(HERE, "..", "build", "bin", "tailor"))
    ap.add_argument("--json")
    a = ap.parse_args(argv)
    try:
        seeds = [int(s) for s in a.seeds.split(",") if s.strip()]
    except ValueError:
        print(f"--seeds: expected comma-separated integers, got '{a.seeds}'", file=sys.stderr)
        return 2
    if not seeds:
        print("--seeds: no seed given", file=sys.stderr)
        return 2
    if not eval_args:
        print("give the eval flags after --, e.g. -- --label y --positive yes", file=sys.stderr)
        return 2

    rows = []
    for i, seed in enumerate(seeds, 1):
        out = os.path.join(a.work, f"seed{seed}")
        split = [sys.executable, os.path.join(HERE, "bank_split.py"), a.data, out, "--seed", str(seed)]
        if a.sklearn:
            split.append("--sklearn")
        res = os.path.join(out, "eval.json")
        print(f"[{i}/{len(seeds)}] seed {seed}: split and evaluate", file=sys.stderr, flush=True)
        if subprocess.run(split, stderr=subprocess.DEVNULL).returncode != 0:
            print(f"seed {seed}: split failed: {' '.join(split)}", file=sys.stderr)
            return 1
        ev = [a.tailor, "eval", "propensity", "--train", os.path.join(out, "train.csv"),
              "--test", os.path.join(out, "test.csv"), "--json", res] + eval_args
        done = subprocess.run(ev, capture_output=True, text=True)
        if done.returncode != 0:
            print(f"seed {seed}: {' '.join(ev)} failed:\n{done.stderr}", file=sys.stderr)
            return 1
        with open(res, encoding="utf-8") as f:
            r = json.load(f)
        row = {"seed": seed, "gbdt_auc": r["auc"],
               "logistic_auc": r["baseline_logistic"]["auc"], "model": r["model"]}
        rows.append(row)
        print(f"    {r['model']} AUC {r['auc']:.4f}, logistic {row['logistic_auc']:.4f}",
              file=sys.stderr, flush=True)

    kind = "scikit-learn train_test_split" if a.sklearn else "tools/bank_split.py"
    print(f"\n{len(rows)} stratified splits ({kind}), test AUC")
    print(f"{'seed':>6}  {'served':>8}  {'logistic':>8}  {'diff':>7}")
    for r in rows:
        print(f"{r['seed']:>6}  {r['gbdt_auc']:8.4f}  {r['logistic_auc']:8.4f}"
              f"  {r['gbdt_auc'] - r['logistic_auc']:+7.4f}")
    g = mean_sd([r["gbdt_auc"] for r in rows])
    l = mean_sd([r["logistic_auc"] for r in rows])
    d = mean_sd([r["gbdt_auc"] - r["logistic_auc"] for r in rows])
    print(f"{'mean':>6}  {g[0]:8.4f}  {l[0]:8.4f}  {d[0]:+7.4f}")
    print(f"{'sd':>6}  {g[1]:8.4f}  {l[1]:8.4f}  {d[1]:7.4f}")
    if a.json:
        with open(a.json, "w", encoding="utf-8") as f:
            json.dump({"splits": kind, "eval_args": eval_args, "rows": rows,
                       "served_auc_mean": g[0], "served_auc_sd": g[1],
                       "logistic_auc_mean": l[0], "logistic_auc_sd": l[1]}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
