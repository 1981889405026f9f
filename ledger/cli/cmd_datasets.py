"""``medledger datasets``: register datasets (primary or derived) from a folder, read them, and
change their status."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from pydantic import ValidationError
from rich.console import Console

from ledger.cli._params import (
    ActivityName,
    TierName,
    days_from_now,
    digest_arg,
    file_digest,
    root_arg,
    split_terms,
    subjects_from_file,
)
from ledger.cli._state import byte_progress, done, emit, kv_table, state
from ledger.content.files import hash_folder
from ledger.content.metadata import (
    ActivityDescription,
    ActivityType,
    Citation,
    DatasetMetadata,
    DeIdentification,
    Licence,
    Software,
)
from ledger.core.classification import Classification, Tier
from ledger.core.errors import InvalidInput
from ledger.rules import datause

app = typer.Typer(help="Datasets: register from a folder, show, versions, sharing, deprecate, retract, stats.")

CLASSIFICATIONS = ", ".join(f"{c.name.lower().replace('_', '-')} ({c.hex})" for c in Classification)


def _summary(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(p) for p in error["loc"]) or "metadata"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)


def duo_ids(terms: list[str]) -> tuple[str, ...]:
    """Data-use codes or DUO ids -> DUO ids (``HMB`` -> ``DUO:0000006``)."""
    out: list[str] = []
    for term in terms:
        key = term.strip().upper()
        if key in datause.DUO_TERMS:
            out.append(datause.DUO_TERMS[key][0])
        elif key in {term_id for term_id, _ in datause.DUO_TERMS.values()}:
            out.append(key)
        else:
            raise InvalidInput(f"unknown data-use term {term!r}", hint=f"one of {', '.join(datause.DUO_TERMS)}")
    return tuple(out)


def _software(value: str | None) -> Software | None:
    if value is None:
        return None
    name, _, version = value.partition("/")
    if not name or not version:
        raise InvalidInput(f"--software {value!r} must be NAME/VERSION, e.g. deid-tool/2.1")
    return Software(name=name, version=version)


@app.command("register")
def register(
    folder: Path = typer.Argument(..., help="The dataset's files: every file under FOLDER is hashed."),
    title: str = typer.Option(..., "--title", help="Title (public: no personal data)."),
    description: str = typer.Option(..., "--description", help="Description (public: no personal data)."),
    classification: str = typer.Option(..., "--classification", help=f"Data classification: {CLASSIFICATIONS}."),
    tier: TierName = typer.Option("controlled", "--tier", case_sensitive=False, help="Sharing tier."),
    licence: str = typer.Option(..., "--licence", "--license", help="Licence: SPDX id (e.g. CC-BY-4.0) or URL."),
    data_use: list[str] = typer.Option(
        ..., "--data-use", help="Permitted uses: DUO codes or ids (HMB, GRU, DS, NCU, DUO:0000006...); repeatable."
    ),
    disease: list[str] | None = typer.Option(None, "--disease", help="MONDO disease codes (MONDO:0005148)."),
    keyword: list[str] | None = typer.Option(None, "--keyword", help="Keywords; repeatable."),
    parent: list[str] | None = typer.Option(
        None,
        "--parent",
        parser=root_arg,
        metavar="ROOT",
        help="Content root of a parent dataset (derived data); repeatable.",
    ),
    activity: ActivityName | None = typer.Option(
        None, "--activity", case_sensitive=False, help="What produced the data (required with --parent)."
    ),
    software: str | None = typer.Option(None, "--software", metavar="NAME/VERSION", help="Software of the activity."),
    parameters: Path | None = typer.Option(
        None, "--parameters", metavar="FILE", help="The activity's parameters; only their sha256 is recorded."
    ),
    deidentification: str | None = typer.Option(
        None, "--deidentification", metavar="METHOD", help="De-identification method, e.g. k-anonymity."
    ),
    subjects: Path | None = typer.Option(
        None,
        "--subjects",
        metavar="FILE",
        help="Subject addresses, one per line; only their Merkle root goes on chain.",
    ),
    embargo_days: float | None = typer.Option(
        None, "--embargo-days", help="Embargo: only the holder approves access for this many days."
    ),
    citation_doi: str | None = typer.Option(None, "--doi", help="DOI to cite the dataset by."),
    lang: str = typer.Option("en", "--lang", help="BCP 47 language of the title and description."),
) -> None:
    """Register a dataset signed by its holder (--key): hash the folder, describe it, pin the
    metadata on IPFS and anchor the record. A derived dataset names its parents and the activity."""
    st = state()
    actor = st.actor()
    parents = list(parent or [])
    if parents and activity is None:
        raise InvalidInput("a derived dataset needs --activity (what produced it from its parents)")
    people = subjects_from_file(subjects) if subjects is not None else []
    embargo_end = days_from_now(embargo_days) if embargo_days is not None else 0
    terms = split_terms(data_use)
    with byte_progress(f"hashing {folder}") as progress:
        entries = hash_folder(folder, progress=progress)
    now = datetime.now(UTC)
    try:
        described = None
        if activity is not None:
            described = ActivityDescription(
                type=ActivityType(activity.lower()),
                agent=actor.address,
                started=now,
                ended=now,
                software=_software(software),
                parameters_digest="0x" + file_digest(parameters).hex() if parameters is not None else None,
            )
        metadata = DatasetMetadata(
            title={lang: title},
            description={lang: description},
            keywords=tuple(split_terms(keyword)) or None,
            classification=Classification.parse(classification),
            tier=Tier.parse(tier),
            licence=Licence(url=licence) if licence.startswith(("http://", "https://")) else Licence(spdx=licence),
            data_use=duo_ids(terms),
            disease_codes=tuple(split_terms(disease)) or None,
            files=tuple(entries),
            parents=tuple(parents),
            activity=described,
            deidentification=DeIdentification(method=deidentification) if deidentification else None,
            subject_count=len(people) if people else None,
            holder=actor.address,
            citation=Citation(doi=citation_doi) if citation_doi else None,
            created=now,
        )
    except ValidationError as exc:
        raise InvalidInput(f"the dataset description is not valid: {_summary(exc)}") from exc
    result = st.backend().register_dataset(actor, metadata, people, embargo_end)
    result.update(files=len(entries), bytes=metadata.total_size, subjects=len(people), embargo_end=embargo_end or None)
    done(f"registered dataset {result['content_root']}", result)


def _render_dataset(out: Console, data: Any) -> None:
    rec = data["record"]
    md = data.get("metadata") or {}
    shown: dict[str, Any] = {"content root": rec["content_root"]}
    if md:
        shown["title"] = next(iter(md["title"].values()))
    shown.update(
        status=rec["status"],
        holder=rec["holder"],
        tier=rec["tier"],
        classification=f"0x{rec['classification']:04x}",
        registered_block=rec["registered_block"],
        embargo_end=rec["embargo_end"] or None,
        parents=", ".join(rec["parents"]) or None,
        successor=rec.get("successor"),
        derived_datasets=rec["derived_count"],
        metadata_cid=data["metadata_cid"],
    )
    if md:
        files = md.get("files", [])
        shown.update(
            files=f"{len(files)} files, {sum(f['size'] for f in files)} bytes",
            data_use=", ".join(md.get("data_use", [])),
            subjects=md.get("subject_count"),
            activity=(md.get("activity") or {}).get("type"),
            licence=(md.get("licence") or {}).get("spdx") or (md.get("licence") or {}).get("url"),
        )
    if data.get("metadata_error"):
        shown["metadata error"] = data["metadata_error"]
    out.print(kv_table({k: v for k, v in shown.items() if v is not None}))


@app.command("show")
def show(root: str = typer.Argument(..., parser=root_arg, metavar="ROOT", help="Content root.")) -> None:
    """A dataset's chain record and its metadata document from IPFS."""
    emit(state().backend().dataset(root), _render_dataset)


@app.command("version")
def version(root: str = typer.Argument(..., parser=root_arg, metavar="ROOT", help="Content root.")) -> None:
    """A dataset's version chain: the versions it superseded, its successors and the latest."""

    def render(out: Console, data: Any) -> None:
        chain = [*reversed(data["predecessors"]), f"[bold]{data['dataset']}[/bold]", *data["successors"]]
        for i, item in enumerate(chain):
            out.print(f"{'  ' * min(i, 1)}{'└ ' if i else ''}{item}", soft_wrap=True)
        out.print(f"latest: {data['latest']}", soft_wrap=True)

    emit(state().backend().versions(root), render)


@app.command("stats")
def stats(root: str = typer.Argument(..., parser=root_arg, metavar="ROOT", help="Content root.")) -> None:
    """Uses, distinct users and derived datasets: the holder's credit."""
    emit(state().backend().stats(root))


@app.command("sharing")
def sharing(
    root: str = typer.Argument(..., parser=root_arg, metavar="ROOT", help="Content root."),
    tier: TierName = typer.Option(..., "--tier", case_sensitive=False, help="New sharing tier."),
    embargo_days: float | None = typer.Option(None, "--embargo-days", help="Embargo from now (default: none)."),
) -> None:
    """Change a dataset's sharing tier and embargo (signed by its holder)."""
    st = state()
    embargo_end = days_from_now(embargo_days) if embargo_days is not None else 0
    result = st.backend().set_sharing(st.actor(), root, Tier.parse(tier), embargo_end)
    done(f"{root} is now {tier.lower()}", result)


@app.command("deprecate")
def deprecate(
    root: str = typer.Argument(..., parser=root_arg, metavar="ROOT", help="Content root of the old version."),
    successor: str = typer.Option(
        ..., "--successor", parser=root_arg, metavar="ROOT", help="Content root of the newer version."
    ),
) -> None:
    """Mark a dataset as superseded by a newer registered version (signed by its holder)."""
    st = state()
    result = st.backend().deprecate(st.actor(), root, successor)
    done(f"{root} deprecated in favour of {successor}", result)


@app.command("retract")
def retract(
    root: str = typer.Argument(..., parser=root_arg, metavar="ROOT", help="Content root."),
    reason: str | None = typer.Option(None, "--reason", help="Reason (kept off chain; its sha256 is recorded)."),
) -> None:
    """Retract a dataset, for good (signed by its holder)."""
    st = state()
    result = st.backend().retract(st.actor(), root, digest_arg(text=reason, what="reason"))
    done(f"{root} retracted", result)
