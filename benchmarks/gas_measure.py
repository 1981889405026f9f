"""Measuring an operation: sent directly by its party, relayed in batches, and where a direct
transaction's gas goes (anvil's opcode trace)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from brownie import web3
from gas_chain import Ledger, Receipt, log, relay_signed, transact
from gas_operations import Operation
from hexbytes import HexBytes
from web3.types import RPCEndpoint

# ---------------------------------------------------------------------------------------------- measuring


def calldata_gas(data: bytes) -> tuple[int, int]:
    """(EIP-2028 calldata gas, EIP-7623 floor tokens)."""
    zeros = data.count(0)
    nonzero = len(data) - zeros
    return 4 * zeros + 16 * nonzero, zeros + 4 * nonzero


def breakdown(tx: Any) -> dict[str, int]:
    """Where a direct transaction's gas went, from anvil's opcode trace: intrinsic (base and
    calldata), then execution by kind at the top call frame. Calls to other contracts count the
    whole call (cold account access, the callee's execution and its storage reads)."""
    data = bytes(HexBytes(web3.eth.get_transaction(tx.txid)["input"]))
    cd, _ = calldata_gas(data)
    trace = web3.provider.make_request(
        RPCEndpoint("debug_traceTransaction"),
        [tx.txid, {"disableStack": True, "disableMemory": True, "disableStorage": True}],
    )["result"]["structLogs"]
    top = min(step["depth"] for step in trace)
    parts = {"base": 21_000, "calldata": cd, "SSTORE": 0, "SLOAD": 0, "calls": 0, "LOG": 0, "KECCAK256": 0, "other": 0}
    for i, step in enumerate(trace):
        if step["depth"] != top:
            continue
        op = step["op"]
        if op in ("CALL", "STATICCALL", "DELEGATECALL", "CALLCODE"):
            after = next((s for s in trace[i + 1 :] if s["depth"] == top), None)
            parts["calls"] += step["gas"] - after["gas"] if after else step["gasCost"]
        elif op == "SSTORE":
            parts["SSTORE"] += step["gasCost"]
        elif op == "SLOAD":
            parts["SLOAD"] += step["gasCost"]
        elif op.startswith("LOG"):
            parts["LOG"] += step["gasCost"]
        elif op in ("KECCAK256", "SHA3"):
            parts["KECCAK256"] += step["gasCost"]
        else:
            parts["other"] += step["gasCost"]
    parts["refund"] = sum(parts.values()) - int(tx.gas_used)
    parts["gasUsed"] = int(tx.gas_used)
    return parts


@dataclass
class Result:
    op: Operation
    direct: int
    relayed: dict[int, float]
    parts: dict[str, int]


def direct(ledger: Ledger, op: Operation) -> Receipt:
    """One request of `op`, sent by its party (signed messages: submitted by the relayer)."""
    (item,) = op.prepare(ledger, 1)
    if op.signed:
        tx = transact(
            getattr(ledger.consent, item.fn_name), *item.args(), params={"from": ledger.relayer, "gas_limit": 3_000_000}
        )
    else:
        tx = transact(
            getattr(item.contract, item.fn), *item.args, params={"from": ledger.local(item.key), "gas_limit": 3_000_000}
        )
    if tx.status != 1:
        raise RuntimeError(f"{op.name}: direct call failed ({tx.txid})")
    return tx


def trace_direct(ledger: Ledger, op: Operation) -> dict[str, int]:
    return breakdown(direct(ledger, op))


def measure(ledger: Ledger, op: Operation, sizes: tuple[int, ...], parts: dict[str, int]) -> Result:
    result = Result(op, direct(ledger, op).gas_used, {}, parts)
    for n in sizes:
        items = op.prepare(ledger, n)
        tx = relay_signed(ledger, items, chunk=n) if op.signed else ledger.relay.execute(items)
        result.relayed[n] = tx.gas_used / n
    log(
        f"{op.name}: direct {result.direct:,}; relayed "
        + ", ".join(f"x{n} {g:,.0f}" for n, g in result.relayed.items())
    )
    return result
