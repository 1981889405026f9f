"""``medledger verify`` (datasets, files, lineages; exit code 1 when the data does not verify) and
``medledger export`` (PROV-JSON, OpenLineage)."""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from ledger.cli._params import root_arg
from ledger.cli._state import (
    EXIT_VERIFICATION_FAILED,
    byte_progress,
    count_progress,
    emit,
    kv_table,
    print_json,
    rows_table,
    state,
)
from ledger.content.files import hash_file, hash_folder
from ledger.core.errors import InvalidInput
from ledger.core.records import to_bytes32
from ledger.rules.verification import Reason

verify_app = typer.Typer(
    help="Verify datasets, files and lineages against the chain and IPFS. Exit code 1 when the data does not verify."
)
export_app = typer.Typer(help="Export a lineage: W3C PROV-JSON or OpenLineage run events.")


def _render_findings(out: Console, node: dict[str, Any]) -> None:
    for f in node.get("failures", []):
        out.print(f"  [red]✗ {f['reason']}[/red]: {f['detail']}", soft_wrap=True)
    for w in node.get("warnings", []):
        out.print(f"  [yellow]! {w['reason']}[/yellow]: {w['detail']}", soft_wrap=True)


def _render_dataset(out: Console, data: dict[str, Any]) -> None:
    verdict = "[green]verified[/green]" if data["ok"] else "[red]NOT verified[/red]"
    out.print(f"dataset {data['content_root']}: {verdict}", soft_wrap=True)
    shown = {
        "status": data.get("status"),
        "holder": data.get("holder"),
        "metadata cid": data.get("metadata_cid"),
        "parents": ", ".join(data.get("parents", [])) or None,
        "files checked": data.get("files_checked") or None,
    }
    out.print(kv_table({k: v for k, v in shown.items() if v is not None}))
    _render_findings(out, data)


def _verify_local_dataset(root: str, files: Path) -> dict[str, Any]:
    # the services layer (web3, the contracts) is loaded here, not for --help
    from ledger.services.verification import verify_dataset

    ledger = state().ledger()
    with byte_progress(f"hashing {files}") as progress:
        entries = hash_folder(files, progress=progress)
    return verify_dataset(ledger, root, entries=entries).to_json()


@verify_app.command("dataset")
def dataset(
    root: str = typer.Argument(..., parser=root_arg, metavar="ROOT", help="Content root."),
    files: Path | None = typer.Option(
        None, "--files", metavar="FOLDER", help="Also check these files against the registered entries."
    ),
) -> None:
    """Verify a dataset: chain record, metadata on IPFS (hashes to its CID), file list (hashes to
    the content root), parents, activity, status; with --files, every file. Checks of local files
    always run here against the chain and IPFS."""
    st = state()
    body = _verify_local_dataset(root, files) if files is not None else st.backend().verify_dataset(root)
    emit(body, lambda out, data: _render_dataset(out, data))
    if not body.get("ok"):
        raise typer.Exit(EXIT_VERIFICATION_FAILED)


@verify_app.command("file")
def file(
    path: Path = typer.Argument(..., help="The file to check."),
    dataset: list[str] | None = typer.Option(
        None,
        "--dataset",
        parser=root_arg,
        metavar="ROOT",
        help="Candidate dataset (repeatable); default: every registered dataset.",
    ),
) -> None:
    """Is this file part of a registered dataset? Hashes it here (the file is never sent), finds
    the dataset whose metadata lists it, checks its Merkle proof on chain and the dataset's lineage."""
    with byte_progress(f"hashing {path.name}") as progress:
        entry = hash_file(path, progress=progress)
    body = state().backend().verify_hash(entry.sha256, entry.size, list(dataset or []) or None)
    body.setdefault("file", {})["path"] = str(path)

    def render(out: Console, data: Any) -> None:
        if data.get("dataset") is None:
            out.print(f"[red]✗[/red] {path}: not part of any of the datasets checked (sha256 {entry.sha256})")
            return
        verdict = "[green]verified[/green]" if data["ok"] else "[red]NOT verified[/red]"
        out.print(f"{path}: {verdict} as {data['entry_path']} of dataset {data['dataset']}", soft_wrap=True)
        out.print(f"  Merkle proof checked on chain: {'yes' if data['proof_verified_on_chain'] else 'no'}")
        lineage = data.get("lineage")
        if lineage is not None:
            out.print(f"  lineage: {'sound' if lineage['ok'] else 'has failures'}")
            for f in lineage.get("failures", []):
                out.print(f"  [red]✗ {f['dataset']}: {f['reason']}[/red] {f['detail']}", soft_wrap=True)
        dataset_result = data.get("dataset_verification") or {}
        _render_findings(out, dataset_result)

    emit(body, render)
    lineage_ok = (body.get("lineage") or {}).get("ok", True)
    if not body.get("ok") or not lineage_ok:
        raise typer.Exit(EXIT_VERIFICATION_FAILED)


def _lineage_report(root: str, files: Path | None) -> dict[str, Any]:
    st = state()
    if files is None and st.service_url:
        with count_progress(f"verifying the lineage of {root[:10]}… at the service"):
            return st.backend().verify_lineage(root)
    # the services layer (web3, the contracts) is loaded here, not for --help
    from ledger.services.verification import verify_dataset, verify_lineage

    ledger = st.ledger()
    entries = None
    if files is not None:
        with byte_progress(f"hashing {files}") as hashing:
            entries = hash_folder(files, progress=hashing)
    kwargs: dict[str, Any] = {}
    with count_progress(f"verifying the lineage of {root[:10]}…") as progress:
        if "progress" in inspect.signature(verify_lineage).parameters:
            kwargs["progress"] = progress
        report = verify_lineage(ledger, root, **kwargs)
        if entries is not None:
            # the dataset itself once more, with its files; keep what the walk found about ancestors
            key = to_bytes32(root, "content root")
            top = verify_dataset(ledger, key, entries=entries)
            top.warnings += [w for w in report.nodes[key].warnings if w.reason is Reason.ANCESTOR_FAILED]
            report.nodes[key] = top
    return report.to_json()


@verify_app.command("lineage")
def lineage(
    root: str = typer.Argument(..., parser=root_arg, metavar="ROOT", help="Content root of the dataset."),
    files: Path | None = typer.Option(None, "--files", metavar="FOLDER", help="Also check the dataset's own files."),
) -> None:
    """Verify a dataset and every ancestor; report each node, and ancestors that are suspended,
    retracted or deprecated."""
    body = _lineage_report(root, files)

    def render(out: Console, data: Any) -> None:
        verdict = "[green]verified[/green]" if data["ok"] else "[red]NOT verified[/red]"
        nodes = data.get("nodes", [])
        out.print(f"lineage of {data['root']}: {verdict} ({len(nodes)} datasets)", soft_wrap=True)
        rows = [
            {
                "dataset": n["content_root"],
                "status": n["status"],
                "ok": n["ok"],
                "parents": len(n.get("parents", [])),
                "findings": ", ".join(f["reason"] for f in [*n.get("failures", []), *n.get("warnings", [])]) or None,
            }
            for n in nodes
        ]
        out.print(rows_table(rows, ["dataset", "status", "ok", "parents", "findings"]))
        flagged = {k: v for k, v in (data.get("flagged_ancestors") or {}).items() if v}
        for status, roots in flagged.items():
            out.print(f"[yellow]{status} ancestors:[/yellow] {', '.join(roots)}", soft_wrap=True)
        for n in nodes:
            if n.get("failures"):
                out.print(f"{n['content_root']}:", soft_wrap=True)
                _render_findings(out, {"failures": n["failures"]})
        cost = data.get("cost")
        if cost:
            out.print(
                f"[dim]{cost['rpc_calls']} chain reads, {cost['ipfs_calls']} IPFS fetches, {cost['seconds']} s[/dim]"
            )

    emit(body, render)
    if not body.get("ok"):
        raise typer.Exit(EXIT_VERIFICATION_FAILED)


def _write_document(document: Any, output: Path | None, what: str) -> None:
    if output is None:
        print_json(document)
        return
    try:
        output.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot write {output}: {exc.strerror or exc}") from exc
    emit(
        {"written": str(output), "format": what},
        lambda out, d: out.print(f"[green]✓[/green] {what} written to {output}"),
    )


@export_app.command("prov")
def prov(
    root: str = typer.Argument(..., parser=root_arg, metavar="ROOT", help="Content root of the dataset."),
    output: Path | None = typer.Option(None, "--output", "-o", metavar="FILE", help="Write to FILE (default: stdout)."),
) -> None:
    """The lineage as a W3C PROV-JSON document (entities, activities, agents and their relations)."""
    with count_progress("building the PROV document"):
        document = state().backend().prov(root)
    _write_document(document, output, "PROV-JSON")


@export_app.command("openlineage")
def openlineage(
    root: str = typer.Argument(..., parser=root_arg, metavar="ROOT", help="Content root of the dataset."),
    output: Path | None = typer.Option(None, "--output", "-o", metavar="FILE", help="Write to FILE (default: stdout)."),
) -> None:
    """The lineage as OpenLineage run events (a JSON array, parents before children)."""
    with count_progress("building the OpenLineage events"):
        events = state().backend().openlineage(root)
    _write_document(events, output, "OpenLineage events")
