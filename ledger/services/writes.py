"""Accepting signed forward requests: the request must perform an operation of the route it was
posted to (``Operation.route``), then it is checked and queued by the relay queue."""

from __future__ import annotations

from collections.abc import Sequence

from ledger.core.errors import InvalidInput
from ledger.core.records import to_bytes32
from ledger.relay.calls import accepted_at, decode_call
from ledger.relay.queue import RelayQueue, Ticket
from ledger.relay.relayer import ForwardRequest


def accept_forward(
    queue: RelayQueue,
    req: ForwardRequest,
    route: str,
    *,
    content_root: str | bytes | None = None,
    pins: Sequence[str] = (),
) -> Ticket:
    """Queue a signed request posted to ``route``; refused (InvalidInput) when the request performs
    an operation that route does not accept, or, with ``content_root`` (a route naming a dataset),
    when it acts on another dataset. ``pins`` are released if the request fails on chain."""
    op, args = decode_call(queue.relayer, req.to, req.data)
    allowed = accepted_at(route)
    if op.name not in allowed:
        raise InvalidInput(
            f"this endpoint accepts {sorted(allowed)}, the request performs {op.name}",
            hint=f"send {op.name} to {op.route}",
        )
    if content_root is not None and bytes(args.get("contentRoot", b"")) != to_bytes32(content_root, "content root"):
        raise InvalidInput("the signed request is for another dataset than the URL names")
    return queue.submit_forward(req, pins=list(pins))
