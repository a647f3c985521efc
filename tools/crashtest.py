#!/usr/bin/python3
"""Crash-safety harness: SIGKILL tailord under load and check what it promised.

Each cycle drives tailord from several sockets at once (acknowledged `event`
and `events` requests, `decide` requests, fire-and-forget PUSH events, events
that enter both shipped journeys), kills it with SIGKILL after a seeded random
delay, and then checks:

  with tailord down (the store opened read-only):
    - PRAGMA integrity_check is "ok";
    - every event the server acknowledged is in the events table (each carries
      a unique properties.crash_id);
    - every acknowledged journey entry has its journey_state row and step;
  after a restart on the same store:
    - every acknowledged decision id answers `explain` (decisions are logged
      asynchronously, README "Durability": the count that does not is
      measured and reported, not asserted);
    - every journey step pending at the kill still exists, and each one that
      was due is sent (or cancelled, or re-armed) by the restarted tailord.

The restarted tailord serves the next cycle's load. Exit status: 0 when
nothing acknowledged was lost and every check passed, 1 otherwise, 2 on a
usage or set-up error (pyzmq missing included).

Usage: tools/crashtest.py [--cycles 20] [--seed 1] [--json OUT]
"""
import argparse
import collections
import contextlib
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

try:
    import zmq
except ImportError:
    print("crashtest: pyzmq is missing (Debian: python3-zmq; "
          "run with /usr/bin/python3)", file=sys.stderr)
    sys.exit(2)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# A small demo world: generated in well under a second, and small enough that
# the plugins' training at each restart stays cheap on two cores.
DEMO_CUSTOMERS = 200
DEMO_ITEMS = 60
DEMO_DAYS = 30

KILL_DELAY_S = (0.2, 1.5)
DECIDE_INTERVAL_S = 0.003
DAY_MS = 86_400_000
START_TIMEOUT_S = 60.0
EXPLAIN_TIMEOUT_S = 30.0
# How long a restarted tailord may take to handle the steps that were due at
# the kill; its scheduler looks every 100 ms, so this is generous on purpose
# (ctest may run other suites beside this one).
JOURNEY_DUE_TIMEOUT_S = 15.0

# Which rows an acknowledged journey-entering event must have left behind
# (config/journeys/*.yaml): the journey's state and its first stage's step.
JOURNEY_ENTRY_STEP = {"post_purchase": "accessory_email",
                      "welcome": "welcome_app_email"}


def now_ms():
    return int(time.time() * 1000)


# --- tailord -----------------------------------------------------------------

class Tailord:
    """One tailord process on free ports, learned from its --ready-file (as
    tests/support/tailord.cc and tools/tailord_process.cc do)."""

    def __init__(self, args, store, work_dir):
        self.args = args
        self.store = store
        self.work_dir = work_dir
        self.ready_path = os.path.join(work_dir, "tailord.ready.json")
        self.log_path = os.path.join(work_dir, "tailord.log")
        self.proc = None
        self.endpoints = {}
        self.starts = 0

    def start(self):
        if os.path.exists(self.ready_path):
            os.remove(self.ready_path)
        cmd = [self.args.tailord,
               "--config", os.path.join(self.args.config, "tailor.yaml"),
               "--store", self.store,
               "--requests", "tcp://127.0.0.1:*",
               "--events", "tcp://127.0.0.1:*",
               "--outbound", "tcp://127.0.0.1:*",
               "--plugin-dir", self.args.plugin_dir,
               "--ready-file", self.ready_path,
               "--log-level", "warn"]
        if self.args.durable_decisions:
            cmd.append("--durable-decisions")
        self.starts += 1
        with open(self.log_path, "a") as log:
            log.write(f"--- start {self.starts} ---\n")
            log.flush()
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=log,
                                         stdin=subprocess.DEVNULL)
        self.endpoints = self._wait_ready()

    def _wait_ready(self):
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SetupError(f"tailord exited with {self.proc.returncode} "
                                 f"during start-up:\n{self.log_tail()}")
            try:
                # Written to a temporary file and renamed: never half there.
                with open(self.ready_path) as f:
                    return json.load(f)
            except (FileNotFoundError, json.JSONDecodeError):
                time.sleep(0.01)
        raise SetupError(f"tailord not ready in {START_TIMEOUT_S:.0f} s:\n"
                         f"{self.log_tail()}")

    def kill(self):
        """SIGKILL, and wait until the process is gone (its files closed)."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def terminate(self, timeout_s=30.0):
        """SIGTERM; the exit status (README: 0 after a clean drain)."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def log_tail(self, n=4000):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-n:]
        except OSError:
            return ""


class SetupError(Exception):
    pass


# --- the store, read directly ------------------------------------------------

@contextlib.contextmanager
def open_ro(store):
    """A read-only connection, closed after use. Not immutable=1: that would
    ignore the WAL, where the last commits before the kill are."""
    db = sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=10)
    try:
        yield db
    finally:
        db.close()


def build_store(args, store):
    cmd = [args.tailor, "demo", "--store", store,
           "--customers", str(DEMO_CUSTOMERS), "--items", str(DEMO_ITEMS),
           "--days", str(DEMO_DAYS), "--seed", str(args.seed)]
    run = subprocess.run(cmd, capture_output=True, text=True)
    if run.returncode != 0:
        raise SetupError(f"{' '.join(cmd)} failed:\n{run.stdout}{run.stderr}")


def read_world(store):
    """What the load needs from the demo world: customers, items, phones."""
    with open_ro(store) as db:
        customers = [r[0] for r in db.execute("SELECT id FROM customers")]
        items = [r[0] for r in db.execute("SELECT id FROM items")]
        phones = [r[0] for r in db.execute(
            "SELECT id FROM items WHERE category='phones'")]
        first_seq = last_seq(db)
    if not customers or not items or not phones:
        raise SetupError("the demo store has no customers, items or phones")
    return {"customers": customers, "items": items, "phones": phones,
            "first_seq": first_seq}


def integrity(db):
    rows = [r[0] for r in db.execute("PRAGMA integrity_check")]
    return "ok" if rows == ["ok"] else "; ".join(rows[:5])


def stored_crash_ids(db, first_seq):
    """crash_id -> how many stored events after first_seq carry it."""
    q = ("SELECT json_extract(properties, '$.crash_id') FROM events "
         "WHERE seq > ? AND properties LIKE '%crash_id%'")
    return collections.Counter(r[0] for r in db.execute(q, (first_seq,)))


def pending_steps(db):
    """Journey steps not yet sent: id -> due_ms."""
    q = "SELECT id, due_ms FROM journey_steps WHERE sent_ms IS NULL"
    return dict(db.execute(q).fetchall())


def select_in(db, sql, ids, chunk=500):
    """The rows of sql, whose `IN ({})` takes ids a chunk at a time (SQLite
    bounds the number of parameters of one statement)."""
    ids = list(ids)
    for i in range(0, len(ids), chunk):
        part = ids[i:i + chunk]
        yield from db.execute(sql.format(",".join("?" * len(part))), part)


def missing_journey_entries(db, entries):
    """The acknowledged journey entries without their state row or step."""
    customers = {c for c, _ in entries}
    states = set(select_in(db, "SELECT customer_id, journey FROM journey_state "
                               "WHERE customer_id IN ({})", customers))
    steps = set(select_in(db, "SELECT customer_id, journey, step FROM journey_steps "
                              "WHERE customer_id IN ({})", customers))
    return [(c, j) for c, j in entries
            if (c, j) not in states or (c, j, JOURNEY_ENTRY_STEP[j]) not in steps]


def published_but_pending(db, step_ids):
    """The published journey steps that the store still holds as pending."""
    return [r[0] for r in select_in(db, "SELECT id FROM journey_steps "
                                        "WHERE sent_ms IS NULL AND id IN ({})", step_ids)]


def last_seq(db):
    return db.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0]


# --- load --------------------------------------------------------------------

class Ledger:
    """What the server acknowledged during one cycle, shared by the threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.events = set()          # crash_ids acknowledged
        self.journey_entries = []    # (customer, journey) acknowledged
        self.decisions = []          # decision ids acknowledged
        self.push_sent = set()       # crash_ids sent fire-and-forget
        self.published = set()       # journey_steps ids seen on the PUB socket
        self.refused = collections.Counter()  # error replies by code
        self.errors = []             # exceptions in load threads

    def ack_events(self, events):
        with self.lock:
            for e in events:
                self.events.add(e["properties"]["crash_id"])
                if "journey" in e["properties"]:
                    self.journey_entries.append((e["customer"], e["properties"]["journey"]))

    def ack_decision(self, decision_id):
        with self.lock:
            self.decisions.append(decision_id)

    def refuse(self, reply):
        with self.lock:
            self.refused[reply.get("error", {}).get("code", "?")] += 1

    def snapshot(self):
        """A copy to check against, taken once the load has stopped."""
        with self.lock:
            return {"events": set(self.events), "entries": list(self.journey_entries),
                    "decisions": list(self.decisions), "push_sent": set(self.push_sent),
                    "published": set(self.published), "refused": dict(self.refused),
                    "errors": list(self.errors)}


class EventMaker:
    """Events with a unique crash_id; some enter a journey as new customers.

    A backdated entry (3 days ago) makes its journey step due at once, so the
    kill can catch a step that is due but not yet sent."""

    def __init__(self, world, cycle, tag, rng):
        self.world = world
        self.prefix = f"k{cycle}-{tag}"
        self.rng = rng
        self.n = 0

    def make(self):
        """One in five enters a journey, the rest are a known customer's."""
        roll = self.rng.random()
        if roll < 0.1:
            return self._journey_entry("post_purchase")
        if roll < 0.2:
            return self._journey_entry("welcome")
        return self.plain()

    def plain(self):
        return {"customer": self.rng.choice(self.world["customers"]),
                "event": self.rng.choice(("view", "view", "click", "add_to_cart")),
                "item": self.rng.choice(self.world["items"]),
                "channel": "web",
                "properties": {"crash_id": self._next_id()}}

    def _next_id(self):
        self.n += 1
        return f"{self.prefix}-{self.n}"

    def _journey_entry(self, journey):
        # A customer never seen before: welcome enters on a new customer's
        # first view, post_purchase on any phone purchase.
        crash_id = self._next_id()
        customer = f"j-{crash_id}"
        event = {"customer": customer, "channel": "web",
                 "properties": {"crash_id": crash_id, "journey": journey}}
        if journey == "post_purchase":
            event.update(event="purchase", item=self.rng.choice(self.world["phones"]),
                         value=199)
        else:
            event.update(event="view", item=self.rng.choice(self.world["items"]))
        if self.rng.random() < 0.5:
            event["ts"] = now_ms() - 3 * DAY_MS
        return event


class Dealer:
    """A DEALER socket with up to `window` requests in flight, each reply
    matched to its request by id."""

    def __init__(self, ctx, endpoint, window):
        self.sock = ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(endpoint)
        self.window = window
        self.inflight = {}
        self.n = 0

    def send(self, msg, on_reply):
        self.n += 1
        msg = {"v": 1, "id": str(self.n), **msg}
        self.inflight[msg["id"]] = on_reply
        # An empty delimiter frame first, as a REQ socket sends it.
        self.sock.send_multipart([b"", json.dumps(msg).encode()])

    def pump(self, timeout_ms):
        """Hands every reply that arrives within timeout_ms to its callback."""
        if not self.sock.poll(timeout_ms):
            return
        while True:
            try:
                frames = self.sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            reply = json.loads(frames[-1])
            callback = self.inflight.pop(reply.get("id"), None)
            if callback:
                callback(reply)

    def drive(self, next_request, stop, interval_s=0.0):
        """Keeps the window full until stop is set, sending at most one
        request per interval_s."""
        next_at = time.monotonic()
        while not stop.is_set():
            now = time.monotonic()
            if len(self.inflight) < self.window and now >= next_at:
                self.send(*next_request())
                next_at = now + interval_s
                continue
            wait_ms = (next_at - now) * 1000 if len(self.inflight) < self.window else 20
            self.pump(int(min(20, max(1, wait_ms))))

    def close(self):
        self.sock.close(linger=0)


def single_events(maker, ledger):
    """`event` requests; an event counts as acknowledged on `ok: true`."""
    def next_request():
        event = maker.make()
        msg = {"type": "event", **event}

        def on_reply(reply):
            if reply.get("ok") is True:
                ledger.ack_events([event])
            else:
                ledger.refuse(reply)
        return msg, on_reply
    return next_request


def event_batches(maker, ledger, rng):
    """`events` batches; all or nothing, so every event counts on `ok` with
    `stored` equal to the batch's size."""
    def next_request():
        events = [maker.make() for _ in range(rng.randint(2, 40))]

        def on_reply(reply):
            if reply.get("ok") is True and reply.get("stored") == len(events):
                ledger.ack_events(events)
            else:
                ledger.refuse(reply)
        return {"type": "events", "events": events}, on_reply
    return next_request


def decides(world, ledger, rng):
    """`decide` requests; a reply naming a decision acknowledges it."""
    placements = ("home", "home", "home", "checkout", "checkout", "recs")

    def next_request():
        msg = {"type": "decide", "customer": rng.choice(world["customers"]),
               "channel": "web", "placement": rng.choice(placements), "limit": 3}

        def on_reply(reply):
            if "decision" in reply and "error" not in reply:
                ledger.ack_decision(reply["decision"])
            else:
                ledger.refuse(reply)
        return msg, on_reply
    return next_request


def push_events(ctx, endpoint, maker, ledger, stop):
    """Fire-and-forget events on the PULL socket: never acknowledged, so only
    counted (how many of them were stored is reported, not checked)."""
    sock = ctx.socket(zmq.PUSH)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SNDHWM, 1000)
    sock.connect(endpoint)
    try:
        while not stop.is_set():
            event = maker.plain()
            try:
                sock.send(json.dumps({"v": 1, "type": "event", **event}).encode(),
                          zmq.NOBLOCK)
            except zmq.Again:
                time.sleep(0.005)
                continue
            with ledger.lock:
                ledger.push_sent.add(event["properties"]["crash_id"])
            time.sleep(0.002)  # a steady trickle, not a flood
    finally:
        sock.close(linger=0)


def outbound_listener(ctx, endpoint, ledger, stop):
    """Records the journey steps published during the load: each one must be
    marked sent in the store (it is committed before it is published), or the
    restarted tailord would send it a second time."""
    sock = ctx.socket(zmq.SUB)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SUBSCRIBE, b"")
    sock.connect(endpoint)
    try:
        while not stop.is_set():
            if not sock.poll(20):
                continue
            msg = json.loads(sock.recv())
            with ledger.lock:
                ledger.published.add(msg["id"])
    finally:
        sock.close(linger=0)


def start_load(ctx, endpoints, world, cycle, seed, ledger, stop):
    """Starts the load threads: two single-event DEALERs, one batch DEALER,
    one decide DEALER, one PUSH socket and one SUB on the outbound socket."""
    def rng(tag):
        return random.Random(f"{seed}/{cycle}/{tag}")

    def thread(tag, body, *args):
        def guarded():
            try:
                body(*args)
            except Exception as e:  # reported with the cycle, never lost
                with ledger.lock:
                    ledger.errors.append(f"{tag}: {e!r}")
        return threading.Thread(target=guarded, name=tag, daemon=True)

    def dealer(tag, window, next_request, interval_s=0.0):
        def body():
            d = Dealer(ctx, endpoints["requests"], window)
            try:
                d.drive(next_request, stop, interval_s)
            finally:
                d.close()
        return thread(tag, body)

    def maker(tag):
        return EventMaker(world, cycle, tag, rng(tag))

    threads = [
        thread("sub", outbound_listener, ctx, endpoints["outbound"], ledger, stop),
        dealer("e1", 4, single_events(maker("e1"), ledger)),
        dealer("e2", 4, single_events(maker("e2"), ledger)),
        dealer("b", 1, event_batches(maker("b"), ledger, rng("b-size"))),
        # Paced: each decision logs a trace of several KB (20 KB on recs), and
        # an unpaced client would grow the store by ~100 MB per 5 cycles.
        dealer("d", 2, decides(world, ledger, rng("d")), interval_s=DECIDE_INTERVAL_S),
        thread("p", push_events, ctx, endpoints["events"], maker("p"), ledger, stop),
    ]
    for t in threads:
        t.start()
    return threads


# --- checks after the restart ------------------------------------------------

def explain_all(ctx, endpoint, decision_ids):
    """Asks `explain` for every id; returns the error codes by id (not_found:
    the decision was lost)."""
    dealer = Dealer(ctx, endpoint, window=16)
    errors = {}
    todo = list(decision_ids)
    deadline = time.monotonic() + EXPLAIN_TIMEOUT_S
    try:
        while (todo or dealer.inflight) and time.monotonic() < deadline:
            while todo and len(dealer.inflight) < dealer.window:
                decision = todo.pop()

                def on_reply(reply, decision=decision):
                    if "explain" not in reply:
                        errors[decision] = reply.get("error", {}).get("code", "?")
                dealer.send({"type": "explain", "decision": decision}, on_reply)
            dealer.pump(50)
        # Unanswered within the time: counted as errors, not as lost.
        for decision in todo:
            errors[decision] = "not_asked"
        for request_id in dealer.inflight:
            errors[f"(no reply to request {request_id})"] = "timeout"
    finally:
        dealer.close()
    return errors


def follow_pending_steps(store, pending, killed_ms):
    """Waits until the restarted tailord has handled every step that was due
    at the kill, then classifies each step that was pending at the kill."""
    due = {i for i, due_ms in pending.items() if due_ms <= killed_ms}
    deadline = time.monotonic() + JOURNEY_DUE_TIMEOUT_S
    while True:
        rows = read_steps(store, due)
        # Handled: sent, cancelled (both set sent_ms) or re-armed later.
        overdue = [i for i in due
                   if i in rows and rows[i][0] is None and rows[i][1] <= killed_ms]
        if not overdue or time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    rows = read_steps(store, pending)
    result = collections.Counter(due=len(due), overdue=len(overdue))
    for step_id in pending:
        if step_id not in rows:
            result["missing"] += 1
            continue
        sent_ms, due_ms, payload = rows[step_id]
        if sent_ms is None:
            result["rearmed" if step_id in due and due_ms > killed_ms else "still_pending"] += 1
        elif "cancelled" in json.loads(payload or "{}"):
            result["cancelled"] += 1
        else:
            result["sent"] += 1
    return result


def read_steps(store, ids):
    """id -> (sent_ms, due_ms, payload) for the given journey_steps ids."""
    with open_ro(store) as db:
        sql = "SELECT id, sent_ms, due_ms, payload FROM journey_steps WHERE id IN ({})"
        return {r[0]: r[1:] for r in select_in(db, sql, ids)}


# --- one cycle ---------------------------------------------------------------

def load_and_kill(cycle, args, ctx, daemon, world, delay):
    """Drives the load for delay seconds, SIGKILLs tailord in the middle of
    it; returns what was acknowledged and when the process was gone."""
    ledger, stop = Ledger(), threading.Event()
    threads = start_load(ctx, daemon.endpoints, world, cycle, args.seed, ledger, stop)
    time.sleep(delay)
    daemon.kill()
    killed_ms = now_ms()
    stop.set()
    for t in threads:
        t.join()
    return ledger.snapshot(), killed_ms


def check_offline(store, acked, since_seq):
    """What the disk holds with nobody running, against what was acked."""
    with open_ro(store) as db:
        verdict = integrity(db)
        # Only this cycle's events: they all come after the last kill.
        stored = stored_crash_ids(db, since_seq)
        seq_at_kill = last_seq(db)
        pending = pending_steps(db)
        entries_missing = missing_journey_entries(db, acked["entries"])
        resend = published_but_pending(db, acked["published"])
    lost = sorted(acked["events"] - stored.keys())
    return {
        "seq_at_kill": seq_at_kill,
        "integrity": verdict,
        "events_acked": len(acked["events"]),
        "events_lost": len(lost),
        "lost_ids": lost[:20],
        "events_duplicated": sum(1 for i in acked["events"] if stored[i] > 1),
        "push_sent": len(acked["push_sent"]),
        "push_stored": len(acked["push_sent"] & stored.keys()),
        "journey_entries_acked": len(acked["entries"]),
        "journey_entries_missing": len(entries_missing),
        "journey_entries_missing_ids": entries_missing[:20],
        "journey_steps_published": len(acked["published"]),
        "journey_steps_published_but_pending": len(resend),
        "journeys_checked": len(pending),
    }, pending


def check_online(ctx, daemon, store, acked, pending, killed_ms):
    """Restarts tailord on the store; what it explains and sends."""
    daemon.start()
    explain_errors = explain_all(ctx, daemon.endpoints["requests"], acked["decisions"])
    codes = collections.Counter(explain_errors.values())
    return {
        "decisions_acked": len(acked["decisions"]),
        "decisions_unexplainable": codes.pop("not_found", 0),
        "explain_errors": sum(codes.values()),
        "journey_steps": dict(follow_pending_steps(store, pending, killed_ms)),
    }


def run_cycle(cycle, args, ctx, daemon, world, rng, since_seq):
    """Load, kill, check offline, restart, check online. Returns the cycle's
    figures; daemon is serving again when it returns. since_seq: the last
    event seq before the cycle's load."""
    delay = rng.uniform(*KILL_DELAY_S)
    acked, killed_ms = load_and_kill(cycle, args, ctx, daemon, world, delay)
    t0 = time.monotonic()
    offline, pending = check_offline(args.store, acked, since_seq)
    t1 = time.monotonic()
    online = check_online(ctx, daemon, args.store, acked, pending, killed_ms)
    t2 = time.monotonic()
    return {"cycle": cycle, "kill_after_s": round(delay, 3), **offline, **online,
            "refused": acked["refused"], "load_errors": acked["errors"],
            "seconds": {"offline_checks": round(t1 - t0, 3),
                        "restart_and_online_checks": round(t2 - t1, 3)}}


def cycle_failures(c, durable_decisions=False):
    """The cycle's broken promises, as text."""
    failures = []
    if durable_decisions and c["decisions_unexplainable"]:
        failures.append(f"{c['decisions_unexplainable']} acknowledged decisions not explainable "
                        "with --durable-decisions")
    if c["integrity"] != "ok":
        failures.append(f"integrity_check: {c['integrity']}")
    if c["events_lost"]:
        failures.append(f"{c['events_lost']} acknowledged events lost, e.g. {c['lost_ids'][:5]}")
    if c["journey_entries_missing"]:
        failures.append(f"{c['journey_entries_missing']} acknowledged journey entries without "
                        f"state or step, e.g. {c['journey_entries_missing_ids'][:3]}")
    if c["journey_steps_published_but_pending"]:
        failures.append(f"{c['journey_steps_published_but_pending']} journey steps published "
                        "before the kill are still pending (they would be sent twice)")
    if c["journey_steps"].get("missing"):
        failures.append(f"{c['journey_steps']['missing']} pending journey steps vanished")
    if c["journey_steps"].get("overdue"):
        failures.append(f"{c['journey_steps']['overdue']} due journey steps not handled "
                        f"{JOURNEY_DUE_TIMEOUT_S:.0f} s after the restart")
    if c["explain_errors"]:
        failures.append(f"{c['explain_errors']} explain requests failed other than not_found")
    if c["load_errors"]:
        failures.append(f"load threads failed: {c['load_errors'][:3]}")
    return failures


def progress_line(c, cycles):
    s = c["journey_steps"]
    return (f"cycle {c['cycle']:>3}/{cycles}  kill at {c['kill_after_s']:.2f} s  "
            f"events acked {c['events_acked']:>5} lost {c['events_lost']}  "
            f"decisions acked {c['decisions_acked']:>5} unexplainable "
            f"{c['decisions_unexplainable']}  "
            f"journeys: {c['journey_entries_acked']} entries, {c['journeys_checked']} pending "
            f"({s.get('due', 0)} due: {s.get('sent', 0)} sent)  "
            f"integrity {c['integrity']}  "
            + ("ok" if not c["failures"] else "FAIL: " + "; ".join(c["failures"])))


def run_all(args, ctx, daemon):
    """Every cycle, then a clean stop. Returns the cycles, SIGTERM's exit
    status, the final integrity_check and the reason the run stopped early
    (None when it did not)."""
    build_store(args, args.store)
    world = read_world(args.store)
    rng = random.Random(args.seed)
    daemon.start()
    cycles, aborted, clean_exit = [], None, None
    since_seq = world["first_seq"]
    for k in range(1, args.cycles + 1):
        try:
            c = run_cycle(k, args, ctx, daemon, world, rng, since_seq)
        except SetupError as e:
            # A store that tailord cannot start on after a kill is a broken
            # promise, not a set-up problem.
            aborted = f"cycle {k}: tailord did not restart after the kill: {e}"
            print(aborted, flush=True)
            break
        since_seq = c["seq_at_kill"]
        c["failures"] = cycle_failures(c, args.durable_decisions)
        cycles.append(c)
        print(progress_line(c, args.cycles), flush=True)
    if not aborted:
        clean_exit = daemon.terminate()
    with open_ro(args.store) as db:
        final_integrity = integrity(db)
    return cycles, clean_exit, final_integrity, aborted


# --- main --------------------------------------------------------------------

def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--tailord", default=os.path.join(REPO, "build/bin/tailord"),
                   help="the tailord to kill")
    p.add_argument("--tailor", default=os.path.join(REPO, "build/bin/tailor"),
                   help="the CLI that generates the demo store")
    p.add_argument("--plugin-dir", default=os.path.join(REPO, "build/plugins"),
                   help="where tailord finds the model plugins")
    p.add_argument("--config", default=os.path.join(REPO, "config"),
                   help="directory holding tailor.yaml (its endpoints are overridden)")
    p.add_argument("--cycles", type=int, default=20, help="kills and restarts")
    p.add_argument("--seed", type=int, default=1,
                   help="seeds the demo world, the load and the kill times")
    p.add_argument("--json", metavar="OUT", help="write the figures as JSON here")
    p.add_argument("--durable-decisions", action="store_true",
                   help="run tailord with --durable-decisions; then a lost decision fails")
    p.add_argument("--keep", action="store_true",
                   help="keep the temporary directory (kept anyway on failure)")
    args = p.parse_args(argv)
    for path in (args.tailord, args.tailor):
        if not os.access(path, os.X_OK):
            p.error(f"not an executable: {path}")
    if not os.path.isfile(os.path.join(args.config, "tailor.yaml")):
        p.error(f"no tailor.yaml in {args.config}")
    if args.cycles < 1:
        p.error("--cycles must be at least 1")
    return args


def summarise(args, cycles, clean_exit, final_integrity, aborted, elapsed):
    """The run's figures and failures, for the summary and the JSON file."""
    def total(key):
        return sum(c[key] for c in cycles)

    def steps(key):
        return sum(c["journey_steps"].get(key, 0) for c in cycles)

    failures = [f"cycle {c['cycle']}: {f}" for c in cycles for f in c["failures"]]
    if aborted:
        failures.append(aborted)
    elif clean_exit != 0:
        failures.append(f"SIGTERM after the last cycle: exit {clean_exit}")
    if final_integrity != "ok":
        failures.append(f"integrity_check after the last stop: {final_integrity}")
    return {
        "cycles": len(cycles),
        "seed": args.seed,
        "events_acked": total("events_acked"),
        "events_lost": total("events_lost"),
        "events_duplicated": total("events_duplicated"),
        "push_sent": total("push_sent"),
        "push_stored": total("push_stored"),
        "decisions_acked": total("decisions_acked"),
        "decisions_unexplainable": total("decisions_unexplainable"),
        "explain_errors": total("explain_errors"),
        "integrity_failures": sum(1 for c in cycles if c["integrity"] != "ok")
        + (final_integrity != "ok"),
        "journey_entries_acked": total("journey_entries_acked"),
        "journey_entries_missing": total("journey_entries_missing"),
        "journeys_checked": total("journeys_checked"),
        "journey_steps_published_during_load": total("journey_steps_published"),
        "journey_steps_published_but_pending": total("journey_steps_published_but_pending"),
        "journey_steps_due_at_kill": steps("due"),
        "journey_steps_sent_after_restart": steps("sent"),
        "journey_steps_cancelled_after_restart": steps("cancelled"),
        "journey_steps_missing": steps("missing"),
        "journey_steps_overdue": steps("overdue"),
        "kill_after_s": [c["kill_after_s"] for c in cycles],
        "clean_shutdown_exit": clean_exit,
        "elapsed_s": round(elapsed, 1),
        "durable_decisions": args.durable_decisions,
        "failures": failures,
        "ok": not failures,
        "per_cycle": cycles,
    }


def print_summary(s):
    ua = s["decisions_unexplainable"]
    share = 100.0 * ua / s["decisions_acked"] if s["decisions_acked"] else 0.0
    print(f"\n{s['cycles']} cycles in {s['elapsed_s']} s (seed {s['seed']})")
    print(f"  events:    {s['events_acked']} acknowledged, {s['events_lost']} lost, "
          f"{s['events_duplicated']} stored twice; PUSH {s['push_stored']} of "
          f"{s['push_sent']} sent were stored (not acknowledged, not checked)")
    how = ("--durable-decisions: each committed before its reply" if s.get("durable_decisions")
           else "logged asynchronously, README 'Durability'")
    print(f"  decisions: {s['decisions_acked']} acknowledged, {ua} not explainable after "
          f"the restart ({share:.2f}%; {how})")
    print(f"  journeys:  {s['journey_entries_acked']} acknowledged entries, "
          f"{s['journey_entries_missing']} without state; {s['journeys_checked']} "
          f"pending-step checks (every step pending at each kill), "
          f"{s['journey_steps_due_at_kill']} of them due: "
          f"{s['journey_steps_sent_after_restart']} sent and "
          f"{s['journey_steps_cancelled_after_restart']} cancelled after the restart, "
          f"{s['journey_steps_missing']} vanished, {s['journey_steps_overdue']} overdue; "
          f"{s['journey_steps_published_during_load']} published during the loads, "
          f"{s['journey_steps_published_but_pending']} of them still pending after the kill")
    print(f"  integrity: {s['integrity_failures']} failures; clean shutdown exit "
          f"{s['clean_shutdown_exit']}")
    print("  result:    " + ("ok" if not s["failures"] else
                             f"FAILED ({len(s['failures'])} failures)"))
    for f in s["failures"][:20]:
        print("    " + f)


def main(argv):
    args = parse_args(argv)
    work_dir = tempfile.mkdtemp(prefix="tailor-crashtest-")
    args.store = os.path.join(work_dir, "store.db")
    started = time.monotonic()
    ctx = zmq.Context()
    daemon = Tailord(args, args.store, work_dir)
    try:
        cycles, clean_exit, final_integrity, aborted = run_all(args, ctx, daemon)
    except SetupError as e:
        print(f"crashtest: {e}\n(kept {work_dir})", file=sys.stderr)
        return 2
    finally:
        # Never leave a tailord behind, whatever went wrong.
        if daemon.proc and daemon.proc.poll() is None:
            daemon.kill()
        ctx.destroy(linger=0)

    s = summarise(args, cycles, clean_exit, final_integrity, aborted,
                  time.monotonic() - started)
    print_summary(s)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(s, f, indent=2)
            f.write("\n")
    if s["failures"] or args.keep:
        print(f"store and tailord.log kept in {work_dir}")
    else:
        shutil.rmtree(work_dir, ignore_errors=True)
    return 1 if s["failures"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
