"""DUO purposes (ledger/rules/datause.py) without a node: validity of grants and uses, coverage,
approval bounds and the parsing of terms, codes and attributes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.core.errors import InvalidInput
from ledger.rules import datause as du

CATEGORIES = (du.GRU, du.HMB, du.DS, du.POA)
PERMISSION_BITS = (du.NRES, du.GRU, du.HMB, du.DS, du.POA)
MODIFIER_BITS = (du.NCU, du.NPU, du.IRB, du.PUB, du.GSO, du.COL, du.RTN, du.NMDS)
ATTRIBUTE_BITS = tuple(du.USE_ATTRIBUTE_NAMES.values())


def _bits(choices: tuple[int, ...]) -> st.SearchStrategy[int]:
    return st.lists(st.sampled_from(choices), unique=True).map(lambda xs: sum(xs, 0))


@st.composite
def valid_grants(draw: st.DrawFn) -> tuple[int, int]:
    permissions = draw(_bits(PERMISSION_BITS).filter(bool))
    mask = permissions | draw(_bits(MODIFIER_BITS))
    disease = draw(st.integers(1, 9)) if mask & du.DS else 0
    return mask, disease


@st.composite
def valid_uses(draw: st.DrawFn) -> tuple[int, int]:
    category = draw(st.sampled_from(CATEGORIES))
    mask = category | draw(_bits(ATTRIBUTE_BITS))
    return mask, draw(st.integers(1, 9)) if category == du.DS else 0


def test_grant_validity() -> None:
    assert du.is_valid_grant(du.HMB, 0)
    assert du.is_valid_grant(du.DS | du.IRB, 5148)
    assert du.is_valid_grant(du.NRES | du.NCU, 0)
    assert not du.is_valid_grant(0, 0)  # no permission
    assert not du.is_valid_grant(du.NCU, 0)  # a modifier alone
    assert not du.is_valid_grant(du.DS, 0)  # DS needs a disease
    assert not du.is_valid_grant(du.HMB, 5148)  # a disease needs DS
    assert not du.is_valid_grant(1 << 5, 0)  # an undefined permission bit
    assert not du.is_valid_grant(du.GRU | du.USE_COMMERCIAL, 0)  # a use attribute in a grant


def test_use_validity() -> None:
    assert du.is_valid_use(du.HMB | du.USE_PUBLISHES, 0)
    assert du.is_valid_use(du.DS, 7)
    assert not du.is_valid_use(du.NRES, 0)  # NRES is no use category
    assert not du.is_valid_use(du.HMB | du.POA, 0)  # two categories
    assert not du.is_valid_use(du.DS, 0)
    assert not du.is_valid_use(du.GRU, 7)
    assert not du.is_valid_use(du.GRU | du.NCU, 0)  # a modifier in a use


def test_covers_documented_examples() -> None:
    assert du.covers(du.GRU, 0, du.POA, 0)
    assert du.covers(du.HMB, 0, du.DS, 3)
    assert du.covers(du.DS, 3, du.DS, 3)
    assert not du.covers(du.HMB, 0, du.POA, 0)
    assert not du.covers(du.DS, 3, du.DS, 4)
    assert not du.covers(du.DS, 3, du.HMB, 0)
    assert not du.covers(du.POA, 0, du.HMB, 0)
    assert not du.covers(du.GRU | du.NCU, 0, du.GRU | du.USE_COMMERCIAL, 0)
    assert du.covers(du.GRU | du.NCU, 0, du.GRU, 0)
    assert not du.covers(du.HMB | du.IRB, 0, du.HMB, 0)
    assert du.covers(du.HMB | du.IRB, 0, du.HMB | du.USE_ETHICS_APPROVED, 0)
    assert not du.covers(du.GRU | du.NMDS, 0, du.GRU | du.USE_METHODS, 0)


@given(valid_uses())
def test_open_grants_cover_every_use_without_modifiers(use: tuple[int, int]) -> None:
    assert du.covers(du.NRES, 0, *use)
    assert du.covers(du.GRU, 0, *use)


@given(valid_grants(), valid_uses(), st.sampled_from(MODIFIER_BITS))
def test_a_modifier_never_widens_a_consent(grant: tuple[int, int], use: tuple[int, int], modifier: int) -> None:
    mask, disease = grant
    if du.covers(mask | modifier, disease, *use):
        assert du.covers(mask, disease, *use)


@given(valid_grants(), valid_uses())
def test_coverage_only_for_the_permitted_category(grant: tuple[int, int], use: tuple[int, int]) -> None:
    mask, disease = grant
    use_mask, use_disease = use
    if du.covers(mask, disease, use_mask, use_disease):
        category = use_mask & du.PERMISSIONS
        assert mask & (du.NRES | du.GRU) or mask & category or (category == du.DS and mask & du.HMB)
        if category == du.DS and not mask & (du.NRES | du.GRU | du.HMB):
            assert disease == use_disease


def test_within_approved_needs_the_same_attributes() -> None:
    approved = du.HMB | du.USE_PUBLISHES
    assert du.within_approved(approved, 0, du.HMB | du.USE_PUBLISHES, 0)
    assert du.within_approved(approved, 0, du.DS | du.USE_PUBLISHES, 4)  # HMB approval covers a DS use
    assert not du.within_approved(approved, 0, du.HMB, 0)
    assert not du.within_approved(approved, 0, du.HMB | du.USE_PUBLISHES | du.USE_COMMERCIAL, 0)
    assert not du.within_approved(du.DS | du.USE_PUBLISHES, 4, du.DS | du.USE_PUBLISHES, 5)


def test_parse_disease_and_label() -> None:
    assert du.parse_disease("MONDO:0005148") == 5148
    assert du.parse_disease("mondo:0005148") == 5148
    assert du.parse_disease("5148") == 5148
    assert du.parse_disease(5148) == 5148
    assert du.parse_disease(None) == du.parse_disease("") == du.parse_disease(0) == 0
    for bad in ("HP:0001", "MONDO:x", str(2**32)):
        with pytest.raises(InvalidInput, match="not a MONDO id"):
            du.parse_disease(bad)
    assert du.disease_label(5148) == "MONDO:0005148"
    assert du.disease_label(0) is None


def test_terms_codes_and_attributes() -> None:
    assert du.grant_mask(["HMB", "ncu"]) == du.HMB | du.NCU
    assert du.grant_mask(["DUO:0000006", " DUO:0000046 "]) == du.HMB | du.NCU
    with pytest.raises(InvalidInput, match="unknown data-use term"):
        du.grant_mask(["XYZ"])
    assert du.use_mask("ds", ["publishes", "Genetic"]) == du.DS | du.USE_PUBLISHES | du.USE_GENETIC
    assert du.use_mask("DUO:0000011") == du.POA
    with pytest.raises(InvalidInput, match="not one of GRU, HMB, DS, POA"):
        du.use_mask("NRES")
    with pytest.raises(InvalidInput, match="unknown use attribute"):
        du.use_mask("HMB", ["famous"])
    assert du.describe(du.HMB | du.NCU | du.USE_PUBLISHES) == ["HMB", "NCU", "publishes"]
    assert {term for term, _ in du.DUO_TERMS.values()} >= {"DUO:0000042", "DUO:0000007"}


def test_purpose_validates() -> None:
    p = du.Purpose.of("DS", ["publishes"], disease="MONDO:0005148")
    assert (p.mask, p.disease) == (du.DS | du.USE_PUBLISHES, 5148)
    with pytest.raises(InvalidInput, match="not a valid use"):
        du.Purpose(du.DS, 0)
    with pytest.raises(InvalidInput, match="not a valid use"):
        du.Purpose(du.HMB | du.POA)
