"""Lineage: the graph, its verification report, and PROV-JSON / OpenLineage exports."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Path

from api.problems import COMMON, responses
from api.state import AppState, get_state
from ledger.services.verification import lineage_graph, verify_lineage

router = APIRouter(prefix="/lineage", tags=["lineage"], responses=COMMON)
ROOT = Path(pattern=r"^0x[0-9a-fA-F]{64}$", description="content root")


@router.get("/{root}", summary="The lineage graph: every ancestor and the derivation edges", responses=responses(404))
def graph(root: str = ROOT, state: AppState = Depends(get_state)) -> dict[str, Any]:
    # chain reads only: nodes and edges need no metadata from IPFS
    body = lineage_graph(state.ledger, root)
    keep = ("content_root", "status", "holder", "parents")
    return {**body, "nodes": [{k: n[k] for k in keep} for n in body["nodes"]]}


@router.get(
    "/{root}/verification", summary="Verify every ancestor: per-node result and reasons", responses=responses(404)
)
def verification(root: str = ROOT, state: AppState = Depends(get_state)) -> dict[str, Any]:
    return verify_lineage(state.ledger, root).to_json()


@router.get("/{root}/prov", summary="W3C PROV-JSON of the lineage", responses=responses(404))
def prov(root: str = ROOT, state: AppState = Depends(get_state)) -> dict[str, Any]:
    from ledger.exports.prov import lineage_to_prov

    return lineage_to_prov(verify_lineage(state.ledger, root))


@router.get("/{root}/openlineage", summary="OpenLineage run events of the lineage", responses=responses(404))
def openlineage(root: str = ROOT, state: AppState = Depends(get_state)) -> list[dict[str, Any]]:
    from ledger.exports.openlineage import lineage_to_openlineage

    return lineage_to_openlineage(verify_lineage(state.ledger, root))
