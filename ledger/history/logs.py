"""Fetching the ledger's logs from the node: ``LogSource`` reads the logs of all six ledger
contracts in block ranges (2,000 blocks per ``eth_getLogs`` by default, halved when the node refuses
a range and grown back afterwards), from the deployment's first block up to the head minus
``settings.confirmations``, decodes them (``EventDecoder``) and fills in block timestamps from the
logs themselves or from block headers fetched in one batch request (cached).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import requests

from ledger.core.errors import DeploymentMismatch, LedgerError, NodeUnavailable
from ledger.history.events import BlockHeader, EventDecoder, LedgerEvent, _hex, _int

if TYPE_CHECKING:
    from ledger.chain.client import ChainClient

log = logging.getLogger(__name__)

#: default block span of one eth_getLogs call
DEFAULT_CHUNK_BLOCKS = 2000


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
    if isinstance(exc, requests.exceptions.ConnectionError) and not isinstance(exc, requests.exceptions.Timeout):
        return True
    text = str(exc).lower()
    return "connection refused" in text or "failed to establish" in text
