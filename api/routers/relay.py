"""Relayed requests: the typed data to sign, the signer's next nonce, and each request's status."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path

from api.problems import COMMON, responses
from api.schemas import NonceOut, OperationOut, Prepared, PrepareIn, SignedWrite, Ticket
from api.state import AppState, get_state
from ledger.relay.calls import FORWARD, OPERATIONS, encode_arguments

from ._writes import queue_forward

router = APIRouter(prefix="/relay", tags=["relay"], responses=COMMON)


@router.get(
    "/operations",
    response_model=dict[str, OperationOut],
    summary="Operations that can be relayed, who signs them and the route that accepts them",
)
def operations() -> dict[str, OperationOut]:
    return {
        name: OperationOut(
            contract=op.contract, function=op.function, resource=op.resource, signed_by=op.party, route=op.route
        )
        for name, op in OPERATIONS.items()
    }


@router.post(
    "/prepare",
    response_model=Prepared,
    responses=responses(403, 404, 409),
    summary="Typed data (EIP-712) for an operation, to be signed by its actor",
)
def prepare(body: PrepareIn, state: AppState = Depends(get_state)) -> Prepared:
    relayer = state.ledger.relayer
    op, values = encode_arguments(relayer, body.operation, body.args)
    to, data = relayer.encode(op.contract, op.function, *values)
    req = state.queue.prepare(body.from_, to, data, deadline=body.deadline)
    typed = req.typed(state.ledger.client.chain_id, relayer.forwarder.address)
    unsigned = req.unsigned_json()
    return Prepared(operation=op.name, typed_data=typed, request=unsigned)


@router.get(
    "/nonce/{address}",
    response_model=NonceOut,
    summary="The forward-request nonce to sign next",
)
def nonce(address: str = Path(pattern=r"^0x[0-9a-fA-F]{40}$"), state: AppState = Depends(get_state)) -> NonceOut:
    return NonceOut(
        address=address,
        forwarder_nonce=state.queue.next_nonce(address),
        note="chain nonce plus this signer's requests still queued",
    )


@router.post(
    "/forward",
    response_model=Ticket,
    status_code=202,
    responses=responses(403, 409),
    summary="Queue any relayable signed request",
)
def forward(body: SignedWrite, state: AppState = Depends(get_state)) -> Ticket:
    return queue_forward(state, body.request, FORWARD)


@router.get(
    "/{ticket_id}",
    response_model=Ticket,
    responses=responses(404),
    summary="Status of a relayed request: queued, submitting, mined (block, tx) or failed (reason)",
)
def status(ticket_id: str = Path(pattern=r"^[0-9a-f]{32}$"), state: AppState = Depends(get_state)) -> Ticket:
    return Ticket(**state.queue.get(ticket_id).to_json())
