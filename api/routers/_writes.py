"""Shared handling of signed writes: decode, check the operation belongs to the resource, queue."""

from __future__ import annotations

from api.schemas import ForwardRequestIn, Ticket
from api.state import AppState
from ledger.core.errors import InvalidInput
from ledger.relay.calls import decode_call
from ledger.relay.relayer import ForwardRequest


def queue_forward(
    state: AppState, body: ForwardRequestIn, allowed: set[str], *, pins: list[str] | None = None
) -> Ticket:
    req = ForwardRequest.from_json(body.as_json())
    op, _ = decode_call(state.ledger.relayer, req.to, req.data)
    if op.name not in allowed:
        raise InvalidInput(
            f"this endpoint accepts {sorted(allowed)}, the request performs {op.name}",
            hint=f"send {op.name} to the {op.resource} resource",
        )
    ticket = state.queue.submit_forward(req, pins=pins)
    return Ticket(**ticket.to_json())
