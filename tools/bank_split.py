#!/usr/bin/env python3
"""Stratified train/test split of a delimited file (default: bank marketing).

    tools/bank_split.py /work/shared/data/bank-marketing/bank-additional-full.csv.gz OUT_DIR \
        [--label y] [--test-fraction 0.2] [--seed 42] [--sklearn]

Reads CSV (optionally .gz), keeps the header and separator, and writes
OUT_DIR/train.csv and OUT_DIR/test.csv so that each label value is split
test-fraction / (1 - test-fraction) on its own (stratified), with a seeded
shuffle: the same input and seed give the same files. Standard library only.
OUT_DIR must be outside the repository.

--sklearn makes instead exactly the split (rows and their order) of
scikit-learn's train_test_split(rows, test_size=F, stratify=label,
random_state=SEED), the split most published figures on such data come from,
without needing scikit-learn or numpy.
"""
import argparse
import gzip
import math
import os
import random
import sys


class NumpyLegacyRng:
    """The stream of numpy.random.RandomState(seed), as far as permutation()."""

    def __init__(self, seed: int):
        # numpy seeds MT19937 from an int with init_genrand; Python's Random
        # runs the same generator, so only the seeding differs.
        key, s = [], seed & 0xFFFFFFFF
        for pos in range(624):
            key.append(s)
            s = (1812433253 * (s ^ (s >> 30)) + pos + 1) & 0xFFFFFFFF
        self._mt = random.Random()
        self._mt.setstate((3, tuple(key) + (624,), None))

    def _interval(self, hi: int) -> int:
        # numpy's legacy bounded draw: mask to the next power of two, reject.
        if hi == 0:
            return 0
        mask = hi
        for shift in (1, 2, 4, 8, 16):
            mask |= mask >> shift
        while True:
            v = self._mt.getrandbits(32) & mask
            if v <= hi:
                return v

    def permutation(self, items):
        a = list(items)
        for i in range(len(a) - 1, 0, -1):
            j = self._interval(i)
            a[i], a[j] = a[j], a[i]
        return a


def approximate_mode(counts, n_draws, rng):
    """scikit-learn's _approximate_mode: per-class draws summing to n_draws."""
    total = sum(counts)
    continuous = [c / total * n_draws for c in counts]
    floored = [math.floor(c) for c in continuous]
    need = int(n_draws - sum(floored))
    remainder = [c - f for c, f in zip(continuous, floored)]
    for value in sorted(set(remainder), reverse=True):
        if need <= 0:
            break
        inds = [i for i, r in enumerate(remainder) if r == value]
        add_now = min(len(inds), need)
        for k in rng.permutation(range(len(inds)))[:add_now]:
            floored[inds[k]] += 1
        need -= add_now
    return floored


def sklearn_split(labels, test_fraction, seed):
    """Row indices (train, test) as StratifiedShuffleSplit makes them."""
    n = len(labels)
    n_test = math.ceil(test_fraction * n)
    classes = sorted(set(labels))
    members = [[i for i, v in enumerate(labels) if v == c] for c in classes]
    counts = [len(m) for m in members]
    rng = NumpyLegacyRng(seed)
    n_train_i = approximate_mode(counts, n - n_test, rng)
    n_test_i = approximate_mode([c - t for c, t in zip(counts, n_train_i)], n_test, rng)
    train, test = [], []
    for m, a, b in zip(members, n_train_i, n_test_i):
        shuffled = [m[k] for k in rng.permutation(range(len(m)))]
        train += shuffled[:a]
        test += shuffled[a : a + b]
    return rng.permutation(train), rng.permutation(test)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("src")
    ap.add_argument("out")
    ap.add_argument("--label", default="y")
    ap.add_argument("--test-fraction", type=float, default=0.2)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--sklearn", action="store_true",
                    help="scikit-learn's train_test_split(stratify=...) split")
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
    labels = [r.split(sep)[k].strip().strip('"') for r in rows]
    if a.sklearn:
        train_i, test_i = sklearn_split(labels, a.test_fraction, a.seed)
        train, test = [rows[i] for i in train_i], [rows[i] for i in test_i]
    else:
        by_label = {}
        for label, r in zip(labels, rows):
            by_label.setdefault(label, []).append(r)
        rng = random.Random(a.seed)
        train, test = [], []
        for label in sorted(by_label):
            group = by_label[label]
            rng.shuffle(group)
            n_test = round(len(group) * a.test_fraction)
            test += group[:n_test]
            train += group[n_test:]
        rng.shuffle(train)
        rng.shuffle(test)
    for label in sorted(set(labels)):
        n_tr = sum(1 for r in train if r.split(sep)[k].strip().strip('"') == label)
        n_te = sum(1 for r in test if r.split(sep)[k].strip().strip('"') == label)
        print(f"label {label}: {n_tr} train, {n_te} test", file=sys.stderr)
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
