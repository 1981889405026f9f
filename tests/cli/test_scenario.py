"""The demo scenario driven only through the CLI, directly against the chain (the CLI is its own
relayer; every write is signed with the acting party's key from the keystore):

admin grants roles; the hospital registers a cohort from a folder of synthetic CSV files with a
subjects file; subjects consent (one through a guardian); the hospital registers the consent-filtered
subset; the researcher requests access, the committee approves, the researcher records a use and
registers a derived aggregate; a subject withdraws and the impact report names what it affects;
the regulator verifies the lineage, exports PROV, suspends the filtered dataset, and a later use
is refused. Along the way: tampered files fail verification (exit 1), refusals exit 3 with what to do.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .helpers import Cli, write_cohort


def _ok(body: dict[str, Any]) -> dict[str, Any]:
    assert body["status"] == "mined", body
    assert body["tx_hash"].startswith("0x") and body["block"] > 0
    return body


def test_scenario_through_the_cli(cli: Cli, parties: dict[str, str], roles_granted: None, tmp_path: Path) -> None:
    # -- 1. roles (granted by the admin in the roles_granted fixture)
    shown = cli.json("roles", "show", "hospital")
    assert shown == {"account": parties["hospital"], "roles": ["holder"], "suspended": False}
    assert cli.json("roles", "show", "regulator")["roles"] == ["auditor"]

    # -- 2. the hospital registers the cohort: files hashed here, subjects as a Merkle root only
    subjects = [parties[a] for a in ("alice", "bob", "carol", "dan")]
    subjects_file = tmp_path / "subjects.txt"
    subjects_file.write_text("# cohort subjects, pseudonymous\n" + "\n".join(subjects) + "\n")
    cohort_dir = tmp_path / "cohort"
    write_cohort(cohort_dir, subjects, salt="direct")
    cohort = _ok(
        cli.json(
            "--key",
            "hospital",
            "datasets",
            "register",
            str(cohort_dir),
            "--title",
            "Diabetes cohort 2024",
            "--description",
            "Synthetic visits and lipid panels of a diabetes cohort",
            "--classification",
            "clinical-research",
            "--tier",
            "controlled",
            "--licence",
            "CC-BY-4.0",
            "--data-use",
            "HMB",
            "--keyword",
            "diabetes",
            "--subjects",
            str(subjects_file),
        )
    )
    root = cohort["content_root"]
    assert cohort["files"] == 2 and cohort["subjects"] == 4
    assert cohort["subject_root"] != "0x" + "00" * 32
    record = cli.json("datasets", "show", root)
    assert record["record"]["holder"] == parties["hospital"]
    assert record["record"]["tier"] == "controlled"
    assert record["metadata"]["title"] == {"en": "Diabetes cohort 2024"}
    assert record["metadata"]["subject_count"] == 4
    assert {f["path"] for f in record["metadata"]["files"]} == {"visits.csv", "labs/lipids.csv"}
    human = cli.run("datasets", "show", root).stdout
    assert "Diabetes cohort 2024" in human and "controlled" in human

    # registering the same content again is refused, naming the existing record (exit 3)
    again = cli.run(
        "--key",
        "hospital",
        "datasets",
        "register",
        str(cohort_dir),
        "--title",
        "Copy",
        "--description",
        "Same files",
        "--classification",
        "0x0101",
        "--licence",
        "CC-BY-4.0",
        "--data-use",
        "HMB",
        expect=3,
    )
    assert "DatasetAlreadyRegistered" in again.stderr and "use the existing record" in again.stderr

    # -- 3. consent: holder-wide, dataset-scoped, and through a guardian the subject appointed
    _ok(cli.json("--key", "alice", "consent", "grant", "--holder", "hospital", "--purpose", "HMB"))
    _ok(cli.json("--key", "bob", "consent", "grant", "--dataset", root, "--purpose", "HMB,NCU"))
    _ok(cli.json("--key", "carol", "consent", "delegate", "guardian", "--expiry-days", "365"))
    _ok(
        cli.json(
            "--key", "guardian", "consent", "grant", "--subject", "carol", "--holder", "hospital", "--purpose", "GRU"
        )
    )
    # dan gave none: `consent check` exits 1
    assert cli.json("consent", "check", "bob", root, "--purpose", "HMB")["in_force"] is True
    assert cli.json("consent", "check", "carol", root, "--purpose", "HMB")["in_force"] is True
    assert cli.json("consent", "check", "dan", root, "--purpose", "HMB", expect=1)["in_force"] is False
    carol = cli.json("consent", "list", "carol")
    assert len(carol) == 1 and carol[0]["actor"] == parties["guardian"] and carol[0]["status"] == "given"

    # -- 4. the consent filter: who is covered for HMB now, registered as a derived dataset
    coverage = cli.json("coverage", "compute", root, "--subjects", str(subjects_file), "--purpose", "HMB")
    assert coverage["covered_count"] == 3 and coverage["excluded"] == [parties["dan"]]
    assert coverage["subjects_match_dataset"] is True
    filtered_dir = tmp_path / "filtered"
    write_cohort(filtered_dir, subjects[:3], salt="hmb filter")
    covered_file = tmp_path / "covered.txt"
    filtered = _ok(
        cli.json(
            "--key",
            "hospital",
            "coverage",
            "filter",
            root,
            str(filtered_dir),
            "--subjects",
            str(subjects_file),
            "--purpose",
            "HMB",
            "--title",
            "Diabetes cohort, HMB-consented subset",
            "--description",
            "Subjects whose consent covers health and medical research",
            "--licence",
            "CC-BY-4.0",
            "--data-use",
            "HMB",
            "--covered-out",
            str(covered_file),
        )
    )
    fil = filtered["content_root"]
    assert filtered["covered_count"] == 3
    assert covered_file.read_text().split() == subjects[:3]
    recheck = cli.json(
        "coverage", "recheck", fil, "--subjects", str(subjects_file), "--filter-subjects", str(covered_file)
    )
    assert recheck["ok"] is True and recheck["match"] is True

    # -- 5./6. access request on the filtered dataset, approved by the committee
    protocol = tmp_path / "protocol.md"
    protocol.write_text("Protocol: glycaemic control and lipid profile, de-identified analysis only.\n")
    requested = _ok(
        cli.json("--key", "researcher", "access", "request", fil, "--purpose", "HMB", "--protocol", str(protocol))
    )
    request_id = requested["request_id"]
    assert isinstance(request_id, int) and request_id >= 1
    assert requested["protocol_cid"].startswith("bafkrei")
    _ok(
        cli.json(
            "--key",
            "committee",
            "access",
            "approve",
            str(request_id),
            "--conditions",
            "no re-identification; results published",
            "--expiry-days",
            "90",
        )
    )
    shown_request = cli.json("access", "show", str(request_id))
    assert shown_request["status"] == "approved" and shown_request["approval_in_force"] is True

    # -- 7. a use, then 8. the derived aggregate, registered by the researcher
    result = tmp_path / "result.csv"
    result.write_text("age_band,mean_hba1c\n40-49,5.7\n")
    _ok(
        cli.json(
            "--key",
            "researcher",
            "use",
            "record",
            fil,
            "--purpose",
            "HMB",
            "--request",
            str(request_id),
            "--result",
            str(result),
        )
    )
    aggregate_dir = tmp_path / "aggregate"
    aggregate_dir.mkdir()
    (aggregate_dir / "hba1c_by_age.csv").write_text(result.read_text())
    aggregate = _ok(
        cli.json(
            "--key",
            "researcher",
            "datasets",
            "register",
            str(aggregate_dir),
            "--parent",
            fil,
            "--activity",
            "aggregation",
            "--software",
            "stats-kit/1.4",
            "--deidentification",
            "aggregation",
            "--title",
            "HbA1c by age band",
            "--description",
            "Aggregated, de-identified summary",
            "--classification",
            "clinical-research",
            "--tier",
            "open",
            "--licence",
            "CC-BY-4.0",
            "--data-use",
            "GRU",
        )
    )
    agg = aggregate["content_root"]
    assert cli.json("datasets", "stats", fil) == {"uses": 1, "distinct_users": 1, "derived_datasets": 1}

    # -- 9. alice withdraws; the approval still stands, so the researcher records another use
    withdrawn = _ok(cli.json("--key", "alice", "consent", "withdraw", "--holder", "hospital"))
    assert cli.json("consent", "check", "alice", root, "--purpose", "HMB", expect=1)["in_force"] is False
    _ok(cli.json("--key", "researcher", "use", "record", fil, "--purpose", "HMB", "--request", str(request_id)))

    # -- 10. what alice's withdrawal affects (the holder supplies its subject lists)
    impact = cli.json(
        "audit",
        "withdrawal-impact",
        "alice",
        "--subjects",
        f"{root}={subjects_file}",
        "--subjects",
        f"{fil}={covered_file}",
    )
    affected = {d["dataset"]: d for d in impact["datasets"]}
    assert set(affected) == {root, fil, agg}
    assert affected[root]["contains_subject"] and affected[fil]["contains_subject"]
    assert affected[agg]["derived_from"] == [fil]
    assert all(d["from_block"] == withdrawn["block"] for d in affected.values())
    assert [u["dataset"] for u in impact["uses"]] == [fil]  # only the use after the withdrawal
    assert (
        "affected datasets"
        in cli.run("audit", "withdrawal-impact", "alice", "--subjects", f"{fil}={covered_file}").stdout
    )

    # -- 11. the regulator verifies the aggregate's lineage (exit 0), also via the console script
    lineage = cli.json("verify", "lineage", agg)
    assert lineage["ok"] is True
    assert {n["content_root"] for n in lineage["nodes"]} == {agg, fil, root}
    spawned = cli.spawn("--json", "verify", "lineage", agg)
    assert spawned.returncode == 0, spawned.stderr
    assert json.loads(spawned.stdout)["ok"] is True
    assert "Traceback" not in spawned.stderr

    # the files: intact ones verify, a tampered copy does not (exit 1, naming the file)
    assert cli.json("verify", "dataset", root, "--files", str(cohort_dir))["files_checked"] == 2
    tampered = tmp_path / "tampered"
    write_cohort(tampered, subjects, salt="direct")
    with (tampered / "labs" / "lipids.csv").open("a") as f:
        f.write(f"{subjects[0]},ldl,9.99,mmol/L\n")
    bad = cli.json("verify", "dataset", root, "--files", str(tampered), expect=1)
    assert bad["ok"] is False
    assert [f["reason"] for f in bad["failures"]] == ["file-altered"]
    assert "labs/lipids.csv" in bad["failures"][0]["detail"]
    assert "file-altered" in cli.run("verify", "dataset", root, "--files", str(tampered), expect=1).stdout
    one_file = cli.json("verify", "file", str(cohort_dir / "visits.csv"), "--dataset", fil, "--dataset", root)
    assert one_file["ok"] is True and one_file["dataset"] == root and one_file["proof_verified_on_chain"] is True
    cli.json("verify", "file", str(tampered / "labs" / "lipids.csv"), "--dataset", root, expect=1)

    # -- 12. PROV-JSON of the lineage, to a file
    prov_file = tmp_path / "lineage.prov.json"
    cli.run("export", "prov", agg, "--output", str(prov_file))
    prov = json.loads(prov_file.read_text())
    entities = " ".join(prov["entity"])
    assert agg in entities and fil in entities and root in entities
    assert "wasDerivedFrom" in prov
    events = cli.json("export", "openlineage", agg)
    assert events and all(e["eventType"] == "COMPLETE" for e in events)

    # audit trails from the local event index
    trail = cli.json("audit", "dataset-trail", fil)
    names = [e["event"] for e in trail["items"]]
    assert {"DatasetRegistered", "AccessRequested", "AccessApproved", "UseRecorded"} <= set(names)
    user = cli.json("audit", "user-trail", "researcher")
    assert names.count("UseRecorded") == 2
    assert any(e["event"] == "AccessRequested" for e in user["items"])
    fhir = cli.json("consent", "fhir", "--subject", "bob", "--dataset", root)
    assert fhir["resourceType"] == "Consent" and fhir["status"] == "active"

    # -- 13. the regulator suspends the filtered dataset; 14. a later use is refused (exit 3)
    _ok(cli.json("--key", "regulator", "audit", "suspend-dataset", fil, "--reason", "consent records under review"))
    refused = cli.run(
        "--key", "researcher", "use", "record", fil, "--purpose", "HMB", "--request", str(request_id), expect=3
    )
    assert "DatasetNotUsable" in refused.stderr
    assert "Hint: the dataset is suspended or retracted" in refused.stderr
    assert "Traceback" not in refused.stderr + refused.stdout
    as_json = cli.json(
        "--key", "researcher", "use", "record", fil, "--purpose", "HMB", "--request", str(request_id), expect=3
    )
    assert as_json["exit_code"] == 3 and as_json["error"]["type"] == "use-refused"
    # the lineage no longer verifies: a suspended ancestor
    after = cli.json("verify", "lineage", agg, expect=1)
    assert after["flagged_ancestors"]["suspended"] == [fil]
    assert cli.json("datasets", "stats", fil)["uses"] == 2


def test_versions_sharing_embargo_and_decisions(
    cli: Cli, parties: dict[str, str], roles_granted: None, tmp_path: Path
) -> None:
    """The other holder, reviewer and auditor operations: versions and deprecation, sharing and
    embargo (only the holder decides until an auditor overrides), deny, revoke, user suspension,
    consent renewal and the end of a delegate's appointment."""
    subjects = [parties["bob"], parties["carol"]]
    v1_dir = tmp_path / "v1"
    write_cohort(v1_dir, subjects, salt="versions v1")
    common = ["--classification", "public-health-survey", "--licence", "CC-BY-4.0", "--data-use", "GRU"]
    v1 = _ok(
        cli.json(
            "--key",
            "hospital",
            "datasets",
            "register",
            str(v1_dir),
            "--title",
            "Survey 2023",
            "--description",
            "Synthetic survey answers",
            *common,
            "--embargo-days",
            "30",
        )
    )["content_root"]
    assert cli.json("datasets", "show", v1)["record"]["embargo_end"] > 0

    # under embargo the committee cannot approve; the regulator's override lets it
    protocol = tmp_path / "protocol.txt"
    protocol.write_text("survey protocol\n")
    first = cli.json("--key", "researcher", "access", "request", v1, "--purpose", "GRU", "--protocol", str(protocol))
    embargoed = cli.json(
        "--key", "committee", "access", "approve", str(first["request_id"]), "--conditions", "ok", expect=3
    )
    assert "DatasetEmbargoed" in embargoed["error"]["message"] and embargoed["error"]["hint"]
    _ok(cli.json("--key", "regulator", "access", "override-embargo", v1, "--reason", "outbreak response"))
    _ok(cli.json("--key", "committee", "access", "approve", str(first["request_id"]), "--conditions", "ok"))
    _ok(cli.json("--key", "committee", "access", "revoke", str(first["request_id"]), "--reason", "protocol breach"))
    assert cli.json("access", "show", str(first["request_id"]))["status"] == "revoked"
    second = cli.json("--key", "researcher", "access", "request", v1, "--purpose", "GRU", "--protocol", str(protocol))
    _ok(cli.json("--key", "committee", "access", "deny", str(second["request_id"]), "--reason", "duplicate"))
    assert cli.json("access", "show", str(second["request_id"]))["status"] == "denied"

    # a suspended user files no request until reinstated
    _ok(cli.json("--key", "regulator", "audit", "suspend-user", "researcher", "--reason", "audit"))
    assert cli.json("roles", "show", "researcher")["suspended"] is True
    blocked = cli.run(
        "--key", "researcher", "access", "request", v1, "--purpose", "GRU", "--protocol", str(protocol), expect=3
    )
    assert "UserSuspended" in blocked.stderr
    _ok(cli.json("--key", "regulator", "audit", "reinstate-user", "researcher"))

    # a new version, the old one deprecated in its favour; sharing changed; the old one retracted
    v2_dir = tmp_path / "v2"
    write_cohort(v2_dir, subjects, salt="versions v2")
    v2 = _ok(
        cli.json(
            "--key",
            "hospital",
            "datasets",
            "register",
            str(v2_dir),
            "--parent",
            v1,
            "--activity",
            "revision",
            "--title",
            "Survey 2023, corrected",
            "--description",
            "Corrected answers",
            *common,
        )
    )["content_root"]
    _ok(cli.json("--key", "hospital", "datasets", "deprecate", v1, "--successor", v2))
    assert cli.json("datasets", "version", v1) == {
        "dataset": v1,
        "status": "deprecated",
        "successors": [v2],
        "predecessors": [],
        "latest": v2,
    }
    assert cli.json("datasets", "version", v2)["predecessors"] == [v1]
    _ok(cli.json("--key", "hospital", "datasets", "sharing", v2, "--tier", "registered"))
    assert cli.json("datasets", "show", v2)["record"]["tier"] == "registered"
    lineage = cli.json("verify", "lineage", v2)
    assert lineage["ok"] is True and lineage["flagged_ancestors"]["deprecated"] == [v1]
    # only the holder changes its datasets
    assert "NotDatasetHolder" in cli.run("--key", "researcher", "datasets", "retract", v2, expect=3).stderr
    _ok(cli.json("--key", "hospital", "datasets", "retract", v1, "--reason", "superseded and withdrawn"))
    assert cli.json("verify", "dataset", v1, expect=1)["failures"][0]["reason"] == "retracted"

    # consent renewal; a delegate whose appointment ended can no longer act
    _ok(cli.json("--key", "bob", "consent", "grant", "--dataset", v2, "--purpose", "GRU", "--expiry-days", "10"))
    renewed = _ok(cli.json("--key", "bob", "consent", "renew", "--dataset", v2, "--expiry-days", "400"))
    assert renewed["message"]["expiry"] > renewed["block"]
    _ok(cli.json("--key", "carol", "consent", "delegate", "guardian", "--expiry-days", "30"))
    _ok(cli.json("--key", "carol", "consent", "revoke-delegate", "guardian"))
    late = cli.json(
        "--key", "guardian", "consent", "grant", "--subject", "carol", "--dataset", v2, "--purpose", "GRU", expect=3
    )
    assert late["error"]["type"] in ("access-denied", "invalid-signature")
