"""Lineage: the graph, its verification report, and PROV-JSON / OpenLineage exports."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path

from api.problems import COMMON, responses
from api.schemas import LineageGraph, LineageReportOut, ProvDocument, RunEvent
from api.state import AppState, get_state
from ledger.exports.openlineage import lineage_to_openlineage
from ledger.exports.prov import lineage_to_prov
from ledger.services.verification import lineage_graph, verify_lineage

router = APIRouter(prefix="/lineage", tags=["lineage"], responses=COMMON)
ROOT = Path(pattern=r"^0x[0-9a-fA-F]{64}$", description="content root")


@router.get(
    "/{root}",
    response_model=LineageGraph,
    summary="The lineage graph: every ancestor and the derivation edges",
    responses=responses(404),
)
def graph(root: str = ROOT, state: AppState = Depends(get_state)) -> LineageGraph:
    # chain reads only: nodes and edges need no metadata from IPFS
    return LineageGraph.model_validate(lineage_graph(state.ledger, root))


@router.get(
    "/{root}/verification",
    response_model=LineageReportOut,
    summary="Verify every ancestor: per-node result and reasons",
    responses=responses(404),
)
def verification(root: str = ROOT, state: AppState = Depends(get_state)) -> LineageReportOut:
    return LineageReportOut(**verify_lineage(state.ledger, root).to_json())


@router.get(
    "/{root}/prov", response_model=ProvDocument, summary="W3C PROV-JSON of the lineage", responses=responses(404)
)
def prov(root: str = ROOT, state: AppState = Depends(get_state)) -> ProvDocument:
    return ProvDocument(**lineage_to_prov(verify_lineage(state.ledger, root)))


@router.get(
    "/{root}/openlineage",
    response_model=list[RunEvent],
    summary="OpenLineage run events of the lineage",
    responses=responses(404),
)
def openlineage(root: str = ROOT, state: AppState = Depends(get_state)) -> list[RunEvent]:
    return [RunEvent(**e) for e in lineage_to_openlineage(verify_lineage(state.ledger, root))]
