"""The demo scenario, run against the service over HTTP as its clients would.

Every write is prepared by the service (EIP-712 typed data), signed here with the acting party's
own key and posted back; the service relays it. No party's key is ever sent to the service.

The story, on synthetic data (see ``scripts/demo_data.py``):

 1. the platform admin grants roles: a hospital (holder), a review committee (reviewer), a
    researcher (user) and a regulator (auditor);
 2. the hospital registers a cohort of a few hundred synthetic records and subjects (controlled
    tier; only the Merkle root of the subjects goes on chain);
 3. subjects consent for different DUO purposes, most holder-wide, some for this dataset only, one
    (a minor) through a guardian the subject appointed;
 4. the hospital computes, at block N, which subjects' consent covers "health/medical research,
    ethics approved" and registers that subset as a consent-filtered dataset derived from the cohort;
 5. the researcher requests access to the filtered dataset;  6. the committee approves;
 7. the researcher records a use and  8. registers a de-identified aggregate derived from it;
 9. one subject withdraws (holder-wide) and the researcher records another use afterwards;
10. the withdrawal-impact report names the datasets, approvals and uses affected;
11. the regulator verifies the lineage of the aggregate and 12. exports it as W3C PROV-JSON;
13. the regulator suspends the filtered dataset and 14. a later use is refused (problem details).

Running it again is safe: keys, data and content roots are deterministic, steps already done are
found on chain (or in ``<work dir>/progress.json``) and skipped; when everything is in place the
demo only prints the summary.

    python scripts/demo.py [--url http://127.0.0.1:8000] [--subjects 300] [--work-dir DIR]

The steps are in ``demo_steps.py`` (1-4) and ``demo_scenario.py`` (5-14), the documents and the
progress file in ``demo_common.py``, the synthetic data in ``demo_data.py``; every request goes
through the project's HTTP client (:class:`ledger.client.http.ServiceClient`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import demo_data
from demo_common import RESEARCH_ATTRIBUTES, RESEARCH_CATEGORY, RESEARCH_PURPOSE, DemoError, DemoResult
from demo_scenario import Scenario
from demo_steps import Log

from ledger.core.config import load_settings
from ledger.core.errors import LedgerError

__all__ = [
    "RESEARCH_ATTRIBUTES",
    "RESEARCH_CATEGORY",
    "RESEARCH_PURPOSE",
    "DemoError",
    "DemoResult",
    "Scenario",
    "demo_data",
    "main",
    "run_scenario",
    "summary_lines",
]


def summary_lines(result: DemoResult) -> list[str]:
    lines = [
        "",
        "Demo data " + ("(found, already loaded)" if result.already_loaded else f"(loaded in {result.seconds:.1f} s)"),
        f"  cohort            {result.cohort_root}  ({result.records} records, {result.subjects} subjects)",
        f"  consent-filtered  {result.filter_root}  ({len(result.covered)} subjects; suspended by the regulator)",
        f"  derived aggregate {result.derived_root}  (de-identified, registered by the researcher)",
        f"  access request    #{result.request_id}",
        f"  withdrawn subject {result.withdrawing_subject}",
        "  actors:",
    ]
    lines += [f"    {name:28} {address}" for name, address in result.actors.items()]
    url = result.url
    lines += [
        "  try:",
        f"    {url}/lineage/{result.derived_root}/verification",
        f"    {url}/lineage/{result.derived_root}/prov",
        f"    {url}/datasets/{result.filter_root}/stats",
        f"    {url}/audit/datasets/{result.filter_root}",
    ]
    return lines


def run_scenario(
    url: str,
    admin_key: str,
    work_dir: Path,
    *,
    subjects: int = demo_data.DEFAULT_SUBJECTS,
    seed: str = demo_data.SEED,
    rpc_url: str | None = None,
    log: Log = print,
) -> DemoResult:
    """Run (or find) the whole scenario against the service at ``url``."""
    scenario = Scenario(url, admin_key, work_dir, subjects=subjects, seed=seed, rpc_url=rpc_url, log=log)
    try:
        return scenario.run()
    finally:
        scenario.service.close()


def main(argv: Sequence[str] | None = None) -> int:
    settings = load_settings()
    parser = argparse.ArgumentParser(description="Run the demo scenario against the service over HTTP")
    parser.add_argument("--url", default=f"http://{settings.api_host}:{settings.api_port}", help="service URL")
    parser.add_argument("--subjects", type=int, default=demo_data.DEFAULT_SUBJECTS, help="cohort size")
    parser.add_argument("--work-dir", type=Path, default=settings.data_dir / "demo", help="demo files and progress")
    parser.add_argument("--quiet", action="store_true", help="print only the summary")
    args = parser.parse_args(argv)
    log: Log = (lambda _: None) if args.quiet else print
    try:
        result = run_scenario(
            args.url,
            settings.relayer_private_key(),
            args.work_dir,
            subjects=args.subjects,
            rpc_url=settings.rpc_url,
            log=log,
        )
    except (DemoError, LedgerError) as exc:
        print(f"\ndemo failed: {exc}", file=sys.stderr)
        return 1
    print("\n".join(summary_lines(result)))
    if result.problems:
        print("\nthe demo completed, but these steps could not show their result:", file=sys.stderr)
        for problem in result.problems:
            print(f"  - {problem}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
