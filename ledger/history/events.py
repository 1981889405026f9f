"""The ledger's events, decoded from the chain's logs into plain, JSON-able records.

``EventDecoder`` turns a raw log (a JSON-RPC ``eth_getLogs`` entry or a web3 receipt log) into a
``LedgerEvent``: contract and event name, block number and timestamp, transaction hash, log index
and the arguments, with bytes as ``0x`` hex (lower case) and addresses checksummed. Decoding is a
dictionary lookup by (contract address, topic0) built once from the ABIs; static arguments are cut
straight out of the hex words, so no per-log ABI matching and no eth_abi call for the common case.

``ledger.history.logs.LogSource`` fetches the logs in block ranges and decodes them with this.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from eth_abi.abi import decode as abi_decode
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from ledger.chain.client import abi_type
from ledger.core.errors import DeploymentMismatch

if TYPE_CHECKING:
    from ledger.chain.client import Artifact, ChainClient

log = logging.getLogger(__name__)

#: an event's position in the chain as one integer: ``block << SEQ_SHIFT | log_index``. It orders
#: events like the chain does, is the primary key of the index and the cursor of paginated reads.
SEQ_SHIFT = 20
_LOG_INDEX_MASK = (1 << SEQ_SHIFT) - 1


def event_seq(block_number: int, log_index: int) -> int:
    """The sequence number of the log at (block, log index)."""
    return (block_number << SEQ_SHIFT) | (log_index & _LOG_INDEX_MASK)


def seq_block(seq: int) -> int:
    """The block number a sequence number belongs to."""
    return seq >> SEQ_SHIFT


def block_seq_start(block_number: int) -> int:
    """The smallest sequence number of a block (``seq >= block_seq_start(b)`` means block >= b)."""
    return block_number << SEQ_SHIFT


# ---------------------------------------------------------------------------------------------
# the event record


@dataclass(frozen=True, slots=True)
class LedgerEvent:
    """One decoded log of a ledger contract."""

    contract: str
    event: str
    block_number: int
    block_timestamp: int
    tx_hash: str
    log_index: int
    args: dict[str, Any]
    tx_index: int = 0
    address: str = ""
    block_hash: str | None = None

    @property
    def seq(self) -> int:
        return event_seq(self.block_number, self.log_index)

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "contract": self.contract,
            "event": self.event,
            "block_number": self.block_number,
            "block_timestamp": self.block_timestamp,
            "tx_hash": self.tx_hash,
            "tx_index": self.tx_index,
            "log_index": self.log_index,
            "address": self.address,
            "block_hash": self.block_hash,
            "args": dict(self.args),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LedgerEvent:
        return cls(
            contract=str(data["contract"]),
            event=str(data["event"]),
            block_number=int(data["block_number"]),
            block_timestamp=int(data["block_timestamp"]),
            tx_hash=str(data["tx_hash"]),
            log_index=int(data["log_index"]),
            args=dict(data["args"]),
            tx_index=int(data.get("tx_index", 0)),
            address=str(data.get("address", "")),
            block_hash=data.get("block_hash"),
        )


@dataclass(frozen=True, slots=True)
class BlockHeader:
    number: int
    hash: str
    parent_hash: str
    timestamp: int


# ---------------------------------------------------------------------------------------------
# decoding


@lru_cache(maxsize=1 << 16)
def checksum(address: str) -> str:
    """Checksummed form of a 0x address (cached: the same few thousand accounts recur)."""
    return str(to_checksum_address(address))


def _hex(value: Any) -> str:
    """0x lower-case hex of a hex string, bytes or HexBytes."""
    if isinstance(value, str):
        return value.lower() if value.startswith("0x") else "0x" + value.lower()
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    raise TypeError(f"not hex: {value!r}")


def _int(value: Any) -> int:
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        return int(value, 16) if value.startswith(("0x", "0X")) else int(value)
    raise TypeError(f"not an integer: {value!r}")


_Word = Callable[[str], Any]
_INT_TYPE = re.compile(r"^(u?)int(\d*)$")
_BYTES_N = re.compile(r"^bytes(\d+)$")


def _word_converter(abi_type: str) -> _Word | None:
    """Converter of one 64-hex-digit ABI word for a static elementary type, or None."""
    if abi_type == "address":
        return lambda w: checksum("0x" + w[24:])
    if abi_type == "bool":
        return lambda w: int(w, 16) != 0
    m = _INT_TYPE.match(abi_type)
    if m:
        if m.group(1):
            return lambda w: int(w, 16)

        def signed(w: str) -> int:
            v = int(w, 16)
            return v - (1 << 256) if v >= 1 << 255 else v

        return signed
    m = _BYTES_N.match(abi_type)
    if m:
        n = int(m.group(1)) * 2
        return lambda w: "0x" + w[:n]
    return None


def _plain(value: Any, abi_type: str) -> Any:
    """eth_abi output -> JSON-able value (fallback path)."""
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, list | tuple):
        inner = abi_type[: abi_type.rfind("[")] if abi_type.endswith("]") else ""
        return [_plain(v, inner) for v in value]
    if abi_type == "address" and isinstance(value, str):
        return checksum(value)
    return value


@dataclass(frozen=True)
class EventSpec:
    """How to decode one event of one contract."""

    contract: str
    name: str
    signature: str
    topic0: str
    indexed: tuple[tuple[str, str], ...]
    data: tuple[tuple[str, str], ...]
    #: per data field: ("s", converter) static word, ("a", converter) dynamic array of static
    #: words, ("b", None) bytes, ("t", None) string; None when eth_abi must decode the data
    plan: tuple[tuple[str, _Word | None], ...] | None = field(repr=False)
    topic_converters: tuple[_Word | None, ...] = field(repr=False)

    @classmethod
    def from_abi(cls, contract: str, item: Mapping[str, Any]) -> EventSpec:
        inputs = item["inputs"]
        types = [abi_type(i) for i in inputs]
        signature = f"{item['name']}({','.join(types)})"
        topic0 = "0x" + keccak(text=signature).hex()
        indexed = tuple(
            (i["name"] or f"arg{n}", t) for n, (i, t) in enumerate(zip(inputs, types, strict=True)) if i["indexed"]
        )
        data = tuple(
            (i["name"] or f"arg{n}", t) for n, (i, t) in enumerate(zip(inputs, types, strict=True)) if not i["indexed"]
        )
        steps: list[tuple[str, _Word | None]] = []
        for _, t in data:
            conv = _word_converter(t)
            if conv is not None:
                steps.append(("s", conv))
            elif t.endswith("[]") and _word_converter(t[:-2]) is not None:
                steps.append(("a", _word_converter(t[:-2])))
            elif t in ("bytes", "string"):
                steps.append(("b" if t == "bytes" else "t", None))
            else:  # tuples, fixed or nested arrays: eth_abi decodes the whole data
                break
        plan = tuple(steps) if len(steps) == len(data) else None
        # an indexed dynamic value is only its keccak hash in the topic: keep the hash as hex
        topic_converters = tuple(_word_converter(t) for _, t in indexed)
        return cls(contract, item["name"], signature, topic0, indexed, data, plan, topic_converters)

    def decode_args(self, topics: Sequence[str], data: str) -> dict[str, Any]:
        """Arguments from topics[1:] and data (both lower-case 0x hex)."""
        if len(topics) != len(self.indexed) + 1:
            raise ValueError(f"{self.name}: expected {len(self.indexed) + 1} topics, got {len(topics)}")
        args: dict[str, Any] = {}
        for (name, _), conv, topic in zip(self.indexed, self.topic_converters, topics[1:], strict=True):
            word = topic[2:]
            args[name] = conv(word) if conv is not None else "0x" + word
        if not self.data:
            return args
        body = data[2:] if data.startswith("0x") else data
        if self.plan is None:
            values = abi_decode([t for _, t in self.data], bytes.fromhex(body))
            for (name, t), v in zip(self.data, values, strict=True):
                args[name] = _plain(v, t)
            return args
        if len(body) < 64 * len(self.data):
            raise ValueError(f"{self.name}: data too short")
        for n, ((name, _), (kind, conv)) in enumerate(zip(self.data, self.plan, strict=True)):
            head = body[64 * n : 64 * n + 64]
            if kind == "s":
                args[name] = conv(head)  # type: ignore[misc]
                continue
            off = int(head, 16) * 2
            length = int(body[off : off + 64], 16)
            start = off + 64
            if kind == "a":
                end = start + 64 * length
                if end > len(body):
                    raise ValueError(f"{self.name}.{name}: array runs past the data")
                args[name] = [conv(body[i : i + 64]) for i in range(start, end, 64)]  # type: ignore[misc]
            else:
                end = start + 2 * length
                if end > len(body):
                    raise ValueError(f"{self.name}.{name}: bytes run past the data")
                chunk = body[start:end]
                args[name] = "0x" + chunk if kind == "b" else bytes.fromhex(chunk).decode("utf-8", "replace")
        return args


class EventDecoder:
    """Decodes the logs of the ledger's contracts by (address, topic0) lookup."""

    def __init__(self, artifacts: Mapping[str, Artifact], addresses: Mapping[str, str]) -> None:
        #: contract name by lower-case address
        self.contracts: dict[str, str] = {}
        #: event specs by lower-case address, then topic0
        self._specs: dict[str, dict[str, EventSpec]] = {}
        #: checksummed address by contract name
        self.addresses: dict[str, str] = {}
        for name, address in addresses.items():
            if name not in artifacts:
                continue
            addr = address.lower()
            self.contracts[addr] = name
            self.addresses[name] = checksum(address)
            table: dict[str, EventSpec] = {}
            for item in artifacts[name].abi:
                if item.get("type") == "event" and not item.get("anonymous"):
                    spec = EventSpec.from_abi(name, item)
                    table[spec.topic0] = spec
            self._specs[addr] = table
        self.unknown = 0
        self.errors = 0

    @classmethod
    def for_client(cls, client: ChainClient) -> EventDecoder:
        if client.record is None:
            raise DeploymentMismatch("the chain client has no deployment record", hint="deploy the contracts first")
        return cls(client.artifacts, client.record.addresses)

    def specs(self) -> list[EventSpec]:
        """Every event the decoder knows (all contracts)."""
        return [spec for table in self._specs.values() for spec in table.values()]

    def spec_for(self, address: str, topic0: str) -> EventSpec | None:
        return self._specs.get(address.lower(), {}).get(topic0.lower())

    def decode(self, log_entry: Mapping[str, Any], timestamp: int | None = None) -> LedgerEvent | None:
        """One log -> LedgerEvent; None for a log of another contract, an unknown or anonymous
        event, a malformed one (counted in ``unknown`` / ``errors``) or a removed one."""
        if log_entry.get("removed"):
            return None
        address = _hex(log_entry["address"])
        table = self._specs.get(address)
        topics_raw = log_entry.get("topics") or ()
        if table is None or not topics_raw:
            self.unknown += 1
            return None
        topics = [t if isinstance(t, str) else _hex(t) for t in topics_raw]
        spec = table.get(topics[0].lower())
        if spec is None:
            self.unknown += 1
            return None
        data = log_entry.get("data", "0x")
        data_hex = data.lower() if isinstance(data, str) else _hex(data)
        try:
            args = spec.decode_args([t.lower() for t in topics], data_hex)
        except Exception as exc:  # a malformed log is skipped, never fatal
            self.errors += 1
            log.warning("cannot decode %s log at block %s: %s", spec.name, log_entry.get("blockNumber"), exc)
            return None
        ts = log_entry.get("blockTimestamp")
        if timestamp is None:
            timestamp = _int(ts) if ts is not None else 0
        block_hash = log_entry.get("blockHash")
        return LedgerEvent(
            contract=spec.contract,
            event=spec.name,
            block_number=_int(log_entry["blockNumber"]),
            block_timestamp=timestamp,
            tx_hash=_hex(log_entry["transactionHash"]),
            log_index=_int(log_entry["logIndex"]),
            args=args,
            tx_index=_int(log_entry.get("transactionIndex", 0) or 0),
            address=self.addresses[spec.contract],
            block_hash=_hex(block_hash) if block_hash is not None else None,
        )

    def decode_receipt(self, receipt: Mapping[str, Any], timestamp: int | None = None) -> list[LedgerEvent]:
        """The ledger events of one transaction receipt, in log order."""
        out = []
        for entry in receipt.get("logs", ()):
            ev = self.decode(entry, timestamp)
            if ev is not None:
                out.append(ev)
        return out


def events_to_json(events: Iterable[LedgerEvent]) -> str:
    """Events as a JSON array (for exports and debugging)."""
    return json.dumps([e.to_json() for e in events], separators=(",", ":"))
