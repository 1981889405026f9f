"""``medledger coverage``: consent meets lineage. Which subjects' consent covers a purpose at a block;
registering that subset as a consent-filtered dataset; rechecking a filter from the consent history.

These run against the chain directly (the service has no coverage routes); a filter is registered
with the CLI as its own relayer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from ledger.cli._params import Category, address_arg, root_arg, split_terms, subjects_from_file
from ledger.cli._state import EXIT_VERIFICATION_FAILED, done, emit, kv_table, state
from ledger.core.errors import InvalidInput
from ledger.rules import datause

app = typer.Typer(
    help="Consent coverage of a cohort: compute it, register it as a consent-filtered dataset, recheck a filter."
)


def _no_service() -> None:
    if state().service_url:
        raise InvalidInput("coverage commands read the chain directly", hint="run them without --service")


def _purpose(category: str, attributes: list[str] | None, disease: str | None) -> datause.Purpose:
    return datause.Purpose.of(category, split_terms(attributes), disease)


def _render_coverage(out: Console, data: Any) -> None:
    out.print(
        f"{data['covered_count']} of {data['covered_count'] + data['excluded_count']} subjects covered "
        f"for {', '.join(data['purpose'].get('terms', []) or [str(data['purpose'])])} at block {data['block']}",
        soft_wrap=True,
    )
    shown = {
        "dataset": data["dataset"],
        "subject list matches the dataset": data["subjects_match_dataset"],
        "covered subjects' root": data["subject_root"],
        "excluded": ", ".join(data["excluded"]) or None,
    }
    out.print(kv_table({k: v for k, v in shown.items() if v is not None}))


@app.command("compute")
def compute(
    dataset: str = typer.Argument(..., parser=root_arg, metavar="ROOT", help="Content root of the cohort dataset."),
    subjects: Path = typer.Option(..., "--subjects", metavar="FILE", help="The dataset's subject list."),
    purpose: Category = typer.Option(..., "--purpose", case_sensitive=False, help="Use category."),
    attribute: list[str] | None = typer.Option(None, "--attribute", help="Use attributes; repeatable."),
    disease: str | None = typer.Option(None, "--disease", help="MONDO code, for DS."),
    grantee: str | None = typer.Option(
        None, "--grantee", parser=address_arg, metavar="ADDRESS", help="Also count consents to this user."
    ),
    block: int | None = typer.Option(None, "--block", min=0, help="At this block (default: latest)."),
) -> None:
    """Which of the subjects have consent in force for the purpose, as the consent registry
    answers at one block."""
    _no_service()
    # the services layer (web3, the contracts) is loaded here, not for --help
    from ledger.services.coverage import compute_coverage

    result = compute_coverage(
        state().ledger(),
        dataset,
        subjects_from_file(subjects),
        _purpose(purpose, attribute, disease),
        block=block,
        grantee=grantee,
    )
    emit(result.to_json(), _render_coverage)


@app.command("filter")
def filter_(
    dataset: str = typer.Argument(
        ..., parser=root_arg, metavar="ROOT", help="Content root of the cohort dataset (the parent)."
    ),
    folder: Path = typer.Argument(..., help="The filtered data: files of the covered subjects only."),
    subjects: Path = typer.Option(..., "--subjects", metavar="FILE", help="The parent's full subject list."),
    purpose: Category = typer.Option(..., "--purpose", case_sensitive=False, help="Use category."),
    attribute: list[str] | None = typer.Option(None, "--attribute", help="Use attributes; repeatable."),
    disease: str | None = typer.Option(None, "--disease", help="MONDO code, for DS."),
    title: str = typer.Option(..., "--title", help="Title (public)."),
    description: str = typer.Option(..., "--description", help="Description (public)."),
    licence: str = typer.Option(..., "--licence", "--license", help="SPDX id."),
    data_use: list[str] = typer.Option(..., "--data-use", help="DUO codes or ids; repeatable."),
    grantee: str | None = typer.Option(
        None, "--grantee", parser=address_arg, metavar="ADDRESS", help="Also count consents to this user."
    ),
    block: int | None = typer.Option(None, "--block", min=0, help="At this block (default: latest)."),
    covered_out: Path | None = typer.Option(
        None, "--covered-out", metavar="FILE", help="Write the covered subjects here (the filter's subject list)."
    ),
) -> None:
    """Register the covered subset as a dataset derived from the cohort, with activity "consent
    filter for the purpose at block N" and the subset's subject root (signed by the holder, --key)."""
    _no_service()
    # the services layer (web3, the contracts) is loaded here, not for --help
    from ledger.services.coverage import compute_coverage, register_consent_filter

    st = state()
    holder = st.actor()
    ledger = st.ledger()
    coverage = compute_coverage(
        ledger,
        dataset,
        subjects_from_file(subjects),
        _purpose(purpose, attribute, disease),
        block=block,
        grantee=grantee,
    )
    registration = register_consent_filter(
        ledger,
        holder,
        dataset,
        coverage,
        files=folder,
        title=title,
        description=description,
        licence=licence,
        data_use=split_terms(data_use),
    )
    if covered_out is not None:
        try:
            covered_out.write_text("".join(f"{s}\n" for s in coverage.covered), encoding="utf-8")
        except OSError as exc:
            raise InvalidInput(f"cannot write {covered_out}: {exc.strerror or exc}") from exc
    body = {
        "status": "mined",
        **registration.to_json(),
        "parent": dataset,
        "coverage_block": coverage.block,
        "covered_count": len(coverage.covered),
        "excluded_count": len(coverage.excluded),
    }
    if covered_out is not None:
        body["covered_subjects_file"] = str(covered_out)
    done(f"consent filter {body['content_root']} registered ({len(coverage.covered)} subjects)", body)


@app.command("recheck")
def recheck(
    filter_root: str = typer.Argument(
        ..., parser=root_arg, metavar="ROOT", help="Content root of the consent-filtered dataset."
    ),
    subjects: Path = typer.Option(..., "--subjects", metavar="FILE", help="The parent's full subject list."),
    filter_subjects: Path | None = typer.Option(
        None, "--filter-subjects", metavar="FILE", help="The filter's own subject list, to name any differences."
    ),
    grantee: str | None = typer.Option(
        None, "--grantee", parser=address_arg, metavar="ADDRESS", help="The filter's grantee, if any."
    ),
) -> None:
    """Recompute a registered consent filter from the chain's consent history at its block and
    compare with its subject root. Exit code 1 if it does not match."""
    _no_service()
    # the services layer (web3, the contracts) is loaded here, not for --help
    from ledger.history.sources import LogEventSource
    from ledger.services.recheck import recheck_filter

    ledger = state().ledger()
    result = recheck_filter(
        ledger,
        LogEventSource(ledger.client),
        filter_root,
        subjects_from_file(subjects),
        filter_subjects=subjects_from_file(filter_subjects) if filter_subjects is not None else None,
        grantee=grantee,
    )
    body = result.to_json()

    def render(out: Console, data: Any) -> None:
        verdict = "[green]matches[/green]" if data["ok"] else "[red]does NOT match[/red]"
        out.print(f"consent filter {data['filter']} {verdict} the consent history at block {data['block']}")
        shown = {
            "parent": data["parent"],
            "recorded subject root": data["recorded_subject_root"],
            "recomputed subject root": data["recomputed_subject_root"],
            "expected subjects": data["expected_count"],
            "included without consent": ", ".join(data["included_without_consent"]) or None,
            "missing with consent": ", ".join(data["missing_with_consent"]) or None,
            "problems": "; ".join(data["problems"]) or None,
        }
        out.print(kv_table({k: v for k, v in shown.items() if v is not None}))

    emit(body, render)
    if not result.ok:
        raise typer.Exit(EXIT_VERIFICATION_FAILED)
