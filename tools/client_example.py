#!/usr/bin/python3
"""A minimal Tailor client showing the feedback contract (Rank -> Reward).

1. `decide` returns a decision id and the offers shown. On a placement with
   `impressions: on_decide` (the default) the engine records those
   impressions itself; with `impressions: explicit` the app reports what it
   really rendered with an `impression` event naming the decision.
2. The app reports the customer's responses as events naming the decision
   and the offer: `offer_click` (or `click`), `convert` (or `purchase`, with
   `value`), `dismiss`. An event without a decision id is attributed to the
   latest decision that showed that offer/item to that customer within the
   placement's `attribution_hours` (24 by default); a purchase of the item an
   offer promoted counts as that offer's conversion.
3. `explain` of the decision lists the outcomes joined to it.

With security.curve on the server (README § Security), pass this client's
key pair and the server's public key, as `tailor keygen` writes them; the
key needs the roles app and reader (decide, event; explain, profile.get).

Needs pyzmq (Debian: python3-zmq).
Usage: python3 tools/client_example.py [ENDPOINT] [CUSTOMER] [PLACEMENT]
                                       [--key NAME.key --server-key SERVER.pub]"""
import argparse
import json
import re
import sys

import zmq


def read_key_file(path):
    """{'public': ..., 'secret': ...} from a NAME.key or NAME.pub file."""
    keys = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            m = re.match(r'\s*(public|secret):\s*"([^"]{40})"', line)
            if m:
                keys[m.group(1)] = m.group(2)
    if "public" not in keys:
        raise ValueError(f"{path}: no public key")
    return keys


class Client:
    """A REQ client that survives a timeout: a REQ socket that sent and got
    no reply can send nothing more, so it is closed and made afresh."""

    def __init__(self, endpoint, timeout_ms=5000, key_file=None, server_key_file=None):
        self.endpoint = endpoint
        self.timeout_ms = timeout_ms
        self.curve = None
        if key_file or server_key_file:
            mine = read_key_file(key_file)
            if "secret" not in mine:
                raise ValueError(f"{key_file}: no secret key (use NAME.key, not NAME.pub)")
            self.curve = (mine, read_key_file(server_key_file)["public"])
        self.ctx = zmq.Context.instance()
        self.sock = None
        self.next_id = 0
        self._connect()

    def _connect(self):
        if self.sock is not None:
            self.sock.close(linger=0)
        self.sock = self.ctx.socket(zmq.REQ)
        self.sock.setsockopt(zmq.RCVTIMEO, self.timeout_ms)
        self.sock.setsockopt(zmq.SNDTIMEO, self.timeout_ms)
        self.sock.setsockopt(zmq.LINGER, 0)
        if self.curve:
            mine, server = self.curve
            self.sock.curve_serverkey = server.encode()
            self.sock.curve_publickey = mine["public"].encode()
            self.sock.curve_secretkey = mine["secret"].encode()
        self.sock.connect(self.endpoint)

    def call(self, msg):
        """Sends one request; returns the reply, or raises TimeoutError (the
        socket is then replaced, so the next call works)."""
        self.next_id += 1
        msg = {"v": 1, "id": f"py-{self.next_id}", **msg}
        try:
            self.sock.send_string(json.dumps(msg))
            return json.loads(self.sock.recv_string())
        except zmq.Again:
            self._connect()
            raise TimeoutError(f"no reply from {self.endpoint} within {self.timeout_ms} ms")

    def event(self, customer, event, **fields):
        """Reports an event; the reply comes once it is durable."""
        reply = self.call({"type": "event", "customer": customer, "event": event, **fields})
        if "error" in reply:
            raise RuntimeError(f"event {event}: {reply['error']}")
        return reply


def print_offers(reply):
    for o in reply.get("offers", []):
        why = o["why"]
        name = o.get("offer") or o.get("item", "?")
        print(f"  {o['rank']}. {name:<20} priority {why['priority']:.3f} "
              f"(P {why['propensity']:.3f} x C {why['context']:.2f} x V {why['value']:.3f} "
              f"x L {why['levers']:.1f})")
        for plugin, p in why.get("plugins", {}).items():
            if p.get("abstained"):
                print(f"       {plugin}: no opinion")
            else:
                print(f"       {plugin}: {p['score']:.3f} {p.get('reason', '')}")


def main():
    ap = argparse.ArgumentParser(description="Decide, respond, explain: the feedback contract.")
    ap.add_argument("endpoint", nargs="?", default="tcp://127.0.0.1:5555")
    ap.add_argument("customer", nargs="?", default="c42")
    ap.add_argument("placement", nargs="?", default="home")
    ap.add_argument("--key", help="this client's CURVE key pair (NAME.key)")
    ap.add_argument("--server-key", help="the server's public key (NAME.pub)")
    args = ap.parse_args()
    if bool(args.key) != bool(args.server_key):
        sys.exit("error: --key and --server-key go together")
    endpoint, customer, placement = args.endpoint, args.customer, args.placement
    client = Client(endpoint, key_file=args.key, server_key_file=args.server_key)
    try:
        reply = client.call({"type": "decide", "customer": customer, "channel": "web",
                             "placement": placement, "limit": 3})
    except TimeoutError as e:
        sys.exit(f"error: {e}")
    if "error" in reply:
        sys.exit(f"error: {reply['error']}")
    decision = reply["decision"]
    offers = reply.get("offers", [])
    print(f"decision {decision} for {customer} on {placement}:")
    if not offers:
        print("  nothing to show (no eligible offers): nothing to report")
        return
    print_offers(reply)

    # The app's side of the contract: each response names the decision and
    # what was responded to.
    def what(o):
        return {"offer": o["offer"]} if "offer" in o else {"item": o["item"]}

    top = offers[0]
    client.event(customer, "offer_click" if "offer" in top else "click", decision=decision,
                 channel="web", **what(top))
    client.event(customer, "convert" if "offer" in top else "purchase", decision=decision,
                 channel="web", value=25.0, **what(top))
    if len(offers) > 1:
        client.event(customer, "dismiss", decision=decision, channel="web", **what(offers[1]))

    explained = client.call({"type": "explain", "decision": decision})
    if "error" in explained:
        sys.exit(f"error: {explained['error']}")
    print("outcomes joined to the decision:")
    for o in explained["explain"].get("outcomes", []):
        name = o.get("offer") or o.get("item", "?")
        print(f"  {o['event']:<12} {name:<20} position {o['position']} value {o['value']} "
              f"(joined by {o['joined_by']})")
    profile = client.call({"type": "profile.get", "customer": customer})["profile"]
    print(f"{customer}: {profile['counts']}")


if __name__ == "__main__":
    main()
