#!/usr/bin/python3
"""Soak: mixed traffic against a real tailord for a while, RSS and latency
over time (README § Security and privacy, Soak).

Builds a demo store in a temp directory, starts tailord on free ports, and
runs at once: decides on home and recs (two DEALERs, a few in flight each),
acknowledged event batches, explains of recent decisions, and a
rules.reload every --reload-every seconds. Every --interval seconds it prints
one line: RSS, decisions and events per second, decide p50/p99, errors. At
the end: RSS drift after the warm-up (the first quarter), and JSON.

Exit status: 0 when tailord served throughout with no error reply and
stopped cleanly; 1 otherwise; 2 on a set-up error.

Usage: tools/soak.py [--duration 60] [--interval 5] [--json OUT]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

try:
    import zmq
except ImportError:
    sys.exit("soak: pyzmq is missing (Debian: python3-zmq; run with /usr/bin/python3)")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def store_mb(work):
    """The store's files (database and WAL) in MB: what the traffic wrote."""
    total = 0
    for name in ("soak.db", "soak.db-wal"):
        try:
            total += os.path.getsize(os.path.join(work, name))
        except OSError:
            pass
    return total / 1e6


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def percentile(values, q):
    if not values:
        return 0.0
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


class Window:
    """What the load threads saw since the last report (thread-safe)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        self.decide_ms, self.events, self.explains, self.reloads = [], 0, 0, 0
        self.errors = []

    def take(self):
        with self.lock:
            out = (self.decide_ms, self.events, self.explains, self.reloads, self.errors)
            self.reset()
            return out


def start_tailord(args, work):
    store = os.path.join(work, "soak.db")
    subprocess.run([args.tailor, "demo", "--store", store, "--customers", "2000",
                    "--items", "500", "--days", "30", "--seed", "7"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ready = os.path.join(work, "ready.json")
    log = open(os.path.join(work, "tailord.log"), "w")
    proc = subprocess.Popen(
        [args.tailord, "--config", os.path.join(args.config, "tailor.yaml"), "--store", store,
         "--requests", "tcp://127.0.0.1:*", "--events", "tcp://127.0.0.1:*",
         "--outbound", "tcp://127.0.0.1:*", "--plugin-dir", args.plugin_dir,
         "--ready-file", ready, "--ready-after-training", "--log-level", "warn"],
        stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not os.path.exists(ready):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            sys.exit(f"soak: tailord did not start; see {log.name}")
        time.sleep(0.05)
    with open(ready) as f:
        return proc, json.load(f)["requests"]


def load(endpoint, stop, window, make, window_size, pace_s=0.0):
    """Keeps window_size requests in flight on one DEALER; make(i) -> message,
    at most one every pace_s seconds."""
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)
    sent, i = {}, 0
    while not stop.is_set():
        while len(sent) < window_size:
            if pace_s:
                time.sleep(pace_s)
            i += 1
            msg = make(i)
            msg.update({"v": 1, "id": str(i)})
            sent[str(i)] = (time.monotonic(), msg["type"])
            sock.send_string(json.dumps(msg))
        if not sock.poll(200):
            continue
        reply = json.loads(sock.recv_string())
        t0, kind = sent.pop(reply.get("id"), (time.monotonic(), "?"))
        with window.lock:
            if "error" in reply:
                window.errors.append(reply["error"])
            elif kind == "decide":
                window.decide_ms.append((time.monotonic() - t0) * 1000)
                recent.append(reply["decision"])
                del recent[:-100]
            elif kind == "events":
                window.events += EVENTS_PER_BATCH
            elif kind == "explain":
                window.explains += 1
            elif kind == "rules.reload":
                window.reloads += 1
    sock.close()


recent = []  # decision ids to explain
EVENTS_PER_BATCH = 20


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=60, help="seconds of traffic")
    ap.add_argument("--interval", type=float, default=5, help="seconds per report line")
    ap.add_argument("--reload-every", type=float, default=10)
    ap.add_argument("--tailord", default=os.path.join(REPO, "build/bin/tailord"))
    ap.add_argument("--tailor", default=os.path.join(REPO, "build/bin/tailor"))
    ap.add_argument("--plugin-dir", default=os.path.join(REPO, "build/plugins"))
    ap.add_argument("--config", default=os.path.join(REPO, "config"))
    ap.add_argument("--json", metavar="OUT")
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="tailor-soak-")
    proc, endpoint = start_tailord(args, work)
    stop, window = threading.Event(), Window()

    def decide(i):
        placement = "recs" if i % 3 == 0 else "home"
        return {"type": "decide", "customer": f"c{i % 2000}", "channel": "web",
                "placement": placement}

    def events(i):
        return {"type": "events",
                "events": [{"customer": f"c{(i * EVENTS_PER_BATCH + k) % 2000}", "event": "view",
                            "item": f"i{(i + k) % 500}"} for k in range(EVENTS_PER_BATCH)]}

    def admin(i):
        # One reload in 20 admin requests; explains of recent decisions between.
        if i % 20 == 0:
            return {"type": "rules.reload"}
        return {"type": "explain", "decision": recent[-1]} if recent else {"type": "health"}

    loads = ((decide, 4, 0.0), (decide, 4, 0.0), (events, 2, 0.0),
             (admin, 1, args.reload_every / 20))
    threads = [threading.Thread(target=load, args=(endpoint, stop, window, f, n, pace),
                                daemon=True) for f, n, pace in loads]
    for t in threads:
        t.start()

    rows, t0, failed = [], time.monotonic(), []
    print(f"{'t s':>6} {'RSS MB':>8} {'store MB':>9} {'dec/s':>7} {'p50 ms':>7} {'p99 ms':>7} "
          f"{'events/s':>9} {'explains':>8} {'reloads':>7} errors", flush=True)
    while time.monotonic() - t0 < args.duration:
        time.sleep(args.interval)
        if proc.poll() is not None:
            failed.append(f"tailord exited with {proc.returncode}")
            break
        ms, ev, ex, rl, errors = window.take()
        row = {"t_s": round(time.monotonic() - t0, 1), "rss_mb": round(rss_mb(proc.pid), 1),
               "store_mb": round(store_mb(work), 1),
               "decisions_per_s": round(len(ms) / args.interval, 1),
               "p50_ms": round(percentile(ms, 0.5), 2), "p99_ms": round(percentile(ms, 0.99), 2),
               "events_per_s": round(ev / args.interval, 1), "explains": ex, "reloads": rl,
               "errors": len(errors)}
        failed += [f"error reply: {e}" for e in errors[:3]]
        rows.append(row)
        print(f"{row['t_s']:>6} {row['rss_mb']:>8} {row['store_mb']:>9} {row['decisions_per_s']:>7} "
              f"{row['p50_ms']:>7} {row['p99_ms']:>7} {row['events_per_s']:>9} "
              f"{ex:>8} {rl:>7} {len(errors)}", flush=True)
    stop.set()
    for t in threads:
        t.join(timeout=5)
    proc.terminate()
    code = proc.wait(timeout=30)
    if code != 0:
        failed.append(f"SIGTERM: exit {code}")

    warm = rows[len(rows) // 4:] or rows
    drift = (warm[-1]["rss_mb"] - warm[0]["rss_mb"]) if warm else 0.0
    summary = {"duration_s": args.duration, "intervals": rows, "rss_drift_after_warmup_mb":
               round(drift, 1), "failures": failed, "ok": not failed}
    print(f"\nRSS after warm-up: {warm[0]['rss_mb'] if warm else 0} -> "
          f"{warm[-1]['rss_mb'] if warm else 0} MB (drift {drift:+.1f} MB); "
          f"{'ok' if not failed else 'FAILED: ' + '; '.join(failed[:3])}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=2)
    if failed:
        print(f"(store and log kept in {work})")
        sys.exit(1)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
