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

Needs pyzmq (Debian: python3-zmq).
Usage: python3 tools/client_example.py [ENDPOINT] [CUSTOMER] [PLACEMENT]"""
import json
import sys

import zmq


class Client:
    """A REQ client that survives a timeout: a REQ socket that sent and got
    no reply can send nothing more, so it is closed and made afresh."""

    def __init__(self, endpoint, timeout_ms=5000):
        self.endpoint = endpoint
        self.timeout_ms = timeout_ms
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
    endpoint = sys.argv[1] if len(sys.argv) > 1 else "tcp://127.0.0.1:5555"
    customer = sys.argv[2] if len(sys.argv) > 2 else "c42"
    placement = sys.argv[3] if len(sys.argv) > 3 else "home"
    client = Client(endpoint)
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
