#!/usr/bin/env python3
"""CLINC150 (data_full.json) -> CSVs for `tailor eval intent`, oos-train protocol.

    tools/clinc_split.py /work/shared/data/clinc150/data_full.json OUT_DIR

writes OUT_DIR/{train,val,test}.csv with columns text,label (label "oos" = out
of scope):
  train.csv = train + oos_train   (15,000 + 100)
  val.csv   = val + oos_val       (3,000 + 100)   choose hyperparameters here
  test.csv  = test + oos_test     (4,500 + 1,000) report only
Standard library only. OUT_DIR must be outside the repository.
"""
import csv
import json
import os
import sys


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    src, out = sys.argv[1], sys.argv[2]
    with open(src, encoding="utf-8") as f:
        data = json.load(f)
    os.makedirs(out, exist_ok=True)
    for name, parts in (("train", ("train", "oos_train")), ("val", ("val", "oos_val")),
                        ("test", ("test", "oos_test"))):
        path = os.path.join(out, name + ".csv")
        n = 0
        with open(path, "w", encoding="utf-8", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(["text", "label"])
            for part in parts:
                for text, label in data[part]:
                    w.writerow([text, label])
                    n += 1
        print(f"{path}: {n} rows", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
