#!/usr/bin/env python3
"""The installed tailor_client package against a real tailord (run by
tests/integration/ops_test.cc from a venv where the package was installed).
Usage: python_client_test.py REQUESTS_ENDPOINT EVENTS_ENDPOINT"""
import asyncio
import json
import sys
import threading
import time

import zmq

import tailor_client
from tailor_client import AsyncClient, Client, TailorError, TailorTimeout

REQ, EVENTS = sys.argv[1], sys.argv[2]


def check(cond, what):
    if not cond:
        sys.exit(f"FAILED: {what}")
    print(f"ok: {what}")


def flaky_server():
    """A ROUTER that drops the first request it gets and answers the rest:
    a lost reply, as a client sees one."""
    ctx = zmq.Context.instance()
    router = ctx.socket(zmq.ROUTER)
    port = router.bind_to_random_port("tcp://127.0.0.1")
    seen = {"n": 0}

    def serve():
        while True:
            frames = router.recv_multipart()
            seen["n"] += 1
            if seen["n"] == 1:
                continue
            msg = json.loads(frames[-1])
            reply = {"v": 1, "id": msg["id"], "health": {"status": "ok", "problems": []}}
            router.send_multipart(frames[:-1] + [json.dumps(reply).encode()])

    threading.Thread(target=serve, daemon=True).start()
    return f"tcp://127.0.0.1:{port}", seen


def main():
    check(tailor_client.__file__.find("site-packages") >= 0, "imported from the installed package")
    with Client(REQ, timeout=5.0) as t:
        check(t.health()["status"] in ("ok", "degraded"), "health")
        d = t.decide("c1", channel="web", placement="home", limit=3)
        check(d.decision and len(d.offers) >= 1, f"decide: {d.decision}, {len(d.offers)} offers")
        top = d.offers[0]
        check(top.rank == 1 and isinstance(top.priority, float), "typed offers")
        check(t.event("c1", "offer_click", offer=top.offer, decision=d.decision)["ok"] is True,
              "event acknowledged once durable")
        check(t.events([{"customer": "c2", "event": "view", "item": "i1"}])["stored"] == 1,
              "events batch")
        for _ in range(100):  # decisions are logged behind the reply
            try:
                outcomes = t.explain(d.decision).get("outcomes", [])
                break
            except TailorError as e:
                if e.code != "not_found":
                    raise
                time.sleep(0.02)
        check(any(o["event"] == "offer_click" for o in outcomes), "explain shows the click")
        every = [o.offer for o in d.offers] + ["o1", "o2", "o3", "o4", "o5"]
        empty = t.decide("c1", channel="web", placement="home", exclude=every)
        check(isinstance(empty.offers, list), f"an offer list ({len(empty.offers)}) never crashes")
        try:
            t.decide("c1", channel="web", placement="no_such_placement")
            check(False, "an unknown placement raises")
        except TailorError as e:
            check(e.code == "bad_request" and e.field == "placement", f"TailorError: {e}")
        before = t.profile("c3")["counts"].get("view", 0)
        send = Client(REQ, events_endpoint=EVENTS)
        send.send_events([{"customer": "c3", "event": "view", "item": "i2"}])
        for _ in range(200):
            if t.profile("c3")["counts"].get("view", 0) > before:
                break
            time.sleep(0.02)
        check(t.profile("c3")["counts"].get("view", 0) == before + 1, "send_events over PUSH")
        send.close()

    # Lazy pirate: a lost reply is retried on a fresh socket; without
    # retries it raises and the client still works afterwards.
    endpoint, seen = flaky_server()
    with Client(endpoint, timeout=0.3, retries=1) as c:
        check(c.health()["status"] == "ok" and seen["n"] == 2, "a lost reply is retried")
    endpoint, seen = flaky_server()
    with Client(endpoint, timeout=0.3, retries=0) as c:
        try:
            c.health()
            check(False, "no reply raises")
        except TailorTimeout as e:
            check(True, f"TailorTimeout: {e}")
        check(c.health()["status"] == "ok", "usable after a timeout")

    async def run_async():
        async with AsyncClient(REQ, timeout=5.0) as a:
            d = await a.decide("c1", channel="web", placement="home")
            h = await a.health()
            return d, h

    d, h = asyncio.run(run_async())
    check(d.decision and h["status"] in ("ok", "degraded"), "AsyncClient")


if __name__ == "__main__":
    main()
