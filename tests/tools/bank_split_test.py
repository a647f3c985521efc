#!/usr/bin/env python3
"""tools/bank_split.py: stratified, deterministic, and --sklearn matching
scikit-learn's train_test_split row for row.

The expected index lists were produced once with scikit-learn 1.2
(train_test_split(numpy.arange(n), test_size=F, stratify=labels,
random_state=SEED)); scikit-learn is not needed to run this test.
"""
import os
import subprocess
import sys
import tempfile
import unittest

TOOL = os.path.join(os.path.dirname(__file__), "..", "..", "tools", "bank_split.py")

MIXED = ["b", "b", "c", "a", "b", "b", "a", "b", "c", "a", "b", "c",
         "a", "b", "c", "b", "b", "c", "a", "b", "b", "a", "b"]
TIED = ["x", "y", "z"] * 5  # equal classes: sklearn breaks ties with the rng

# (labels, seed, test fraction) -> (train rows, test rows), in sklearn's order
SKLEARN = {
    ("mixed", 42, 0.2): ([8, 4, 18, 15, 2, 10, 1, 9, 21, 14, 5, 11, 20, 0, 22, 16, 3, 6],
                         [7, 19, 13, 12, 17]),
    ("mixed", 0, 0.3): ([17, 14, 9, 20, 8, 6, 0, 1, 22, 13, 21, 12, 5, 16, 19, 11],
                        [4, 18, 3, 15, 2, 7, 10]),
    ("mixed", 7, 0.25): ([10, 9, 13, 22, 1, 21, 17, 3, 7, 12, 2, 5, 8, 0, 4, 11, 20],
                         [19, 18, 15, 6, 14, 16]),
    ("tied", 42, 0.3): ([0, 7, 11, 3, 2, 4, 9, 6, 10, 5], [8, 13, 12, 14, 1]),
    ("tied", 3, 0.3): ([13, 14, 0, 6, 5, 7, 12, 4, 2, 10], [11, 9, 8, 3, 1]),
}


class BankSplitTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()

    def tearDown(self):
        self.tmp.cleanup()

    def split(self, labels, *args):
        """Writes a ;-separated file whose row i has id i; returns the ids."""
        src = os.path.join(self.tmp.name, "in.csv")
        with open(src, "w", encoding="utf-8") as f:
            f.write('"id";"x";"y"\n')
            for i, label in enumerate(labels):
                f.write(f'{i};{i * 0.5};"{label}"\n')
        out = os.path.join(self.tmp.name, "out")
        done = subprocess.run([sys.executable, TOOL, src, out, *args],
                              capture_output=True, text=True)
        self.assertEqual(done.returncode, 0, done.stderr)
        parts = []
        for name in ("train", "test"):
            with open(os.path.join(out, name + ".csv"), encoding="utf-8") as f:
                lines = f.read().splitlines()
            self.assertEqual(lines[0], '"id";"x";"y"')
            for line in lines[1:]:  # rows are copied byte for byte
                i = int(line.split(";")[0])
                self.assertEqual(line, f'{i};{i * 0.5};"{labels[i]}"')
            parts.append([int(line.split(";")[0]) for line in lines[1:]])
        return parts

    def test_sklearn_split_matches_row_for_row(self):
        for (which, seed, fraction), want in SKLEARN.items():
            labels = MIXED if which == "mixed" else TIED
            with self.subTest(labels=which, seed=seed, fraction=fraction):
                got = self.split(labels, "--sklearn", "--seed", str(seed),
                                 "--test-fraction", str(fraction))
                self.assertEqual(got, list(want))

    def test_default_split_is_stratified_deterministic_and_seeded(self):
        labels = ["no"] * 80 + ["yes"] * 20
        train, test = self.split(labels, "--seed", "5")
        self.assertEqual(sorted(train + test), list(range(100)))
        self.assertEqual(sum(labels[i] == "yes" for i in test), 4)
        self.assertEqual(len(test), 20)
        self.assertEqual(self.split(labels, "--seed", "5"), [train, test])
        self.assertNotEqual(self.split(labels, "--seed", "6")[1], test)

    def test_unknown_label_column_is_named(self):
        src = os.path.join(self.tmp.name, "in.csv")
        with open(src, "w", encoding="utf-8") as f:
            f.write("a,b\n1,2\n")
        done = subprocess.run([sys.executable, TOOL, src, self.tmp.name + "/o", "--label", "y"],
                              capture_output=True, text=True)
        self.assertEqual(done.returncode, 2)
        self.assertIn("label column 'y' not in header: a, b", done.stderr)


if __name__ == "__main__":
    unittest.main()
