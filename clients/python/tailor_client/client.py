"""Synchronous and asyncio clients for tailord's request and event sockets."""
import itertools
import json
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

import zmq
import zmq.asyncio


class TailorError(Exception):
    """tailord answered with an error: code (bad_request, forbidden, ...),
    field (the one at fault, "" for the whole message) and message."""

    def __init__(self, code: str, field_name: str, message: str, reply: Dict[str, Any]):
        super().__init__(f"{code}: {message}" + (f" (field {field_name})" if field_name else ""))
        self.code, self.field, self.message, self.reply = code, field_name, message, reply


class TailorTimeout(TimeoutError):
    """No reply within the timeout (after the retries). The client has a
    fresh socket and can be used again."""


@dataclass
class Offer:
    rank: int
    offer: Optional[str]
    item: Optional[str]
    category: Optional[str]
    score: float
    priority: float
    why: Dict[str, Any]
    reasons: Dict[str, str] = field(default_factory=dict)  # plugin -> its reason


@dataclass
class Decision:
    decision: str
    personalised: bool
    candidates: int
    offers: List[Offer]
    reply: Dict[str, Any]


def read_key_file(path: str) -> Dict[str, str]:
    """{'public': ..., 'secret': ...} from a NAME.key or NAME.pub that
    `tailor keygen` wrote."""
    keys = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            m = re.match(r'\s*(public|secret):\s*"([^"]{40})"', line)
            if m:
                keys[m.group(1)] = m.group(2)
    if "public" not in keys:
        raise ValueError(f"{path}: no public key")
    return keys


def _decision(reply: Dict[str, Any]) -> Decision:
    offers = []
    for o in reply.get("offers", []):
        why = o.get("why", {})
        reasons = {name: p["reason"] for name, p in why.get("plugins", {}).items()
                   if isinstance(p, dict) and p.get("reason")}
        offers.append(Offer(rank=o["rank"], offer=o.get("offer"), item=o.get("item"),
                            category=o.get("category"), score=o.get("score", 0.0),
                            priority=why.get("priority", 0.0), why=why, reasons=reasons))
    return Decision(reply["decision"], reply.get("personalised", False),
                    reply.get("candidates", 0), offers, reply)


def _checked(reply: Dict[str, Any]) -> Dict[str, Any]:
    if "error" in reply:
        e = reply["error"]
        raise TailorError(e.get("code", "error"), e.get("field", ""), e.get("message", ""), reply)
    return reply


# Messages that change nothing when repeated; the others (an event without
# an idempotency key, a reload, an erasure) are never sent twice by a retry.
_SAFE_TO_RETRY = {"decide", "explain", "profile.get", "health", "stats", "outbound.pending",
                  "outbound.ack"}


class _Base:
    def __init__(self, endpoint: str, timeout: float = 5.0, retries: int = 0,
                 events_endpoint: Optional[str] = None, client_key: Optional[str] = None,
                 server_key: Optional[str] = None):
        if bool(client_key) != bool(server_key):
            raise ValueError("client_key and server_key go together")
        self.endpoint, self.timeout, self.retries = endpoint, timeout, retries
        self.events_endpoint = events_endpoint
        self._curve = None
        if client_key:
            mine = read_key_file(client_key)
            if "secret" not in mine:
                raise ValueError(f"{client_key}: no secret key (use NAME.key, not NAME.pub)")
            self._curve = (mine, read_key_file(server_key)["public"])
        self._ids = itertools.count(1)
        self._sock = None
        self._push = None

    def _secure(self, sock):
        if self._curve:
            mine, server = self._curve
            sock.curve_serverkey = server.encode()
            sock.curve_publickey = mine["public"].encode()
            sock.curve_secretkey = mine["secret"].encode()

    def _new_req(self, ctx):
        if self._sock is not None:
            self._sock.close(linger=0)
        self._sock = ctx.socket(zmq.REQ)
        self._sock.setsockopt(zmq.LINGER, 0)
        self._secure(self._sock)
        self._sock.connect(self.endpoint)

    def _message(self, type_: str, fields: Dict[str, Any]) -> Dict[str, Any]:
        msg = {"v": 1, "type": type_, "id": f"py-{next(self._ids)}"}
        msg.update({k: v for k, v in fields.items() if v is not None})
        return msg

    def _attempts(self, type_: str) -> int:
        return 1 + (self.retries if type_ in _SAFE_TO_RETRY else 0)

    def _push_socket(self, ctx):
        if self.events_endpoint is None:
            raise ValueError("send_events needs events_endpoint (tailord's PULL socket)")
        if self._push is None:
            self._push = ctx.socket(zmq.PUSH)
            self._push.setsockopt(zmq.LINGER, 1000)
            self._push.setsockopt(zmq.SNDHWM, 100000)
            self._secure(self._push)
            self._push.connect(self.events_endpoint)
        return self._push

    def _close(self):
        for s in (self._sock, self._push):
            if s is not None:
                s.close(linger=0)
        self._sock = self._push = None


class Client(_Base):
    """One REQ socket; not for sharing between threads (make one per thread)."""

    def __init__(self, endpoint: str, **kwargs):
        super().__init__(endpoint, **kwargs)
        self._ctx = zmq.Context.instance()
        self._new_req(self._ctx)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self._close()

    def call(self, type_: str, **fields) -> Dict[str, Any]:
        """Sends one message and returns its reply (raises TailorError on an
        error reply, TailorTimeout after the retries)."""
        msg = json.dumps(self._message(type_, fields))
        for _ in range(self._attempts(type_)):
            self._sock.send_string(msg)
            if self._sock.poll(int(self.timeout * 1000), zmq.POLLIN):
                return _checked(json.loads(self._sock.recv_string()))
            self._new_req(self._ctx)  # a REQ socket without its reply can send nothing more
        raise TailorTimeout(f"no reply from {self.endpoint} within {self.timeout} s")

    def decide(self, customer: Optional[str], channel: str, placement: str, limit: int = 3,
               context: Optional[Dict[str, Any]] = None, **fields) -> Decision:
        return _decision(self.call("decide", customer=customer, channel=channel,
                                   placement=placement, limit=limit, context=context, **fields))

    def event(self, customer: str, event: str, **fields) -> Dict[str, Any]:
        return self.call("event", customer=customer, event=event, **fields)

    def events(self, events: List[Dict[str, Any]]) -> Dict[str, Any]:
        return self.call("events", events=events)

    def send_events(self, events: List[Dict[str, Any]]) -> None:
        """Fire and forget: one `events` batch over PUSH, no reply."""
        self._push_socket(self._ctx).send_string(json.dumps(self._message("events", {"events": events})))

    def explain(self, decision: str) -> Dict[str, Any]:
        return self.call("explain", decision=decision)["explain"]

    def profile(self, customer: str) -> Dict[str, Any]:
        return self.call("profile.get", customer=customer)["profile"]

    def health(self) -> Dict[str, Any]:
        return self.call("health")["health"]

    def stats(self) -> Dict[str, Any]:
        return self.call("stats")["stats"]


class AsyncClient(_Base):
    """The same as Client, for asyncio (zmq.asyncio); one call at a time."""

    def __init__(self, endpoint: str, **kwargs):
        super().__init__(endpoint, **kwargs)
        self._ctx = zmq.asyncio.Context.instance()
        self._new_req(self._ctx)

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        self.close()

    def close(self):
        self._close()

    async def call(self, type_: str, **fields) -> Dict[str, Any]:
        msg = json.dumps(self._message(type_, fields))
        for _ in range(self._attempts(type_)):
            await self._sock.send_string(msg)
            if await self._sock.poll(int(self.timeout * 1000), zmq.POLLIN):
                return _checked(json.loads(await self._sock.recv_string()))
            self._new_req(self._ctx)
        raise TailorTimeout(f"no reply from {self.endpoint} within {self.timeout} s")

    async def decide(self, customer: Optional[str], channel: str, placement: str, limit: int = 3,
                     context: Optional[Dict[str, Any]] = None, **fields) -> Decision:
        return _decision(await self.call("decide", customer=customer, channel=channel,
                                         placement=placement, limit=limit, context=context,
                                         **fields))

    async def event(self, customer: str, event: str, **fields) -> Dict[str, Any]:
        return await self.call("event", customer=customer, event=event, **fields)

    async def events(self, events: List[Dict[str, Any]]) -> Dict[str, Any]:
        return await self.call("events", events=events)

    async def send_events(self, events: List[Dict[str, Any]]) -> None:
        await self._push_socket(self._ctx).send_string(
            json.dumps(self._message("events", {"events": events})))

    async def explain(self, decision: str) -> Dict[str, Any]:
        return (await self.call("explain", decision=decision))["explain"]

    async def profile(self, customer: str) -> Dict[str, Any]:
        return (await self.call("profile.get", customer=customer))["profile"]

    async def health(self) -> Dict[str, Any]:
        return (await self.call("health"))["health"]

    async def stats(self) -> Dict[str, Any]:
        return (await self.call("stats"))["stats"]
