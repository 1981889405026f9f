"""What the demo's steps share: the research purpose, role ids, the progress file, the metadata
documents of the three datasets and the scenario's result."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import demo_data
import rfc8785
from eth_utils.crypto import keccak

from ledger.content.files import hash_folder
from ledger.content.merkle import content_root
from ledger.rules import datause
from ledger.services.cohort import filter_parameters_digest

#: what the researcher does: health/medical research with ethics approval (DUO HMB; the IRB modifier
#: of some consents needs the ethics-approved attribute)
RESEARCH_CATEGORY = "HMB"
RESEARCH_ATTRIBUTES = ("ethics-approved",)
RESEARCH_PURPOSE = datause.Purpose.of(RESEARCH_CATEGORY, RESEARCH_ATTRIBUTES)
YEAR = 365 * 86400
PROGRESS_VERSION = 1


def _role_id(name: str) -> str:
    return "0x" + keccak(text=name).hex()


ROLE_IDS = {
    "holder": _role_id("HOLDER_ROLE"),
    "reviewer": _role_id("REVIEWER_ROLE"),
    "user": _role_id("USER_ROLE"),
    "auditor": _role_id("AUDITOR_ROLE"),
}


class DemoError(Exception):
    """A step failed; the message says which and why."""


def now_iso() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def sha256_json(doc: Any) -> str:
    return "0x" + hashlib.sha256(rfc8785.dumps(doc)).hexdigest()


def short(value: str, keep: int = 10) -> str:
    return value if len(value) <= 2 * keep + 2 else f"{value[: keep + 2]}…{value[-keep:]}"


# ---------------------------------------------------------------------------------------------
# progress: what an earlier run already did
# ---------------------------------------------------------------------------------------------


class Progress:
    """Step results kept in ``<work dir>/progress.json``, valid for one cohort on one chain."""

    def __init__(self, path: Path, key: str) -> None:
        self.path = path
        self.key = key
        self.steps: dict[str, Any] = {}
        try:
            saved = json.loads(path.read_text())
            if saved.get("version") == PROGRESS_VERSION and saved.get("key") == key:
                self.steps = dict(saved.get("steps", {}))
        except (OSError, ValueError):
            pass

    def get(self, step: str) -> Any:
        return self.steps.get(step)

    def put(self, step: str, value: Any) -> Any:
        self.steps[step] = value
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps({"version": PROGRESS_VERSION, "key": self.key, "steps": self.steps}, indent=2))
        temporary.replace(self.path)
        return value

    def reset(self) -> None:
        self.steps = {}
        self.path.unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------------
# metadata documents
# ---------------------------------------------------------------------------------------------


def files_of(folder: Path) -> list[dict[str, Any]]:
    return [e.model_dump() for e in hash_folder(folder)]


def root_of(folder: Path) -> str:
    return "0x" + content_root(e.leaf() for e in hash_folder(folder)).hex()


def cohort_metadata(holder: str, folder: Path, subjects: int) -> dict[str, Any]:
    now = now_iso()
    return {
        "title": {"en": "Cardiometabolic outpatient cohort (synthetic)", "zh-CN": "心血管代谢门诊队列（合成数据）"},
        "description": {
            "en": "Synthetic visit records: age band, sex, ICD-10 diagnosis and four lab values per visit, "
            "keyed by pseudonymous subject addresses. Generated for demonstration; no real patient.",
            "zh-CN": "合成的就诊记录：年龄段、性别、ICD-10 诊断和四项检验值，以假名化地址标识受试者。仅用于演示。",
        },
        "keywords": ["cardiometabolic", "cohort", "diabetes", "synthetic"],
        "classification": "0x0101",
        "tier": "controlled",
        "licence": {"spdx": "CC-BY-NC-4.0"},
        "data_use": ["DUO:0000006", "DUO:0000007"],
        "disease_codes": [demo_data.DIABETES_MONDO],
        "files": files_of(folder),
        "activity": {"type": "collection", "agent": holder, "started": now, "ended": now},
        "subject_count": subjects,
        "holder": holder,
        "created": now,
    }


def filter_metadata(holder: str, folder: Path, parent: str, covered: int, block: int, started: str) -> dict[str, Any]:
    now = now_iso()
    digest = "0x" + filter_parameters_digest(bytes.fromhex(parent[2:]), RESEARCH_PURPOSE, block).hex()
    return {
        "title": {"en": "Cardiometabolic cohort: subjects consenting to ethics-approved health research"},
        "description": {
            "en": "The cohort's records restricted to the subjects whose consent covered health/medical "
            f"research with ethics approval (DUO:0000006) at block {block}.",
        },
        "keywords": ["consent-filtered", "synthetic"],
        "classification": "0x0101",
        "tier": "controlled",
        "licence": {"spdx": "CC-BY-NC-4.0"},
        "data_use": ["DUO:0000006", "DUO:0000021"],
        "files": files_of(folder),
        "parents": [parent],
        "activity": {
            "type": "consent-filter",
            "agent": holder,
            "started": started,
            "ended": now,
            "software": {"name": "medledger-demo", "version": "1"},
            "parameters_digest": digest,
            "consent_filter": {"purpose_mask": RESEARCH_PURPOSE.mask, "block_number": block},
        },
        "subject_count": covered,
        "holder": holder,
        "created": now,
    }


AGGREGATION_PARAMETERS = {"min-cell-size": 5, "generalised": "age-band", "minors": "folded-into-18-29"}


def derived_metadata(researcher: str, folder: Path, parent: str) -> dict[str, Any]:
    now = now_iso()
    return {
        "title": {"en": "Cardiometabolic cohort: de-identified aggregate by age band, sex and diagnosis"},
        "description": {
            "en": "Counts and mean lab values per age band, sex and ICD-10 diagnosis, computed from the "
            "consent-filtered records; cells with fewer than five subjects are suppressed.",
        },
        "keywords": ["aggregate", "de-identified", "synthetic"],
        "classification": "0x0101",
        "tier": "registered",
        "licence": {"spdx": "CC-BY-4.0"},
        "data_use": ["DUO:0000006"],
        "files": files_of(folder),
        "parents": [parent],
        "activity": {
            "type": "de-identification",
            "agent": researcher,
            "started": now,
            "ended": now,
            "software": {"name": "medledger-demo-aggregate", "version": "1"},
            "parameters_digest": sha256_json(AGGREGATION_PARAMETERS),
        },
        "deidentification": {"method": "aggregation", "parameters": dict(AGGREGATION_PARAMETERS)},
        "holder": researcher,
        "created": now,
    }


# ---------------------------------------------------------------------------------------------
# the scenario
# ---------------------------------------------------------------------------------------------


@dataclass
class DemoResult:
    """What the scenario created (or found)."""

    url: str
    already_loaded: bool
    actors: dict[str, str]
    cohort_root: str
    filter_root: str
    derived_root: str
    subjects: int
    records: int
    covered: list[str]
    consents: dict[str, int]
    guardian_subject: str
    withdrawing_subject: str
    filter_block: int | None = None
    request_id: int | None = None
    tickets: dict[str, Any] = field(default_factory=dict)
    impact: dict[str, Any] | None = None
    verification: dict[str, Any] | None = None
    verification_after_suspension: dict[str, Any] | None = None
    prov_file: str | None = None
    refusal: dict[str, Any] | None = None
    #: steps that could not show their result (a read endpoint failing); writes raise instead
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["covered_count"] = len(self.covered)
        out.pop("covered")
        return out
