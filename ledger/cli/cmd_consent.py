"""``medledger consent``: a subject (or its delegate) grants, renews and withdraws consent; checks,
history and FHIR export."""

from __future__ import annotations

from typing import Any

import typer
from rich.console import Console

from ledger.cli._params import Category, address_arg, days_from_now, root_arg, split_terms
from ledger.cli._state import EXIT_VERIFICATION_FAILED, done, emit, print_json, rows_table, state
from ledger.core.errors import InvalidInput
from ledger.core.records import ConsentScope

app = typer.Typer(
    help="Consent, signed by the subject (or a delegate it appointed, with --subject): grant, renew, "
    "withdraw, delegate; check, list, FHIR export."
)


HOLDER_HELP = "Scope: every dataset of this holder (address or alias), now and future."
DATASET_HELP = "Scope: this one dataset (content root)."
SUBJECT_HELP = "The subject, when signing as its delegate (default: the signer)."
GRANTEE_HELP = "Only this user (address or alias); default: anyone."


def _scope(holder: str | None, dataset: str | None) -> ConsentScope:
    if (holder is None) == (dataset is None):
        raise InvalidInput("name the consent's scope: --holder ADDRESS or --dataset ROOT (one of them)")
    if holder is not None:
        return ConsentScope.holder(holder)
    assert dataset is not None
    return ConsentScope.dataset(dataset)


def _scope_text(scope: Any) -> str:
    """``{"kind": "holder", "holder": "0x.."}`` -> ``holder 0x..`` (for tables)."""
    if isinstance(scope, dict) and scope.get("kind") in ("holder", "dataset"):
        return f"{scope['kind']} {scope.get(scope['kind'])}"
    return str(scope)


def _describe(scope: ConsentScope) -> str:
    if scope.holder_address is not None:
        return f"every dataset of {scope.holder_address}"
    return f"dataset 0x{scope.value.hex()}"


@app.command("grant")
def grant(
    purpose: list[str] = typer.Option(
        ...,
        "--purpose",
        help="DUO codes: NRES, GRU, HMB, DS (with --disease), POA and modifiers NCU, IRB...; repeatable.",
    ),
    holder: str | None = typer.Option(None, "--holder", parser=address_arg, metavar="ADDRESS", help=HOLDER_HELP),
    dataset: str | None = typer.Option(None, "--dataset", parser=root_arg, metavar="ROOT", help=DATASET_HELP),
    disease: str | None = typer.Option(None, "--disease", help="MONDO code, for DS (disease-specific research)."),
    grantee: str | None = typer.Option(None, "--grantee", parser=address_arg, metavar="ADDRESS", help=GRANTEE_HELP),
    expiry_days: float = typer.Option(365.0, "--expiry-days", help="Consent expires after this many days."),
    subject: str | None = typer.Option(None, "--subject", parser=address_arg, metavar="ADDRESS", help=SUBJECT_HELP),
) -> None:
    """Give consent for purposes, to one holder's datasets or one dataset (signed by --key)."""
    st = state()
    actor = st.actor()
    scope = _scope(holder, dataset)
    terms = split_terms(purpose)
    result = st.backend().consent(
        actor,
        "Grant",
        subject=subject or actor.address,
        scope=scope,
        grantee=grantee,
        purposes=terms,
        disease=disease,
        expiry=days_from_now(expiry_days),
    )
    who = subject or actor.address
    done(f"consent given by {who} for {', '.join(terms)} on {_describe(scope)}", result)


@app.command("renew")
def renew(
    holder: str | None = typer.Option(None, "--holder", parser=address_arg, metavar="ADDRESS", help=HOLDER_HELP),
    dataset: str | None = typer.Option(None, "--dataset", parser=root_arg, metavar="ROOT", help=DATASET_HELP),
    grantee: str | None = typer.Option(None, "--grantee", parser=address_arg, metavar="ADDRESS", help=GRANTEE_HELP),
    expiry_days: float = typer.Option(365.0, "--expiry-days", help="New expiry, in days from now."),
    subject: str | None = typer.Option(None, "--subject", parser=address_arg, metavar="ADDRESS", help=SUBJECT_HELP),
) -> None:
    """Extend a consent's expiry (signed by --key)."""
    st = state()
    actor = st.actor()
    scope = _scope(holder, dataset)
    result = st.backend().consent(
        actor,
        "Renew",
        subject=subject or actor.address,
        scope=scope,
        grantee=grantee,
        expiry=days_from_now(expiry_days),
    )
    done(f"consent on {_describe(scope)} renewed", result)


@app.command("withdraw")
def withdraw(
    holder: str | None = typer.Option(None, "--holder", parser=address_arg, metavar="ADDRESS", help=HOLDER_HELP),
    dataset: str | None = typer.Option(None, "--dataset", parser=root_arg, metavar="ROOT", help=DATASET_HELP),
    grantee: str | None = typer.Option(None, "--grantee", parser=address_arg, metavar="ADDRESS", help=GRANTEE_HELP),
    subject: str | None = typer.Option(None, "--subject", parser=address_arg, metavar="ADDRESS", help=SUBJECT_HELP),
) -> None:
    """Withdraw a consent, effective from its block on (signed by --key). Nobody can block it."""
    st = state()
    actor = st.actor()
    scope = _scope(holder, dataset)
    result = st.backend().consent(actor, "Withdraw", subject=subject or actor.address, scope=scope, grantee=grantee)
    done(f"consent on {_describe(scope)} withdrawn", result)


@app.command("delegate")
def delegate(
    delegate_address: str = typer.Argument(
        ..., parser=address_arg, metavar="ADDRESS", help="The delegate (guardian): address or alias."
    ),
    expiry_days: float = typer.Option(365.0, "--expiry-days", help="The appointment ends after this many days."),
) -> None:
    """Appoint a delegate who may give and withdraw consent for the signer (--key)."""
    st = state()
    actor = st.actor()
    result = st.backend().consent(
        actor, "AppointDelegate", subject=actor.address, delegate=delegate_address, expiry=days_from_now(expiry_days)
    )
    done(f"{delegate_address} may act for {actor.address}", result)


@app.command("revoke-delegate")
def revoke_delegate(
    delegate_address: str = typer.Argument(
        ..., parser=address_arg, metavar="ADDRESS", help="The delegate: address or alias."
    ),
) -> None:
    """End a delegate's appointment (signed by the subject, --key)."""
    st = state()
    actor = st.actor()
    result = st.backend().consent(actor, "RevokeDelegate", subject=actor.address, delegate=delegate_address)
    done(f"{delegate_address} no longer acts for {actor.address}", result)


@app.command("check")
def check(
    subject: str = typer.Argument(..., parser=address_arg, metavar="ADDRESS", help="The subject: address or alias."),
    dataset: str = typer.Argument(..., parser=root_arg, metavar="ROOT", help="Content root."),
    purpose: Category = typer.Option("HMB", "--purpose", case_sensitive=False, help="Use category."),
    attribute: list[str] | None = typer.Option(
        None, "--attribute", help="Use attributes: commercial, ethics-approved, publishes, genetic...; repeatable."
    ),
    disease: str | None = typer.Option(None, "--disease", help="MONDO code, for DS."),
    grantee: str | None = typer.Option(
        None, "--grantee", parser=address_arg, metavar="ADDRESS", help="The user who would use it."
    ),
) -> None:
    """Is the subject's consent in force for this dataset and purpose now? Exit code 1 if not."""
    body = state().backend().consent_check(subject, dataset, purpose, split_terms(attribute), disease, grantee)

    def render(out: Console, data: Any) -> None:
        verdict = "[green]in force[/green]" if data["in_force"] else "[red]not in force[/red]"
        out.print(f"consent of {data['subject']} for {', '.join(data['purpose'])}: {verdict}", soft_wrap=True)

    emit(body, render)
    if not body.get("in_force"):
        raise typer.Exit(EXIT_VERIFICATION_FAILED)


@app.command("list")
def list_consents(
    subject: str = typer.Argument(..., parser=address_arg, metavar="ADDRESS", help="The subject: address or alias."),
) -> None:
    """A subject's consents with their current status and history, and its delegates."""
    body = state().backend().consents(subject)

    def render(out: Console, data: Any) -> None:
        rows = data.get("consents", []) if isinstance(data, dict) else data
        if not rows:
            out.print("no consents recorded")
        else:
            shown = [
                {
                    "consent id": r.get("consent_id"),
                    "scope": _scope_text(r.get("scope")),
                    "purposes": ", ".join(r.get("purpose_codes") or []) or None,
                    "status": r.get("status"),
                    "expiry": r.get("expiry"),
                    "changes": len(r.get("history", [])),
                }
                for r in rows
            ]
            out.print(rows_table(shown, title=f"consents of {subject}"))
        delegates = data.get("delegates", []) if isinstance(data, dict) else []
        if delegates:
            out.print(rows_table(delegates, title="delegates"))

    emit(body, render)


@app.command("fhir")
def fhir(
    subject: str = typer.Option(
        ..., "--subject", parser=address_arg, metavar="ADDRESS", help="The subject: address or alias."
    ),
    holder: str | None = typer.Option(
        None, "--holder", parser=address_arg, metavar="ADDRESS", help="Scope: the holder."
    ),
    dataset: str | None = typer.Option(None, "--dataset", parser=root_arg, metavar="ROOT", help="Scope: the dataset."),
    grantee: str | None = typer.Option(None, "--grantee", parser=address_arg, metavar="ADDRESS", help=GRANTEE_HELP),
) -> None:
    """A consent as an HL7 FHIR R5 Consent resource (JSON)."""
    resource = state().backend().consent_fhir(subject, _scope(holder, dataset), grantee)
    print_json(resource)
