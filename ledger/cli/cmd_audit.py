"""``medledger audit``: the auditor's circuit breakers and the audit trails."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from ledger.cli._params import address_arg, digest_arg, root_arg, subjects_from_file
from ledger.cli._state import done, emit, rows_table, state
from ledger.core.errors import InvalidInput

app = typer.Typer(help="Auditor: suspend and reinstate datasets and users; audit trails; what a withdrawal affects.")


@app.command("suspend-dataset")
def suspend_dataset(
    root: str = typer.Argument(..., parser=root_arg, metavar="ROOT", help="Content root."),
    reason: str | None = typer.Option(None, "--reason", help="Reason (kept off chain; its sha256 is recorded)."),
) -> None:
    """Suspend a dataset: no approvals, no uses until reinstated (signed by an auditor, --key)."""
    st = state()
    result = st.backend().suspend_dataset(st.actor(), root, digest_arg(text=reason, what="reason"))
    done(f"dataset {root} suspended", result)


@app.command("reinstate-dataset")
def reinstate_dataset(root: str = typer.Argument(..., parser=root_arg, metavar="ROOT", help="Content root.")) -> None:
    """Lift a dataset's suspension (signed by an auditor, --key)."""
    st = state()
    done(f"dataset {root} reinstated", st.backend().reinstate_dataset(st.actor(), root))


@app.command("suspend-user")
def suspend_user(
    user: str = typer.Argument(..., parser=address_arg, metavar="ADDRESS", help="The user: address or alias."),
    reason: str | None = typer.Option(None, "--reason", help="Reason (kept off chain; its sha256 is recorded)."),
) -> None:
    """Suspend a user: no requests, approvals or uses until reinstated (signed by an auditor)."""
    st = state()
    done(f"user {user} suspended", st.backend().suspend_user(st.actor(), user, digest_arg(text=reason, what="reason")))


@app.command("reinstate-user")
def reinstate_user(
    user: str = typer.Argument(..., parser=address_arg, metavar="ADDRESS", help="The user: address or alias."),
) -> None:
    """Lift a user's suspension (signed by an auditor, --key)."""
    st = state()
    done(f"user {user} reinstated", st.backend().reinstate_user(st.actor(), user))


def _render_trail(out: Console, data: Any) -> None:
    events = data.get("items") if isinstance(data, dict) else data
    if not isinstance(events, list):
        out.print(data)
        return
    if not events:
        out.print("no events")
        return
    rows = []
    for ev in events:
        args = ev.get("args", {}) if isinstance(ev, dict) else {}
        rows.append(
            {
                "block": ev.get("block_number", ev.get("block")),
                "event": f"{ev.get('contract', '')}.{ev.get('event', '')}".strip("."),
                "as": ev.get("role"),
                "details": ", ".join(f"{k}={v}" for k, v in args.items()),
            }
        )
    out.print(rows_table(rows, ["block", "event", "as", "details"]))
    if isinstance(data, dict) and data.get("next_cursor") is not None:
        out.print(f"more events: run again with --after {data['next_cursor']}")


@app.command("dataset-trail")
def dataset_trail(
    root: str = typer.Argument(..., parser=root_arg, metavar="ROOT", help="Content root."),
    limit: int = typer.Option(500, "--limit", min=1, max=10_000, help="At most this many events."),
    after: int | None = typer.Option(None, "--after", min=0, help="Cursor: the next_cursor of the previous page."),
) -> None:
    """Every event touching a dataset, in chain order: registration, lineage, sharing, status,
    consents scoped to it, access requests and their decisions, uses."""
    emit(state().backend().dataset_trail(root, limit, after), _render_trail)


@app.command("user-trail")
def user_trail(
    address: str = typer.Argument(..., parser=address_arg, metavar="ADDRESS", help="Address or alias."),
    limit: int = typer.Option(500, "--limit", min=1, max=10_000, help="At most this many events."),
    after: int | None = typer.Option(None, "--after", min=0, help="Cursor: the next_cursor of the previous page."),
) -> None:
    """Every event naming an account: its requests and their decisions, uses, datasets, roles,
    consents and suspensions, in chain order."""
    emit(state().backend().user_trail(address, limit, after), _render_trail)


def _subject_lists(values: list[str] | None) -> dict[str, list[str]]:
    lists: dict[str, list[str]] = {}
    for value in values or []:
        root, sep, path = value.partition("=")
        if not sep or not path:
            raise InvalidInput(f"--subjects {value!r} must be ROOT=FILE")
        try:
            key = root_arg(root)
        except ValueError as exc:  # PydanticCustomError is a ValueError
            raise InvalidInput(f"--subjects {value!r}: {exc}") from exc
        lists[key] = subjects_from_file(Path(path))
    return lists


@app.command("withdrawal-impact")
def withdrawal_impact(
    subject: str = typer.Argument(
        ..., parser=address_arg, metavar="ADDRESS", help="The subject who withdrew: address or alias."
    ),
    subjects: list[str] | None = typer.Option(
        None,
        "--subjects",
        metavar="ROOT=FILE",
        help="A holder's subject list of a dataset (checked against its subject root); repeatable.",
    ),
) -> None:
    """What a subject's withdrawal affects: the datasets that include them and their descendants,
    and the approvals and uses made after the withdrawal."""
    body = state().backend().withdrawal_impact(subject, _subject_lists(subjects))

    def render(out: Console, data: Any) -> None:
        withdrawals = data.get("withdrawals", [])
        out.print(f"subject {data.get('subject', subject)}: {len(withdrawals)} withdrawn consent(s)")
        datasets = data.get("datasets", [])
        if datasets:
            rows = [
                {
                    "dataset": d["dataset"],
                    "contains subject": d["contains_subject"],
                    "derived from": ", ".join(d["derived_from"]) or None,
                    "from block": d["from_block"],
                    "status": d["status"],
                }
                for d in datasets
            ]
            out.print(rows_table(rows, title="affected datasets"))
        else:
            out.print("no affected dataset found in the given subject lists")
        for key, title in (("approvals", "approvals after the withdrawal"), ("uses", "uses after the withdrawal")):
            if data.get(key):
                out.print(rows_table(data[key], title=title))
        if data.get("mismatched_lists"):
            out.print(f"[yellow]subject lists that do not match the chain:[/yellow] {data['mismatched_lists']}")

    emit(body, render)
