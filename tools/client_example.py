#!/usr/bin/python3
"""A minimal Tailor client: one decision, one event, the profile. Needs pyzmq
(Debian: python3-zmq). Usage: python3 tools/client_example.py [ENDPOINT] [CUSTOMER]"""
import json
import sys

import zmq

endpoint = sys.argv[1] if len(sys.argv) > 1 else "tcp://127.0.0.1:5555"
customer = sys.argv[2] if len(sys.argv) > 2 else "c42"

sock = zmq.Context().socket(zmq.REQ)
sock.setsockopt(zmq.RCVTIMEO, 5000)
sock.connect(endpoint)


def call(msg):
    sock.send_string(json.dumps(msg))
    return json.loads(sock.recv_string())


reply = call({"v": 1, "type": "decide", "id": "py-1", "customer": customer,
              "channel": "web", "placement": "home", "limit": 3})
if "error" in reply:
    sys.exit(f"error: {reply['error']}")
print(f"decision {reply['decision']} for {customer}:")
for o in reply["offers"]:
    why = o["why"]
    print(f"  {o['rank']}. {o['offer']:<20} priority {why['priority']:.3f} "
          f"(P {why['propensity']:.3f} x C {why['context']:.2f} x V {why['value']:.3f} x L {why['levers']:.1f})")
    for name, p in why["plugins"].items():
        if p.get("abstained"):
            print(f"       {name}: no opinion")
        else:
            print(f"       {name}: {p['score']:.3f} {p.get('reason', '')}")

top = reply["offers"][0]
print(call({"v": 1, "type": "event", "id": "py-2", "customer": customer, "event": "offer_click",
            "offer": top["offer"], "decision": reply["decision"]}))
profile = call({"v": 1, "type": "profile.get", "id": "py-3", "customer": customer})["profile"]
print(f"{customer}: {profile['counts']}")
