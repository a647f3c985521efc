#!/usr/bin/env python3
"""Produce the retail train/test split of issue 4 (plugins/cf/README.md) from the UCI
Online Retail file, with the Python standard library only.

Protocol:
  * keep rows with a CustomerID, an InvoiceNo not starting with "C"
    (cancellations) and Quantity > 0;
  * train = rows with InvoiceDate before --cutoff (default 2011-09-01);
  * test  = rows from --cutoff up to --end (default: no end) for customers and
    items seen in train, only items that customer has no train row for,
    deduplicated per customer-item (first occurrence kept).

Writes OUT/train.csv and OUT/test.csv (customer_id,item_id,timestamp,quantity,
price; every train row is kept, repeats included) and OUT/items.csv
(item_id,title,price: the most frequent description and the median unit price
in train), and prints the counts.

A validation split that never looks at the test period is the same tool with
an earlier cutoff and an end: --cutoff 2011-06-01 --end 2011-09-01.

  python3 tools/retail_split.py /work/shared/data/online-retail/online_retail.csv.gz /tmp/retail
"""
import argparse
import collections
import csv
import gzip
import io
import os
import statistics
import sys
from datetime import datetime


def parse_date(text):
    # The file has "2010-12-01 08:26:00"; some copies use "12/1/2010 8:26".
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%m/%d/%Y %H:%M"):
        try:
            return datetime.strptime(text.strip(), fmt)
        except ValueError:
            pass
    raise ValueError("unrecognised InvoiceDate %r" % text)


def customer_id(text):
    text = text.strip()
    if text.endswith(".0"):  # some exports write the id as a float
        text = text[:-2]
    return text


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("input", help="online_retail.csv or .csv.gz (read in place)")
    ap.add_argument("out", help="output directory (created)")
    ap.add_argument("--cutoff", default="2011-09-01", help="first day of the test period")
    ap.add_argument("--end", default=None, help="first day after the test period (optional)")
    args = ap.parse_args()

    cutoff = datetime.strptime(args.cutoff, "%Y-%m-%d")
    end = datetime.strptime(args.end, "%Y-%m-%d") if args.end else None
    opener = gzip.open if args.input.endswith(".gz") else open
    rows = []  # (date, customer, item, quantity, price, description)
    kept = dropped = 0
    with opener(args.input, "rb") as raw:
        reader = csv.DictReader(io.TextIOWrapper(raw, encoding="utf-8", errors="replace",
                                                 newline=""))
        for r in reader:
            cust = customer_id(r.get("CustomerID") or "")
            inv = (r.get("InvoiceNo") or "").strip()
            try:
                qty = float(r.get("Quantity") or "0")
            except ValueError:
                qty = 0
            if not cust or inv.startswith("C") or qty <= 0:
                dropped += 1
                continue
            when = parse_date(r["InvoiceDate"])
            if end is not None and when >= end:
                dropped += 1
                continue
            try:
                price = float(r.get("UnitPrice") or "0")
            except ValueError:
                price = 0.0
            rows.append((when, cust, r["StockCode"].strip(), qty, price,
                         (r.get("Description") or "").strip()))
            kept += 1
    rows.sort(key=lambda x: x[0])  # stable: file order within one timestamp

    train = [x for x in rows if x[0] < cutoff]
    later = [x for x in rows if x[0] >= cutoff]
    seen_items = {x[2] for x in train}
    history = collections.defaultdict(set)
    for x in train:
        history[x[1]].add(x[2])
    test, pairs = [], set()
    for x in later:
        cust, item = x[1], x[2]
        if cust not in history or item not in seen_items or item in history[cust]:
            continue
        if (cust, item) in pairs:
            continue
        pairs.add((cust, item))
        test.append(x)

    os.makedirs(args.out, exist_ok=True)

    def write(name, data):
        with open(os.path.join(args.out, name), "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["customer_id", "item_id", "timestamp", "quantity", "price"])
            for when, cust, item, qty, price, _ in data:
                w.writerow([cust, item, when.strftime("%Y-%m-%dT%H:%M:%SZ"), "%g" % qty,
                            "%g" % price])

    write("train.csv", train)
    write("test.csv", test)

    titles = collections.defaultdict(collections.Counter)
    prices = collections.defaultdict(list)
    for _, _, item, _, price, desc in train:
        if desc:
            titles[item][desc] += 1
        if price > 0:
            prices[item].append(price)
    with open(os.path.join(args.out, "items.csv"), "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["item_id", "title", "price"])
        for item in sorted(seen_items):
            title = titles[item].most_common(1)[0][0] if titles[item] else ""
            price = statistics.median(prices[item]) if prices[item] else 0
            w.writerow([item, title, "%g" % price])

    print("kept %d rows (dropped %d); train %d rows, %d customers, %d items; "
          "test %d customer-item pairs, %d customers -> %s" %
          (kept, dropped, len(train), len(history), len(seen_items), len(test),
           len({x[1] for x in test}), args.out))


if __name__ == "__main__":
    sys.exit(main())
