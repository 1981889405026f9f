"""Purposes of use on the GA4GH Data Use Ontology, mirroring contracts/libraries/DataUse.sol.

A consent or approval mask holds permissions (NRES, GRU, HMB, DS, POA) and modifiers (NCU, NPU,
IRB, PUB, GSO, COL, RTN, NMDS); a use names one category (GRU, HMB, DS, POA) and its attributes
(commercial, for-profit, ethics approved, publishes, genetic, collaboration, returns results,
methods research). ``covers`` is the contract's rule, so answers computed off chain (consent
filters, rechecks) equal the chain's.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ledger.core.errors import InvalidInput

NRES, GRU, HMB, DS, POA = (1 << 0), (1 << 1), (1 << 2), (1 << 3), (1 << 4)
PERMISSIONS = 0xFF
NCU, NPU, IRB, PUB, GSO, COL, RTN, NMDS = ((1 << b) for b in range(16, 24))
MODIFIERS = 0xFF << 16
(
    USE_COMMERCIAL,
    USE_FOR_PROFIT,
    USE_ETHICS_APPROVED,
    USE_PUBLISHES,
    USE_GENETIC,
    USE_COLLABORATION,
    USE_RETURNS_RESULTS,
    USE_METHODS,
) = ((1 << b) for b in range(32, 40))
USE_ATTRIBUTES = 0xFF << 32

#: DUO term ids and short codes of the permission and modifier bits
DUO_TERMS: dict[str, tuple[str, int]] = {
    "NRES": ("DUO:0000004", NRES),
    "GRU": ("DUO:0000042", GRU),
    "HMB": ("DUO:0000006", HMB),
    "DS": ("DUO:0000007", DS),
    "POA": ("DUO:0000011", POA),
    "NCU": ("DUO:0000046", NCU),
    "NPU": ("DUO:0000045", NPU),
    "IRB": ("DUO:0000021", IRB),
    "PUB": ("DUO:0000019", PUB),
    "GSO": ("DUO:0000016", GSO),
    "COL": ("DUO:0000020", COL),
    "RTN": ("DUO:0000029", RTN),
    "NMDS": ("DUO:0000015", NMDS),
}
USE_ATTRIBUTE_NAMES: dict[str, int] = {
    "commercial": USE_COMMERCIAL,
    "for-profit": USE_FOR_PROFIT,
    "ethics-approved": USE_ETHICS_APPROVED,
    "publishes": USE_PUBLISHES,
    "genetic": USE_GENETIC,
    "collaboration": USE_COLLABORATION,
    "returns-results": USE_RETURNS_RESULTS,
    "methods-research": USE_METHODS,
}
_BY_ID = {term: (code, bit) for code, (term, bit) in DUO_TERMS.items()}


def is_valid_grant(mask: int, disease: int) -> bool:
    if mask & PERMISSIONS == 0 or mask & ~(PERMISSIONS | MODIFIERS):
        return False
    if mask & (PERMISSIONS & ~(NRES | GRU | HMB | DS | POA)):
        return False
    return bool(mask & DS) == (disease != 0)


def is_valid_use(mask: int, disease: int) -> bool:
    category = mask & PERMISSIONS
    if category not in (GRU, HMB, DS, POA) or mask & ~(PERMISSIONS | USE_ATTRIBUTES):
        return False
    return (category == DS) == (disease != 0)


def covers(grant: int, grant_disease: int, use: int, use_disease: int) -> bool:
    """Whether a consent (grant mask, disease) covers a use (use mask, disease): DataUse.covers."""
    category = use & PERMISSIONS
    if grant & (NRES | GRU):
        permitted = True
    elif category == HMB:
        permitted = bool(grant & HMB)
    elif category == DS:
        permitted = bool(grant & HMB) or (bool(grant & DS) and grant_disease == use_disease)
    elif category == POA:
        permitted = bool(grant & POA)
    else:
        permitted = False
    if not permitted:
        return False
    checks = (
        (NCU, USE_COMMERCIAL, False),
        (NPU, USE_FOR_PROFIT, False),
        (IRB, USE_ETHICS_APPROVED, True),
        (PUB, USE_PUBLISHES, True),
        (GSO, USE_GENETIC, True),
        (COL, USE_COLLABORATION, True),
        (RTN, USE_RETURNS_RESULTS, True),
        (NMDS, USE_METHODS, False),
    )
    return all(not grant & modifier or bool(use & attribute) == required for modifier, attribute, required in checks)


def within_approved(approved: int, approved_disease: int, use: int, use_disease: int) -> bool:
    if approved & USE_ATTRIBUTES != use & USE_ATTRIBUTES:
        return False
    return covers(approved & PERMISSIONS, approved_disease, use, use_disease)


def parse_disease(code: str | int | None) -> int:
    """``MONDO:0005148``, ``5148`` or None -> numeric MONDO id (0 for none)."""
    if code in (None, "", 0):
        return 0
    text = str(code).upper().removeprefix("MONDO:")
    if not text.isdigit() or int(text) >= 2**32:
        raise InvalidInput(f"disease code {code!r} is not a MONDO id", hint="use the form MONDO:0005148")
    return int(text)


def disease_label(code: int) -> str | None:
    return f"MONDO:{code:07d}" if code else None


def grant_mask(terms: Iterable[str]) -> int:
    """Codes or DUO ids of permissions and modifiers (``["HMB", "NCU"]``, ``["DUO:0000006"]``) -> mask."""
    mask = 0
    for term in terms:
        key = term.strip().upper()
        if key in DUO_TERMS:
            mask |= DUO_TERMS[key][1]
        elif key in _BY_ID:
            mask |= _BY_ID[key][1]
        else:
            raise InvalidInput(f"unknown data-use term {term!r}", hint=f"one of {', '.join(DUO_TERMS)}")
    return mask


def use_mask(category: str, attributes: Iterable[str] = ()) -> int:
    """A use: one category (GRU, HMB, DS, POA) and attribute names -> mask."""
    key = category.strip().upper()
    categories = ("GRU", "HMB", "DS", "POA", "DUO:0000042", "DUO:0000006", "DUO:0000007", "DUO:0000011")
    if key not in categories:
        raise InvalidInput(f"use category {category!r} is not one of GRU, HMB, DS, POA")
    mask = grant_mask([key])
    for attr in attributes:
        name = attr.strip().lower()
        if name not in USE_ATTRIBUTE_NAMES:
            raise InvalidInput(f"unknown use attribute {attr!r}", hint=f"one of {', '.join(USE_ATTRIBUTE_NAMES)}")
        mask |= USE_ATTRIBUTE_NAMES[name]
    return mask


def describe(mask: int) -> list[str]:
    """Short codes and attribute names set in a mask (for display and exports)."""
    out = [code for code, (_, bit) in DUO_TERMS.items() if mask & bit]
    out += [name for name, bit in USE_ATTRIBUTE_NAMES.items() if mask & bit]
    return out


@dataclass(frozen=True)
class Purpose:
    """A use: mask and disease code."""

    mask: int
    disease: int = 0

    def __post_init__(self) -> None:
        if not is_valid_use(self.mask, self.disease):
            raise InvalidInput(
                f"purpose 0x{self.mask:x} (disease {self.disease}) is not a valid use",
                hint="name one category (GRU, HMB, DS with a MONDO code, POA) and optional attributes",
            )

    @classmethod
    def of(cls, category: str, attributes: Iterable[str] = (), disease: str | int | None = None) -> Purpose:
        return cls(use_mask(category, attributes), parse_disease(disease))
