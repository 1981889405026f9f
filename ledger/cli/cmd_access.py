"""``medledger access`` (requests and decisions) and ``medledger use`` (recording uses)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from ledger.cli._params import Category, days_from_now, digest_arg, root_arg, split_terms
from ledger.cli._state import done, emit, kv_table, state
from ledger.content.cid import MAX_DOCUMENT_SIZE
from ledger.core.errors import DocumentTooLarge
from ledger.rules import datause

access_app = typer.Typer(help="Access requests (user), decisions (reviewer; holder under embargo), embargo override.")
use_app = typer.Typer(help="Record a use of a dataset (user); refused by the contract unless allowed.")

PURPOSE_HELP = "Use category: GRU, HMB, DS (with --disease) or POA."
ATTRIBUTE_HELP = "Use attributes: commercial, for-profit, ethics-approved, publishes, genetic...; repeatable."


def _purpose(category: str, attributes: list[str] | None, disease: str | None) -> datause.Purpose:
    return datause.Purpose.of(category, split_terms(attributes), disease)


@access_app.command("request")
def request(
    dataset: str = typer.Argument(..., parser=root_arg, metavar="ROOT", help="Content root of a controlled dataset."),
    purpose: Category = typer.Option(..., "--purpose", case_sensitive=False, help=PURPOSE_HELP),
    attribute: list[str] | None = typer.Option(None, "--attribute", help=ATTRIBUTE_HELP),
    disease: str | None = typer.Option(None, "--disease", help="MONDO code, for DS."),
    protocol: Path | None = typer.Option(
        None,
        "--protocol",
        metavar="FILE",
        help="The research protocol: its sha256 is recorded (pinned on IPFS too when sending directly).",
    ),
    protocol_digest: str | None = typer.Option(
        None, "--protocol-digest", metavar="0x..", help="The protocol's digest, if it is stored elsewhere."
    ),
) -> None:
    """File an access request (signed by a user, --key); prints the request id."""
    st = state()
    actor = st.actor()
    digest = digest_arg(file=protocol, digest=protocol_digest, what="research protocol", required=True)
    pinned = None
    if protocol is not None and st.service_url is None and protocol.stat().st_size <= MAX_DOCUMENT_SIZE:
        try:
            pinned = st.ipfs().put(protocol.read_bytes())
        except DocumentTooLarge:
            pinned = None
    result = st.backend().request_access(actor, dataset, _purpose(purpose, attribute, disease), digest)
    result["protocol_digest"] = "0x" + digest.hex()
    if pinned:
        result["protocol_cid"] = pinned
    done(f"access request {result.get('request_id')} filed for {dataset}", result)


@access_app.command("approve")
def approve(
    request_id: int = typer.Argument(..., min=1, help="The request id."),
    conditions: str | None = typer.Option(None, "--conditions", help="Conditions of use (text kept off chain)."),
    conditions_file: Path | None = typer.Option(
        None, "--conditions-file", metavar="FILE", help="Conditions, as a file."
    ),
    conditions_digest: str | None = typer.Option(None, "--conditions-digest", metavar="0x..", help="Their digest."),
    expiry_days: float = typer.Option(365.0, "--expiry-days", help="The approval ends after this many days."),
) -> None:
    """Approve a pending request (signed by a reviewer, or the holder under embargo, --key)."""
    st = state()
    digest = digest_arg(
        text=conditions, file=conditions_file, digest=conditions_digest, what="conditions", required=True
    )
    result = st.backend().approve_access(st.actor(), request_id, digest, days_from_now(expiry_days))
    result["conditions_digest"] = "0x" + digest.hex()
    done(f"access request {request_id} approved", result)


@access_app.command("deny")
def deny(
    request_id: int = typer.Argument(..., min=1, help="The request id."),
    reason: str | None = typer.Option(None, "--reason", help="Reason (kept off chain; its sha256 is recorded)."),
) -> None:
    """Deny a pending request (signed by a reviewer, --key)."""
    st = state()
    result = st.backend().deny_access(st.actor(), request_id, digest_arg(text=reason, what="reason"))
    done(f"access request {request_id} denied", result)


@access_app.command("revoke")
def revoke(
    request_id: int = typer.Argument(..., min=1, help="The request id."),
    reason: str | None = typer.Option(None, "--reason", help="Reason (kept off chain; its sha256 is recorded)."),
) -> None:
    """Revoke an approval (signed by a reviewer or the holder, --key)."""
    st = state()
    result = st.backend().revoke_access(st.actor(), request_id, digest_arg(text=reason, what="reason"))
    done(f"approval {request_id} revoked", result)


@access_app.command("override-embargo")
def override_embargo(
    dataset: str = typer.Argument(..., parser=root_arg, metavar="ROOT", help="Content root."),
    reason: str = typer.Option(..., "--reason", help="The public-interest reason (kept off chain; sha256 recorded)."),
) -> None:
    """Lift a dataset's embargo for a declared public-interest reason (signed by an auditor, --key)."""
    st = state()
    result = st.backend().override_embargo(st.actor(), dataset, digest_arg(text=reason, what="reason", required=True))
    done(f"embargo of {dataset} overridden", result)


@access_app.command("show")
def show(request_id: int = typer.Argument(..., min=1, help="The request id.")) -> None:
    """An access request and its decision (read from the chain, or from the service)."""
    body = state().backend().access_request(request_id)

    def render(out: Console, data: Any) -> None:
        out.print(kv_table(data, title=f"access request {request_id}"))

    emit(body, render)


@use_app.command("record")
def record(
    dataset: str = typer.Argument(..., parser=root_arg, metavar="ROOT", help="Content root."),
    purpose: Category = typer.Option(..., "--purpose", case_sensitive=False, help=PURPOSE_HELP),
    attribute: list[str] | None = typer.Option(None, "--attribute", help=ATTRIBUTE_HELP),
    disease: str | None = typer.Option(None, "--disease", help="MONDO code, for DS."),
    request_id: int = typer.Option(0, "--request", min=0, help="The approved request (0 for open/registered data)."),
    result_file: Path | None = typer.Option(
        None, "--result", metavar="FILE", help="The result: its sha256 is recorded."
    ),
    result_digest: str | None = typer.Option(None, "--result-digest", metavar="0x..", help="The result's digest."),
) -> None:
    """Record a use (signed by the user, --key). The contract refuses a use no approval covers."""
    st = state()
    digest = digest_arg(file=result_file, digest=result_digest, what="result")
    result = st.backend().record_use(st.actor(), dataset, _purpose(purpose, attribute, disease), request_id, digest)
    done(f"use of {dataset} recorded", result)
