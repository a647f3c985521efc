#!/usr/bin/python3
"""The feedback contract (Rank -> Reward) with the tailor_client package
(clients/python; `pip install ./clients/python`, or run from the repository).

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

With security.curve on the server, pass this client's key pair and the
server's public key, as `tailor keygen` writes them; the key needs the roles
app and reader (decide, event; explain, profile.get).

Usage: tools/client_example.py [ENDPOINT] [CUSTOMER] [PLACEMENT]
                               [--key NAME.key --server-key SERVER.pub]"""
import argparse
import os
import sys

try:
    import tailor_client
except ImportError:  # not installed: the package in this repository
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "clients",
                                    "python"))
    import tailor_client

from tailor_client import Client, TailorError, TailorTimeout


def print_offers(decision):
    for o in decision.offers:
        why = o.why
        print(f"  {o.rank}. {o.offer or o.item:<20} priority {o.priority:.3f} "
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
    customer, placement = args.customer, args.placement
    with Client(args.endpoint, timeout=5.0, client_key=args.key,
                server_key=args.server_key) as tailor:
        try:
            d = tailor.decide(customer, channel="web", placement=placement, limit=3)
        except (TailorError, TailorTimeout) as e:
            sys.exit(f"error: {e}")
        print(f"decision {d.decision} for {customer} on {placement}:")
        if not d.offers:
            print("  nothing to show (no eligible offers): nothing to report")
            return
        print_offers(d)

        # The app's side of the contract: each response names the decision
        # and what was responded to.
        def what(o):
            return {"offer": o.offer} if o.offer else {"item": o.item}

        top = d.offers[0]
        tailor.event(customer, "offer_click" if top.offer else "click", decision=d.decision,
                     channel="web", **what(top))
        tailor.event(customer, "convert" if top.offer else "purchase", decision=d.decision,
                     channel="web", value=25.0, **what(top))
        if len(d.offers) > 1:
            tailor.event(customer, "dismiss", decision=d.decision, channel="web",
                         **what(d.offers[1]))
        print("outcomes joined to the decision:")
        for o in tailor.explain(d.decision).get("outcomes", []):
            name = o.get("offer") or o.get("item", "?")
            print(f"  {o['event']:<12} {name:<20} position {o['position']} value {o['value']} "
                  f"(joined by {o['joined_by']})")
        print(f"{customer}: {tailor.profile(customer)['counts']}")


if __name__ == "__main__":
    main()
