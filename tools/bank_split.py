#!/usr/bin/env python3
"""Stratified train/test split of a delimited file (default: bank marketing).

    tools/bank_split.py /work/shared/data/bank-marketing/bank-additional-full.csv.gz OUT_DIR \
        [--label y] [--test-fraction 0.2] [--seed 42]

Reads CSV (optionally .gz), keeps the header and separator, and writes
OUT_DIR/train.csv and OUT_DIR/test.csv so that each label value is split
test-fraction / (1 - test-fraction) on its own (stratified), with a seeded
shuffle: the same input and seed give the same files. Standard library only.
OUT_DIR must be outside the repository.
"""
import argparse
import gzip
import os
import random
import sys


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("src")
    ap.add_argument("out")
    ap.add_argument("--label", default="y")
    ap.add_argument("--test-fraction", type=float, default=0.2)
    ap.add_argument("--seed", type=int, default=42)
    a = ap.parse_args()
    opener = gzip.open if a.src.endswith(".gz") else open
    with opener(a.src, "rt", encoding="utf-8", newline="") as f:
        lines = f.read().splitlines()
    header, rows = lines[0], [r for r in lines[1:] if r.strip()]
    sep = ";" if header.count(";") > header.count(",") else ","
    cols = [c.strip().strip('"') for c in header.split(sep)]
    if a.label not in cols:
        print(f"label column '{a.label}' not in header: {', '.join(cols)}", file=sys.stderr)
        return 2
    k = cols.index(a.label)
    # The label column holds no separators in these files, so a plain split
    # finds it; the rows themselves are copied byte for byte.
    by_label = {}
    for r in rows:
        by_label.setdefault(r.split(sep)[k].strip().strip('"'), []).append(r)
    rng = random.Random(a.seed)
    train, test = [], []
    for label in sorted(by_label):
        group = by_label[label]
        rng.shuffle(group)
        n_test = round(len(group) * a.test_fraction)
        test += group[:n_test]
        train += group[n_test:]
        print(f"label {label}: {len(group) - n_test} train, {n_test} test", file=sys.stderr)
    rng.shuffle(train)
    rng.shuffle(test)
    os.makedirs(a.out, exist_ok=True)
    for name, part in (("train", train), ("test", test)):
        path = os.path.join(a.out, name + ".csv")
        with open(path, "w", encoding="utf-8", newline="") as f:
            f.write(header + "\n")
            f.writelines(r + "\n" for r in part)
        print(f"{path}: {len(part)} rows", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
