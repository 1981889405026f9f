"""Synthetic data for the demo scenario: a hospital cohort, its consent-filtered subset and a
de-identified aggregate derived from that subset.

Everything here is deterministic: the same seed gives the same keys, the same subjects, the same
records and therefore the same files, content roots and subject roots on every run. That is what
lets the demo (and ``./run.sh``) recognise data it already registered.

No record carries a name, a birth date, an address or free text: subjects are pseudonymous
Ethereum addresses derived from seeds, ages are bands, clinical facts are codes and numbers.

Usage as a script (writes the three folders and prints their content roots)::

    python scripts/demo_data.py [OUT_DIR] [--subjects 300]
"""

from __future__ import annotations

import argparse
import csv
import io
import random
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak

from ledger.content.files import hash_folder
from ledger.content.merkle import content_root
from ledger.core.config import load_settings

#: bump to get an entirely new set of keys, subjects and records
SEED = "medledger-demo-v1"
DEFAULT_SUBJECTS = 300

# ---------------------------------------------------------------------------------------------
# keys
# ---------------------------------------------------------------------------------------------


def demo_key(label: str, seed: str = SEED) -> LocalAccount:
    """A deterministic account for a demo actor: the private key is keccak256(seed/label).

    Only for demonstrations on a local chain: anyone who reads this file can recompute the keys."""
    account: LocalAccount = Account.from_key(keccak(text=f"{seed}/{label}"))
    return account


@dataclass(frozen=True)
class Actors:
    """The parties of the scenario (the admin is the platform operator's configured key)."""

    hospital: LocalAccount  # holder
    committee: LocalAccount  # reviewer
    researcher: LocalAccount  # user
    regulator: LocalAccount  # auditor
    guardian: LocalAccount  # delegate of the minor subject

    @classmethod
    def make(cls, seed: str = SEED) -> Actors:
        return cls(
            hospital=demo_key("hospital", seed),
            committee=demo_key("review-committee", seed),
            researcher=demo_key("researcher", seed),
            regulator=demo_key("regulator", seed),
            guardian=demo_key("guardian", seed),
        )

    def names(self) -> dict[str, str]:
        return {
            "hospital (holder)": self.hospital.address,
            "review committee (reviewer)": self.committee.address,
            "researcher (user)": self.researcher.address,
            "regulator (auditor)": self.regulator.address,
            "guardian (delegate)": self.guardian.address,
        }


# ---------------------------------------------------------------------------------------------
# subjects and their consent plan
# ---------------------------------------------------------------------------------------------

#: MONDO code of type 2 diabetes mellitus, for the disease-specific consents
DIABETES_MONDO = "MONDO:0005148"

#: consent kinds of the plan: (scope, DUO terms, disease)
CONSENT_KINDS: dict[str, tuple[str, tuple[str, ...], str | None]] = {
    "holder-hmb": ("holder", ("HMB",), None),
    "holder-gru": ("holder", ("GRU",), None),
    "holder-hmb-irb": ("holder", ("HMB", "IRB"), None),
    "dataset-hmb-ncu": ("dataset", ("HMB", "NCU"), None),
    "holder-ds-diabetes": ("holder", ("DS",), DIABETES_MONDO),
    "holder-poa": ("holder", ("POA",), None),
    "none": ("", (), None),
}
#: share of each consent kind in the cohort (the rest consent to nothing)
CONSENT_SHARES: tuple[tuple[str, float], ...] = (
    ("holder-hmb", 0.35),
    ("holder-gru", 0.15),
    ("holder-hmb-irb", 0.05),
    ("dataset-hmb-ncu", 0.10),
    ("holder-ds-diabetes", 0.10),
    ("holder-poa", 0.05),
)
#: consents that cover the researcher's purpose (health/medical research, ethics approved)
COVERS_RESEARCH_PURPOSE = frozenset({"holder-hmb", "holder-gru", "holder-hmb-irb", "dataset-hmb-ncu"})

AGE_BANDS = ("18-29", "30-39", "40-49", "50-59", "60-69", "70-79", "80+")
MINOR_AGE_BAND = "10-17"
#: ICD-10 codes and how likely each is as a visit's main diagnosis
DIAGNOSES: tuple[tuple[str, float], ...] = (
    ("E11.9", 0.30),  # type 2 diabetes without complications
    ("I10", 0.25),  # essential hypertension
    ("E78.5", 0.15),  # hyperlipidaemia
    ("N18.3", 0.10),  # chronic kidney disease, stage 3
    ("J45.9", 0.08),  # asthma
    ("Z00.0", 0.12),  # general medical examination
)


@dataclass(frozen=True)
class Subject:
    index: int
    account: LocalAccount
    age_band: str
    sex: str
    consent: str  # a key of CONSENT_KINDS
    via_guardian: bool = False

    @property
    def address(self) -> str:
        return str(self.account.address)


@dataclass
class Cohort:
    """The generated cohort: subjects (with their consent plan) and visit records."""

    seed: str
    subjects: list[Subject]
    records: list[dict[str, str]] = field(default_factory=list)

    @property
    def addresses(self) -> list[str]:
        return [s.address for s in self.subjects]

    def by_address(self) -> dict[str, Subject]:
        return {s.address: s for s in self.subjects}

    @property
    def minor(self) -> Subject:
        return next(s for s in self.subjects if s.via_guardian)

    def expected_covered(self, withdrawn: Iterable[str] = ()) -> list[str]:
        """Subjects whose planned consent covers the researcher's purpose, in cohort order."""
        gone = set(withdrawn)
        return [s.address for s in self.subjects if s.consent in COVERS_RESEARCH_PURPOSE and s.address not in gone]

    def withdrawing_subject(self) -> Subject:
        """The subject who withdraws in the scenario: the first adult with a holder-wide HMB consent."""
        return next(s for s in self.subjects if s.consent == "holder-hmb" and not s.via_guardian)


def _weighted(rng: random.Random, table: Sequence[tuple[str, float]]) -> str:
    x = rng.random() * sum(w for _, w in table)
    for value, weight in table:
        x -= weight
        if x < 0:
            return value
    return table[-1][0]


def _plan_consents(n: int, rng: random.Random) -> list[str]:
    """Exact shares (rounded), shuffled deterministically."""
    plan: list[str] = []
    for kind, share in CONSENT_SHARES:
        plan += [kind] * round(n * share)
    plan = plan[:n]
    plan += ["none"] * (n - len(plan))
    rng.shuffle(plan)
    return plan


def _lab(rng: random.Random, mean: float, sd: float, low: float, high: float, digits: int) -> str:
    value = min(high, max(low, rng.gauss(mean, sd)))
    return f"{value:.{digits}f}"


def make_cohort(n_subjects: int = DEFAULT_SUBJECTS, seed: str = SEED) -> Cohort:
    """``n_subjects`` subjects with 1-3 visits each. Subject 0 is a minor whose guardian consents
    for them (holder-wide, health/medical research)."""
    if n_subjects < 20:
        raise ValueError("the demo needs at least 20 subjects")
    rng = random.Random(f"{seed}/cohort")
    plan = _plan_consents(n_subjects, rng)
    band_weights = [(band, 1.0 + k % 3) for k, band in enumerate(AGE_BANDS)]
    subjects: list[Subject] = []
    for i in range(n_subjects):
        minor = i == 0
        band = MINOR_AGE_BAND if minor else _weighted(rng, band_weights)
        subjects.append(
            Subject(
                index=i,
                account=demo_key(f"subject/{i:04d}", seed),
                age_band=band,
                sex=rng.choice(("F", "M")),
                consent="holder-hmb" if minor else plan[i],
                via_guardian=minor,
            )
        )
    cohort = Cohort(seed, subjects)
    for s in subjects:
        for visit in range(1, rng.randint(1, 3) + 1):
            diagnosis = "J45.9" if s.via_guardian else _weighted(rng, DIAGNOSES)
            diabetic = diagnosis == "E11.9"
            cohort.records.append(
                {
                    "subject": s.address,
                    "visit": str(visit),
                    "age_band": s.age_band,
                    "sex": s.sex,
                    "diagnosis_icd10": diagnosis,
                    "hba1c_pct": _lab(rng, 7.8 if diabetic else 5.4, 1.1 if diabetic else 0.4, 4.0, 14.0, 1),
                    "ldl_mmol_l": _lab(rng, 3.4 if diagnosis == "E78.5" else 2.7, 0.7, 0.8, 7.5, 2),
                    "sbp_mmhg": _lab(rng, 148 if diagnosis == "I10" else 124, 14, 85, 220, 0),
                    "egfr_ml_min": _lab(rng, 45 if diagnosis == "N18.3" else 88, 12, 8, 130, 0),
                }
            )
    return cohort


# ---------------------------------------------------------------------------------------------
# files
# ---------------------------------------------------------------------------------------------

RECORD_FIELDS = (
    "subject",
    "visit",
    "age_band",
    "sex",
    "diagnosis_icd10",
    "hba1c_pct",
    "ldl_mmol_l",
    "sbp_mmhg",
    "egfr_ml_min",
)
DICTIONARY = (
    ("subject", "address", "", "pseudonymous subject identifier (Ethereum address)"),
    ("visit", "integer", "", "visit number within the cohort"),
    ("age_band", "category", "years", "age at enrolment, 10-year band"),
    ("sex", "category", "", "F or M"),
    ("diagnosis_icd10", "code", "", "main diagnosis of the visit, ICD-10"),
    ("hba1c_pct", "decimal", "%", "glycated haemoglobin"),
    ("ldl_mmol_l", "decimal", "mmol/L", "LDL cholesterol"),
    ("sbp_mmhg", "integer", "mmHg", "systolic blood pressure"),
    ("egfr_ml_min", "integer", "mL/min/1.73m2", "estimated glomerular filtration rate"),
)
AGGREGATE_FIELDS = (
    "age_band",
    "sex",
    "diagnosis_icd10",
    "subjects",
    "visits",
    "hba1c_pct_mean",
    "ldl_mmol_l_mean",
    "sbp_mmhg_mean",
    "egfr_ml_min_mean",
)


def _csv_bytes(header: Sequence[str], rows: Iterable[Mapping[str, str] | Sequence[str]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([row[h] for h in header] if isinstance(row, Mapping) else list(row))
    return buffer.getvalue().encode()


def _write_folder(folder: Path, files: Mapping[str, bytes]) -> Path:
    """Write exactly ``files`` into ``folder`` (other files there are removed: the folder is the dataset)."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.iterdir():
        if old.is_file() and old.name not in files:
            old.unlink()
    for name, data in files.items():
        path = folder / name
        if not path.exists() or path.read_bytes() != data:
            path.write_bytes(data)
    return folder


def write_cohort(cohort: Cohort, folder: Path) -> Path:
    """The hospital's cohort dataset: visit records and the data dictionary."""
    return _write_folder(
        folder,
        {
            "records.csv": _csv_bytes(RECORD_FIELDS, cohort.records),
            "data_dictionary.csv": _csv_bytes(("field", "type", "unit", "meaning"), DICTIONARY),
        },
    )


def write_filtered(cohort: Cohort, covered: Iterable[str], folder: Path) -> Path:
    """The consent-filtered subset: the records of the covered subjects only."""
    keep = set(covered)
    rows = [r for r in cohort.records if r["subject"] in keep]
    return _write_folder(
        folder,
        {
            "records.csv": _csv_bytes(RECORD_FIELDS, rows),
            "data_dictionary.csv": _csv_bytes(("field", "type", "unit", "meaning"), DICTIONARY),
        },
    )


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def read_records(folder: Path) -> list[dict[str, str]]:
    return read_rows(folder / "records.csv")


def aggregate(records: Sequence[Mapping[str, str]], min_cell: int = 5) -> list[dict[str, str]]:
    """De-identify by generalisation and aggregation: one row per (age band, sex, diagnosis) with
    counts and mean lab values; cells with fewer than ``min_cell`` subjects are suppressed and minors
    are folded into the youngest adult band (so no small group is identifiable)."""
    groups: dict[tuple[str, str, str], list[Mapping[str, str]]] = {}
    for r in records:
        band = "18-29" if r["age_band"] == MINOR_AGE_BAND else r["age_band"]
        groups.setdefault((band, r["sex"], r["diagnosis_icd10"]), []).append(r)
    rows: list[dict[str, str]] = []
    for (band, sex, diagnosis), members in sorted(groups.items()):
        subjects = {m["subject"] for m in members}
        if len(subjects) < min_cell:
            continue
        row = {"age_band": band, "sex": sex, "diagnosis_icd10": diagnosis}
        row["subjects"] = str(len(subjects))
        row["visits"] = str(len(members))
        for name, digits in (("hba1c_pct", 2), ("ldl_mmol_l", 2), ("sbp_mmhg", 1), ("egfr_ml_min", 1)):
            row[f"{name}_mean"] = f"{statistics.fmean(float(m[name]) for m in members):.{digits}f}"
        rows.append(row)
    return rows


def write_aggregate(filtered_folder: Path, folder: Path, min_cell: int = 5) -> Path:
    """The researcher's de-identified derived dataset, computed from the filtered records."""
    rows = aggregate(read_records(filtered_folder), min_cell)
    return _write_folder(folder, {"aggregate.csv": _csv_bytes(AGGREGATE_FIELDS, rows)})


@dataclass(frozen=True)
class DemoFolders:
    cohort: Path
    filtered: Path
    derived: Path


def folders(base: Path) -> DemoFolders:
    return DemoFolders(base / "cohort", base / "consent-filtered-hmb", base / "derived-aggregate")


def write_all(base: Path, n_subjects: int = DEFAULT_SUBJECTS, seed: str = SEED) -> tuple[Cohort, DemoFolders]:
    """Generate everything as planned (the filtered subset from the consent plan)."""
    cohort = make_cohort(n_subjects, seed)
    where = folders(base)
    write_cohort(cohort, where.cohort)
    write_filtered(cohort, cohort.expected_covered(), where.filtered)
    write_aggregate(where.filtered, where.derived)
    return cohort, where


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the demo's synthetic datasets")
    parser.add_argument("out", nargs="?", type=Path, default=None, help="folder (default <data_dir>/demo/data)")
    parser.add_argument("--subjects", type=int, default=DEFAULT_SUBJECTS)
    args = parser.parse_args(argv)
    out = args.out
    if out is None:
        out = load_settings().data_dir / "demo" / "data"
    cohort, where = write_all(out, args.subjects)
    print(f"{len(cohort.subjects)} subjects, {len(cohort.records)} records")
    for name in ("cohort", "filtered", "derived"):
        folder = getattr(where, name)
        root = content_root(e.leaf() for e in hash_folder(folder))
        print(f"  {name:9} {folder}  content root 0x{root.hex()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
