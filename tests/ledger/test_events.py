"""Event decoding and log fetching (ledger.history.events, ledger.history.logs) against a real anvil.

The module starts its own anvil (the scenario below changes chain state other tests do not expect)
and runs one realistic sequence of writes through ``Ledger`` that emits every event the ledger's
contracts define except the constructor-only ones. ``test_indexer`` reuses the helpers.
"""

from __future__ import annotations

import itertools
import json
import os
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from ledger.chain.client import ChainClient
from ledger.chain.deployment import ensure_deployed
from ledger.core.classification import Tier
from ledger.core.config import PROJECT_ROOT, Settings, load_settings
from ledger.core.records import ConsentScope
from ledger.history.events import (
    SEQ_SHIFT,
    EventDecoder,
    LedgerEvent,
    event_seq,
    seq_block,
)
from ledger.history.logs import LogSource, RangeTooLarge, _RpcError
from ledger.rules import datause
from ledger.services.ledger import Ledger

DAY = 86_400

# ---------------------------------------------------------------------------------------------
# shared helpers (also imported by test_indexer)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Chain:
    """A private anvil with the contracts deployed, and a Ledger over it."""

    proc: subprocess.Popen[bytes]
    settings: Settings
    client: ChainClient
    ledger: Ledger
    admin: LocalAccount

    @property
    def w3(self) -> Web3:
        return self.client.w3

    def head(self) -> int:
        return int(self.w3.eth.block_number)

    def mine(self, blocks: int = 1) -> None:
        for _ in range(blocks):
            self.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]

    def rpc(self, method: str, params: list[Any]) -> Any:
        return self.w3.provider.make_request(method, params)["result"]  # type: ignore[arg-type]


def start_chain(data_dir: Path) -> Chain:
    port = free_port()
    anvil = PROJECT_ROOT / "node_modules" / ".bin" / "anvil"
    proc = subprocess.Popen([str(anvil), "--port", str(port), "--silent"], stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}).encode()
            req = urllib.request.Request(url, body, {"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=1) as resp:
                if json.loads(resp.read()).get("result"):
                    break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("anvil did not start") from None
            time.sleep(0.1)
    settings = load_settings(env={}, rpc_url=url, data_dir=str(data_dir), manage_nodes=False, anvil_port=port)
    ensure_deployed(settings)
    client = ChainClient(settings)
    return Chain(proc, settings, client, Ledger(settings, client), Account.from_key(settings.relayer_private_key()))


def stop_chain(chain: Chain) -> None:
    chain.proc.terminate()
    try:
        chain.proc.wait(10)
    except subprocess.TimeoutExpired:
        chain.proc.kill()


def rand32() -> bytes:
    return os.urandom(32)


def hx(b: bytes) -> str:
    return "0x" + b.hex()


@dataclass
class Scenario:
    """Who did what, for the assertions."""

    actors: dict[str, LocalAccount] = field(default_factory=dict)
    roots: dict[str, bytes] = field(default_factory=dict)
    requests: dict[str, int] = field(default_factory=dict)
    blocks: dict[str, int] = field(default_factory=dict)
    consents: dict[str, str] = field(default_factory=dict)
    expiries: dict[str, int] = field(default_factory=dict)
    result_digests: list[bytes] = field(default_factory=list)
    failed_forward: tuple[str, int] = ("", 0)
    ok_forward: tuple[str, int] = ("", 0)
    start_block: int = 0
    end_block: int = 0

    def root(self, name: str) -> str:
        return hx(self.roots[name])


def run_scenario(chain: Chain) -> Scenario:
    """Roles, datasets with lineage, consents with a delegate, access requests and decisions, uses,
    suspensions, an embargo override, deprecation and retraction, a failed relayed call and a
    failed signed consent call."""
    ledger, admin = chain.ledger, chain.admin
    sc = Scenario(start_block=chain.head() + 1)
    names = ("holder", "holder2", "reviewer", "user1", "user2", "auditor", "subject1", "subject2", "guardian", "temp")
    sc.actors = {n: Account.create() for n in names}
    a = sc.actors
    for who, role in (
        ("holder", "holder"),
        ("holder2", "holder"),
        ("reviewer", "reviewer"),
        ("user1", "user"),
        ("user2", "user"),
        ("auditor", "auditor"),
        ("temp", "user"),
    ):
        ledger.grant_role(admin, role, a[who].address)
    sc.blocks["temp_revoked"] = ledger.revoke_role(admin, "user", a["temp"].address).block

    def register(name: str, who: str, parents: list[str], tier: int, embargo: int = 0) -> None:
        root = rand32()
        sc.roots[name] = root
        ps = sorted(sc.roots[p] for p in parents)
        info = ledger.write(
            a[who], "DatasetRegistry", "register", root, rand32(), ps, rand32(), tier, 0x0101, embargo, rand32()
        )
        sc.blocks[f"register_{name}"] = info.block

    now = ledger.now()
    register("A", "holder", [], 2)
    register("B", "holder2", [], 0)
    register("C", "holder", ["A", "B"], 2)
    register("D", "user1", ["C"], 0)
    register("E", "holder", ["A"], 2)
    register("F", "holder", [], 2, embargo=now + 10 * DAY)
    ledger.set_sharing(a["holder2"], sc.roots["B"], Tier.REGISTERED, 0)

    # consent: holder-wide, dataset-scoped to one grantee, disease-specific renewed by a guardian
    exp = now + 30 * DAY
    exp2 = now + 60 * DAY
    sc.expiries = {"exp": exp, "exp2": exp2}
    holder_scope = ConsentScope.holder(a["holder"].address)
    s1, s2 = a["subject1"], a["subject2"]
    ledger.grant_consent(s1, holder_scope, datause.HMB, exp)
    ledger.grant_consent(s1, ConsentScope.dataset(sc.roots["A"]), datause.GRU, exp, grantee=a["user1"].address)
    ledger.grant_consent(s2, holder_scope, datause.DS, exp, disease=5148)
    ledger.appoint_delegate(s2, a["guardian"].address, exp)
    sc.blocks["renew"] = ledger.renew_consent(a["guardian"], holder_scope, exp2, subject=s2.address).block
    sc.blocks["withdraw"] = ledger.withdraw_consent(s1, holder_scope).block
    ledger.revoke_delegate(s2, a["guardian"].address)
    sc.consents = {
        "s1_holder": hx(ledger.consent_id(s1.address, holder_scope)),
        "s1_dataset_A": hx(ledger.consent_id(s1.address, ConsentScope.dataset(sc.roots["A"]), a["user1"].address)),
        "s2_holder": hx(ledger.consent_id(s2.address, holder_scope)),
    }

    # access and use
    hmb = datause.Purpose.of("HMB")
    r1 = ledger.request_access(a["user1"], sc.roots["A"], hmb, rand32()).result
    sc.blocks["approve_r1"] = ledger.approve_access(a["reviewer"], r1, rand32(), exp).block
    for _ in range(2):
        digest = rand32()
        sc.result_digests.append(digest)
        sc.blocks.setdefault(
            "first_use_A", ledger.record_use(a["user1"], sc.roots["A"], hmb, request_id=r1, result_digest=digest).block
        )
    r2 = ledger.request_access(a["user2"], sc.roots["C"], hmb, rand32()).result
    ledger.deny_access(a["reviewer"], r2, rand32())
    r3 = ledger.request_access(a["user2"], sc.roots["C"], hmb, rand32()).result
    ledger.approve_access(a["reviewer"], r3, rand32(), exp)
    ledger.revoke_access(a["reviewer"], r3, rand32())
    ledger.record_use(a["user1"], sc.roots["B"], hmb)
    r4 = ledger.request_access(a["user1"], sc.roots["F"], hmb, rand32()).result
    ledger.override_embargo(a["auditor"], sc.roots["F"], rand32())
    ledger.approve_access(a["reviewer"], r4, rand32(), exp)
    sc.requests = {"r1": r1, "r2": r2, "r3": r3, "r4": r4}

    # circuit breakers, lifecycle
    ledger.suspend_dataset(a["auditor"], sc.roots["C"], rand32())
    ledger.reinstate_dataset(a["auditor"], sc.roots["C"])
    ledger.suspend_user(a["auditor"], a["user2"].address, rand32())
    ledger.reinstate_user(a["auditor"], a["user2"].address)
    sc.blocks["deprecate_A"] = ledger.deprecate(a["holder"], sc.roots["A"], sc.roots["E"]).block
    ledger.retract(a["holder"], sc.roots["F"], rand32())

    # a relayed call that reverts inside the batch: ExecutedForwardRequest(success=false)
    relayer = ledger.relayer
    nonce = relayer.chain_nonce(a["auditor"].address)
    req1 = relayer.sign_request(a["auditor"], "DatasetRegistry", "suspend", sc.roots["D"], rand32(), nonce=nonce)
    req2 = relayer.sign_request(a["auditor"], "DatasetRegistry", "suspend", sc.roots["D"], rand32(), nonce=nonce + 1)
    outcomes = relayer.submit([req1, req2])
    assert outcomes[0].ok and not outcomes[1].ok
    sc.ok_forward = (a["auditor"].address, nonce)
    sc.failed_forward = (a["auditor"].address, nonce + 1)
    sc.blocks["failed_forward"] = outcomes[1].block

    # a signed consent call that fails inside relayBatch: SignedCallFailed
    msg = ledger.consent_message("Withdraw", subject=s1.address, scope=holder_scope)
    signed = relayer.sign_consent(s1, "Withdraw", msg)
    assert not relayer.submit_consents([signed])[0].ok
    sc.end_block = chain.head()
    return sc


#: every event the scenario emits (EIP712DomainChanged and RoleAdminChanged are never emitted)
SCENARIO_EVENTS = {
    "RoleGranted",
    "RoleRevoked",
    "DatasetRegistered",
    "DerivedFrom",
    "SharingChanged",
    "DatasetDeprecated",
    "DatasetRetracted",
    "DatasetSuspended",
    "DatasetReinstated",
    "ConsentGiven",
    "ConsentRenewed",
    "ConsentWithdrawn",
    "DelegateAppointed",
    "DelegateRevoked",
    "SignedCallFailed",
    "AccessRequested",
    "AccessApproved",
    "AccessDenied",
    "AccessRevoked",
    "EmbargoOverridden",
    "UserSuspendedBy",
    "UserReinstated",
    "UseRecorded",
    "ExecutedForwardRequest",
}


def raw_logs(chain: Chain, from_block: int, to_block: int) -> list[dict[str, Any]]:
    assert chain.client.record is not None
    addresses = [x.lower() for x in chain.client.record.addresses.values()]
    return list(
        chain.rpc("eth_getLogs", [{"fromBlock": hex(from_block), "toBlock": hex(to_block), "address": addresses}])
    )


def plain(value: Any) -> Any:
    """web3 decoded value -> the JSON form LedgerEvent uses."""
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


# ---------------------------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    c = start_chain(tmp_path_factory.mktemp("events-chain"))
    try:
        yield c
    finally:
        stop_chain(c)


@pytest.fixture(scope="module")
def scenario(chain: Chain) -> Scenario:
    return run_scenario(chain)


@pytest.fixture(scope="module")
def decoder(chain: Chain) -> EventDecoder:
    return EventDecoder.for_client(chain.client)


# ---------------------------------------------------------------------------------------------
# tests


def test_topic_table_has_every_abi_event(chain: Chain, decoder: EventDecoder) -> None:
    from eth_utils.abi import event_abi_to_log_topic

    expected = set()
    for name in chain.client.record.addresses:  # type: ignore[union-attr]
        for item in chain.client.artifacts[name].abi:
            if item["type"] == "event":
                expected.add((name, item["name"], "0x" + event_abi_to_log_topic(item).hex()))  # type: ignore[arg-type]
    assert {(s.contract, s.name, s.topic0) for s in decoder.specs()} == expected
    # the fast path (no eth_abi) applies to every ledger event
    assert all(s.plan is not None for s in decoder.specs())


def test_decode_matches_web3_for_every_log(chain: Chain, scenario: Scenario, decoder: EventDecoder) -> None:
    record = chain.client.record
    assert record is not None
    raw = raw_logs(chain, record.deploy_block, scenario.end_block)
    formatted = chain.w3.eth.get_logs(
        {
            "fromBlock": record.deploy_block,
            "toBlock": scenario.end_block,
            "address": [Web3.to_checksum_address(x) for x in record.addresses.values()],
        }
    )
    assert len(raw) == len(formatted) > 60
    seen = set()
    for r, f in zip(raw, formatted, strict=True):
        ev = decoder.decode(r)
        assert ev is not None
        # the web3-formatted log (HexBytes, ints) decodes to the same record
        assert decoder.decode(f) == ev
        contract = chain.client.contract(ev.contract)
        expected = getattr(contract.events, ev.event)().process_log(f)
        assert ev.args == {k: plain(v) for k, v in expected["args"].items()}
        assert ev.block_number == f["blockNumber"] and ev.log_index == f["logIndex"]
        assert ev.tx_hash == "0x" + bytes(f["transactionHash"]).hex()
        assert ev.address == contract.address
        assert ev.block_timestamp == chain.w3.eth.get_block(ev.block_number)["timestamp"]
        seen.add(ev.event)
    assert seen == SCENARIO_EVENTS


def test_event_values_are_json_ready(chain: Chain, scenario: Scenario, decoder: EventDecoder) -> None:
    events = [decoder.decode(r) for r in raw_logs(chain, scenario.start_block, scenario.end_block)]
    for ev in events:
        assert ev is not None
        text = json.dumps(ev.to_json())
        back = LedgerEvent.from_json(json.loads(text))
        assert back == ev
        assert ev.seq == event_seq(ev.block_number, ev.log_index) and seq_block(ev.seq) == ev.block_number
    reg = next(e for e in events if e is not None and e.event == "DatasetRegistered" and e.args["parents"])
    assert reg.args["holder"] == scenario.actors["holder"].address  # checksummed
    assert reg.args["contentRoot"] == scenario.root("C")  # lower-case hex
    assert reg.args["parents"] == sorted([scenario.root("A"), scenario.root("B")])
    assert isinstance(reg.args["tier"], int) and reg.args["classification"] == 0x0101
    failed = next(e for e in events if e is not None and e.event == "SignedCallFailed")
    assert failed.args["index"] == 0 and failed.args["reason"].startswith("0x") and len(failed.args["reason"]) > 10
    fwd = [e for e in events if e is not None and e.event == "ExecutedForwardRequest"]
    assert any(e.args["success"] is False for e in fwd) and all(isinstance(e.args["success"], bool) for e in fwd)


def test_decode_receipt(chain: Chain, scenario: Scenario, decoder: EventDecoder) -> None:
    info = chain.ledger.grant_role(chain.admin, "reviewer", Account.create().address)
    events = decoder.decode_receipt(chain.ledger.receipt(info.tx_hash))
    assert [e.event for e in events] == ["RoleGranted", "ExecutedForwardRequest"]
    assert events[0].block_timestamp == chain.w3.eth.get_block(info.block)["timestamp"]


def test_unknown_and_malformed_logs_are_skipped(chain: Chain, scenario: Scenario) -> None:
    dec = EventDecoder.for_client(chain.client)
    raw = raw_logs(chain, scenario.start_block, scenario.end_block)
    use = next(r for r in raw if len(r["topics"]) == 4 and r["data"] and len(r["data"]) > 200)
    assert dec.decode({**use, "address": "0x" + "11" * 20}) is None
    assert dec.decode({**use, "topics": ["0x" + "22" * 32, *use["topics"][1:]]}) is None
    assert dec.unknown == 2
    assert dec.decode({**use, "data": "0x1234"}) is None
    assert dec.decode({**use, "topics": use["topics"][:2]}) is None
    assert dec.errors == 2
    assert dec.decode({**use, "removed": True}) is None
    assert dec.decode(use) is not None


def test_log_source_chunks_and_confirmations(chain: Chain, scenario: Scenario) -> None:
    record = chain.client.record
    assert record is not None
    head = chain.head()
    full = LogSource(chain.client)
    assert full.start_block == record.deploy_block and full.safe_head() == head
    everything = list(full.events())
    assert len(everything) == len(raw_logs(chain, record.deploy_block, head))
    # small chunks give the same events, in order, and cover the range without gaps
    small = LogSource(chain.client, chunk_blocks=3)
    chunks = list(small.chunks())
    assert [e for c in chunks for e in c.events] == everything
    assert chunks[0].from_block == record.deploy_block and chunks[-1].to_block == head
    assert all(b.from_block == a.to_block + 1 for a, b in itertools.pairwise(chunks))
    assert all(c.to_block in c.block_hashes for c in chunks)
    # confirmations: the newest blocks are not read
    settings2 = replace(chain.settings, confirmations=2)
    client2 = ChainClient(settings2, record=record, artifacts=chain.client.artifacts, check_record=False)
    confirmed = LogSource(client2)
    assert confirmed.confirmations == 2 and confirmed.safe_head() == head - 2
    got = list(confirmed.events())
    assert got == [e for e in everything if e.block_number <= head - 2]
    assert LogSource(chain.client, confirmations=5).safe_head(head) == head - 5


class _Limited(LogSource):
    """A node that refuses eth_getLogs over more than ``limit`` blocks, and omits blockTimestamp."""

    limit = 4

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls: list[tuple[str, Any]] = []

    def _rpc(self, method: str, params: list[Any], *, soft: bool = False) -> Any:
        self.calls.append((method, params))
        if method == "eth_getLogs":
            span = int(params[0]["toBlock"], 16) - int(params[0]["fromBlock"], 16) + 1
            if span > self.limit:
                raise _RpcError(method, {"code": -32005, "message": "query returned more than 10000 results"})
            logs = super()._rpc(method, params, soft=soft)
            return [{k: v for k, v in entry.items() if k != "blockTimestamp"} for entry in logs]
        return super()._rpc(method, params, soft=soft)


def test_adaptive_range_and_header_timestamps(chain: Chain, scenario: Scenario) -> None:
    expected = list(LogSource(chain.client).events(scenario.start_block, scenario.end_block))
    src = _Limited(chain.client, chunk_blocks=32)
    got = list(src.events(scenario.start_block, scenario.end_block))
    assert got == expected  # timestamps came from block headers instead of the logs
    spans = [int(p[0]["toBlock"], 16) - int(p[0]["fromBlock"], 16) + 1 for m, p in src.calls if m == "eth_getLogs"]
    assert spans[:4] == [32, 16, 8, 4]  # halved until the node accepts the range, then grown back
    assert max(spans[4:]) <= 2 * _Limited.limit
    assert sum(1 for n in spans if n > _Limited.limit) <= 4  # refusals: the halving, then one retry
    # a node that refuses even a single block is an error, not a silent gap
    _Limited.limit = 0
    try:
        with pytest.raises(RangeTooLarge):
            list(_Limited(chain.client).chunks(scenario.start_block, scenario.start_block + 3))
    finally:
        _Limited.limit = 4


def test_headers_are_batched_and_cached(chain: Chain, scenario: Scenario) -> None:
    src = _Limited(chain.client)
    numbers = list(range(scenario.start_block, scenario.start_block + 20))
    headers = src.headers(numbers)
    assert sorted(headers) == numbers
    for n in (numbers[0], numbers[-1]):
        block = chain.w3.eth.get_block(n)
        assert headers[n].hash == "0x" + bytes(block["hash"]).hex()
        assert headers[n].timestamp == block["timestamp"]
        assert headers[n].parent_hash == "0x" + bytes(block["parentHash"]).hex()
    assert src.calls == []  # one batch request, not 20 single calls through _rpc
    assert src.headers(numbers) == headers
    assert src.headers([chain.head() + 1000]) == {}


def test_seq_orders_like_the_chain() -> None:
    assert event_seq(5, 0) > event_seq(4, (1 << SEQ_SHIFT) - 1)
    assert seq_block(event_seq(123_456_789, 77)) == 123_456_789
