"""The ledger's events, read from the chain's logs and decoded into plain, JSON-able records.

``EventDecoder`` turns a raw log (a JSON-RPC ``eth_getLogs`` entry or a web3 receipt log) into a
``LedgerEvent``: contract and event name, block number and timestamp, transaction hash, log index
and the arguments, with bytes as ``0x`` hex (lower case) and addresses checksummed. Decoding is a
dictionary lookup by (contract address, topic0) built once from the ABIs; static arguments are cut
straight out of the hex words, so no per-log ABI matching and no eth_abi call for the common case.

``LogSource`` fetches the logs of all six ledger contracts in block ranges (2,000 blocks per
``eth_getLogs`` by default, halved when the node refuses a range and grown back afterwards), from
the deployment's first block up to the head minus ``settings.confirmations``, and fills in block
timestamps from the logs themselves or from block headers fetched in one batch request (cached).
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any, cast

from eth_abi.abi import decode as abi_decode
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from ledger.core.errors import DeploymentMismatch, LedgerError, NodeUnavailable

if TYPE_CHECKING:
    from ledger.chain.client import Artifact, ChainClient

log = logging.getLogger(__name__)

#: an event's position in the chain as one integer: ``block << SEQ_SHIFT | log_index``. It orders
#: events like the chain does, is the primary key of the index and the cursor of paginated reads.
SEQ_SHIFT = 20
_LOG_INDEX_MASK = (1 << SEQ_SHIFT) - 1

#: default block span of one eth_getLogs call
DEFAULT_CHUNK_BLOCKS = 2000


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
        from ledger.chain.client import _abi_type

        inputs = item["inputs"]
        types = [_abi_type(i) for i in inputs]
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


# ---------------------------------------------------------------------------------------------
# fetching


@dataclass
class Chunk:
    """The decoded events of one block range, with the hashes of the blocks seen."""

    from_block: int
    to_block: int
    events: list[LedgerEvent]
    #: hash by block number: every block with events, and ``to_block``
    block_hashes: dict[int, str]
    #: timestamp of ``to_block``
    end_timestamp: int
    raw_logs: int = 0


class RangeTooLarge(LedgerError):
    """The node refused an eth_getLogs range (too many results, range limit, timeout)."""

    code = "log-range-too-large"


class LogSource:
    """Fetches and decodes the ledger's logs in block ranges, up to the confirmed head."""

    def __init__(
        self,
        client: ChainClient,
        *,
        chunk_blocks: int = DEFAULT_CHUNK_BLOCKS,
        confirmations: int | None = None,
        decoder: EventDecoder | None = None,
        header_cache: int = 4096,
    ) -> None:
        if client.record is None:
            raise DeploymentMismatch("the chain client has no deployment record", hint="deploy the contracts first")
        self.client = client
        self.record = client.record
        self.decoder = decoder or EventDecoder.for_client(client)
        self.confirmations = client.settings.confirmations if confirmations is None else confirmations
        if self.confirmations < 0:
            raise LedgerError(f"confirmations must be >= 0, got {self.confirmations}")
        self.max_span = max(1, chunk_blocks)
        #: current span: shrinks when the node refuses a range, grows back after successes
        self.span = self.max_span
        self._accepted = 0
        self._headers: OrderedDict[int, BlockHeader] = OrderedDict()
        self._header_cache = header_cache
        self._lock = threading.Lock()
        self._log_filter_addresses = sorted(a.lower() for a in self.record.addresses.values())

    @property
    def start_block(self) -> int:
        """The deployment's first block: nothing of the ledger is older."""
        return self.record.deploy_block

    @property
    def addresses(self) -> dict[str, str]:
        return dict(self.record.addresses)

    # -- raw RPC (no web3 result formatting: logs stay hex strings, which decode fastest)

    def _rpc(self, method: str, params: list[Any], *, soft: bool = False) -> Any:
        """One JSON-RPC call. A refused connection raises NodeUnavailable; other transport
        failures (timeouts, HTTP errors) too, or _TransportError when ``soft``."""
        try:
            response = self.client.w3.provider.make_request(method, params)  # type: ignore[arg-type]
        except OSError as exc:
            if soft and not _is_connection_refused(exc):
                raise _TransportError(f"{method}: {exc}") from exc
            raise NodeUnavailable(f"chain node at {self.client.settings.rpc_url} failed: {exc}") from exc
        if "error" in response:
            raise _RpcError(method, response["error"])
        return response.get("result")

    def head(self) -> int:
        """The chain's latest block number."""
        return _int(self._rpc("eth_blockNumber", []))

    def safe_head(self, head: int | None = None) -> int:
        """The newest block with ``confirmations`` blocks on top (-1 if none yet)."""
        return (self.head() if head is None else head) - self.confirmations

    def headers(self, numbers: Iterable[int], *, fresh: bool = False) -> dict[int, BlockHeader]:
        """Headers of the given blocks, from the cache (unless ``fresh``) or in one batch
        request. Blocks beyond the head are missing from the result."""
        wanted = sorted(set(numbers))
        out: dict[int, BlockHeader] = {}
        missing: list[int] = []
        with self._lock:
            for n in wanted:
                h = None if fresh else self._headers.get(n)
                if h is None:
                    missing.append(n)
                else:
                    out[n] = h
        for i in range(0, len(missing), 500):
            part = missing[i : i + 500]
            for n, raw in zip(part, self._get_blocks(part), strict=True):
                if raw is None:
                    continue
                header = BlockHeader(
                    _int(raw["number"]), _hex(raw["hash"]), _hex(raw["parentHash"]), _int(raw["timestamp"])
                )
                out[n] = header
                self._remember(header)
        return out

    def header(self, number: int) -> BlockHeader | None:
        return self.headers([number]).get(number)

    def forget_headers(self, above: int = -1) -> None:
        """Drop cached headers of blocks > ``above`` (after a reorg, or all)."""
        with self._lock:
            for n in [n for n in self._headers if n > above]:
                del self._headers[n]

    def _remember(self, header: BlockHeader) -> None:
        with self._lock:
            self._headers[header.number] = header
            self._headers.move_to_end(header.number)
            while len(self._headers) > self._header_cache:
                self._headers.popitem(last=False)

    def _get_blocks(self, numbers: list[int]) -> list[dict[str, Any] | None]:
        if len(numbers) == 1:
            return [self._rpc("eth_getBlockByNumber", [hex(numbers[0]), False])]
        provider = self.client.w3.provider
        try:
            responses = provider.make_batch_request(  # type: ignore[attr-defined]
                [("eth_getBlockByNumber", [hex(n), False]) for n in numbers]
            )
        except OSError as exc:
            raise NodeUnavailable(f"chain node at {self.client.settings.rpc_url} failed: {exc}") from exc
        except Exception:  # a node or provider without batch support: one request each
            return [self._rpc("eth_getBlockByNumber", [hex(n), False]) for n in numbers]
        if not isinstance(responses, list) or len(responses) != len(numbers):
            return [self._rpc("eth_getBlockByNumber", [hex(n), False]) for n in numbers]
        out: list[dict[str, Any] | None] = []
        for n, resp in zip(numbers, responses, strict=True):
            if "error" in resp:
                out.append(self._rpc("eth_getBlockByNumber", [hex(n), False]))
            else:
                out.append(cast(dict[str, Any] | None, resp.get("result")))
        return out

    def get_logs(self, from_block: int, to_block: int) -> list[dict[str, Any]]:
        """Raw logs of the ledger contracts in [from_block, to_block] (one request); raises
        RangeTooLarge when the node refuses the range."""
        params = [{"fromBlock": hex(from_block), "toBlock": hex(to_block), "address": self._log_filter_addresses}]
        try:
            result = self._rpc("eth_getLogs", params, soft=True)
        except (_RpcError, _TransportError) as exc:  # result limit, range limit, HTTP 413, timeout
            raise RangeTooLarge(f"eth_getLogs {from_block}..{to_block} refused: {exc}") from exc
        return cast(list[dict[str, Any]], result or [])

    def fetch(self, from_block: int, to_block: int) -> Chunk:
        """Decoded events of [from_block, to_block] in one range (no splitting), timestamps filled."""
        raw = self.get_logs(from_block, to_block)
        raw.sort(key=lambda e: (_int(e["blockNumber"]), _int(e["logIndex"])))
        hashes: dict[int, str] = {}
        stamps: dict[int, int] = {}
        need: set[int] = {to_block}
        for entry in raw:
            n = _int(entry["blockNumber"])
            bh = entry.get("blockHash")
            if bh is not None:
                hashes[n] = _hex(bh)
            ts = entry.get("blockTimestamp")
            if ts is not None:
                stamps[n] = _int(ts)
            else:
                need.add(n)
        headers = self.headers(need)
        if to_block not in headers:
            raise NodeUnavailable(f"block {to_block} is not available from the node (chain shorter than expected)")
        for n, h in headers.items():
            if n in hashes and hashes[n] != h.hash:
                self.forget_headers(above=from_block - 1)
                raise NodeUnavailable(
                    f"block {n} changed while blocks {from_block}..{to_block} were read (reorganisation)",
                    hint="sync again",
                )
            stamps[n] = h.timestamp
            hashes[n] = h.hash
        decode = self.decoder.decode
        events: list[LedgerEvent] = []
        for entry in raw:
            ev = decode(entry, stamps.get(_int(entry["blockNumber"])))
            if ev is not None:
                events.append(ev)
        return Chunk(from_block, to_block, events, hashes, headers[to_block].timestamp, len(raw))

    def chunks(self, from_block: int | None = None, to_block: int | None = None) -> Iterator[Chunk]:
        """Chunks covering [from_block, to_block] in order (default: from the deploy block to the
        confirmed head). The span halves while the node refuses a range and doubles again after
        eight accepted ranges in a row; a single block the node refuses raises RangeTooLarge."""
        start = self.start_block if from_block is None else max(from_block, self.start_block)
        end = self.safe_head() if to_block is None else to_block
        while start <= end:
            span = min(self.span, end - start + 1)
            try:
                chunk = self.fetch(start, start + span - 1)
            except RangeTooLarge:
                if span <= 1:
                    raise
                self.span = max(1, span // 2)
                self._accepted = 0
                log.info("eth_getLogs range of %d blocks refused; trying %d", span, self.span)
                continue
            self._accepted += 1
            if self.span < self.max_span and self._accepted >= 8 and chunk.raw_logs < 5000:
                self.span = min(self.max_span, self.span * 2)  # try a larger range again
                self._accepted = 0
            yield chunk
            start = chunk.to_block + 1

    def events(self, from_block: int | None = None, to_block: int | None = None) -> Iterator[LedgerEvent]:
        """Every decoded event in the range, in chain order."""
        for chunk in self.chunks(from_block, to_block):
            yield from chunk.events


class _RpcError(Exception):
    def __init__(self, method: str, error: Any) -> None:
        message = error.get("message") if isinstance(error, dict) else str(error)
        super().__init__(f"{method}: {message}")
        self.error = error


class _TransportError(Exception):
    pass


def _is_connection_refused(exc: BaseException) -> bool:
    """A connection that could not be made (as opposed to a slow or refused request)."""
    if isinstance(exc, ConnectionError):
        return True
    try:
        import requests

        if isinstance(exc, requests.exceptions.ConnectionError) and not isinstance(exc, requests.exceptions.Timeout):
            return True
    except ImportError:  # pragma: no cover
        pass
    text = str(exc).lower()
    return "connection refused" in text or "failed to establish" in text


def events_to_json(events: Iterable[LedgerEvent]) -> str:
    """Events as a JSON array (for exports and debugging)."""
    return json.dumps([e.to_json() for e in events], separators=(",", ":"))
