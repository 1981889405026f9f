"""Shared handling of signed writes: the route's operations are accepted and queued by the
services layer (``ledger.services.writes``); this converts the request and the ticket."""

from __future__ import annotations

from collections.abc import Sequence

from api.schemas import ForwardRequestIn, Ticket
from api.state import AppState
from ledger.relay.relayer import ForwardRequest
from ledger.services.writes import accept_forward


def queue_forward(
    state: AppState,
    body: ForwardRequestIn,
    route: str,
    *,
    content_root: str | None = None,
    pins: Sequence[str] = (),
) -> Ticket:
    req = ForwardRequest.from_json(body.as_json())
    ticket = accept_forward(state.queue, req, route, content_root=content_root, pins=pins)
    return Ticket(**ticket.to_json())
