#!/usr/bin/python3
"""An outbound consumer for Tailor's journey messages, at least once.

Tailor publishes each journey step that falls due on its PUB socket and keeps
it in the store's outbox until a consumer acknowledges it (README § Outbound
delivery). A consumer therefore:
  1. subscribes to the outbound socket,
  2. asks for what it missed while away (`outbound.pending`, paged by id),
  3. hands each message to the channel (here: prints it) and then sends
     `outbound.ack` with its id. A message may arrive more than once (a
     resend, or both from the socket and from pending): skip ids already done.

Needs pyzmq (Debian: python3-zmq).
Usage: python3 tools/outbound_consumer.py [--requests EP] [--outbound EP]
                                          [--max N] [--timeout S]"""
import argparse
import json
import sys
import time

import zmq


def call(sock, msg):
    sock.send_string(json.dumps({"v": 1, **msg}))
    reply = json.loads(sock.recv_string())
    if "error" in reply:
        raise RuntimeError(f"{msg['type']}: {reply['error']}")
    return reply


def main():
    ap = argparse.ArgumentParser(description="Receive journey messages and acknowledge them.")
    ap.add_argument("--requests", default="tcp://127.0.0.1:5555")
    ap.add_argument("--outbound", default="tcp://127.0.0.1:5557")
    ap.add_argument("--max", type=int, default=0, help="stop after this many messages (0: never)")
    ap.add_argument("--timeout", type=float, default=0,
                    help="stop after this many seconds without a message (0: never)")
    args = ap.parse_args()

    ctx = zmq.Context.instance()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(args.outbound)  # first, so nothing falls between pending and live
    req = ctx.socket(zmq.REQ)
    req.setsockopt(zmq.RCVTIMEO, 5000)
    req.setsockopt(zmq.LINGER, 0)
    req.connect(args.requests)

    done = set()

    def handle(msg):
        if msg["id"] in done:
            return False
        # The channel's work goes here: send the email, push, SMS.
        print(f"{msg['channel']:<6} {msg['customer']:<12} {msg['journey']}/{msg['step']} "
              f"offer {msg['offer']} (id {msg['id']})", flush=True)
        call(req, {"type": "outbound.ack", "ids": [msg["id"]]})  # only after the work
        done.add(msg["id"])
        return True

    after = 0
    while True:  # what was sent while nobody listened
        page = call(req, {"type": "outbound.pending", "after": after, "limit": 100})["outbound"]
        for msg in page["messages"]:
            handle(msg)
            after = msg["id"]
        if not page["more"]:
            break
    last = time.monotonic()
    while not (args.max and len(done) >= args.max):
        if sub.poll(200):
            if handle(json.loads(sub.recv_string())):
                last = time.monotonic()
        elif args.timeout and time.monotonic() - last > args.timeout:
            break
    print(f"{len(done)} messages handled and acknowledged", file=sys.stderr)


if __name__ == "__main__":
    main()
