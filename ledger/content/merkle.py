"""Merkle trees compatible with OpenZeppelin's ``StandardMerkleTree`` (@openzeppelin/merkle-tree 1.0.x).

Why this exact algorithm: the contracts verify inclusion with OpenZeppelin's ``MerkleProof``, and holders
hand trees to JavaScript tooling, so roots and proofs must be byte-for-byte those of the JS library:

- leaf  = keccak256(keccak256(abi.encode(types, value)))  (double hash: a leaf can never pass for a node)
- leaves are sorted by their hash, then laid out in a flat array of ``2n - 1`` nodes, leaves at the end
  in reverse order, node ``i`` having children ``2i + 1`` and ``2i + 2``
- internal node = keccak256(sorted(a, b)) (sorted pairs: proofs need no left/right flags)

The two leaf shapes the ledger uses are hand-encoded (``eth_abi`` is ~20x slower and a dataset can have
100k files): content entries ``(string path, uint256 size, bytes32 sha256)`` and subjects ``(address)``.
Any other type list falls back to ``eth_abi``.
"""

from __future__ import annotations

import importlib
import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from ledger.core.errors import InvalidInput

#: leaf encoding of a dataset's file entries: (relative POSIX path, size in bytes, sha256)
CONTENT_TYPES: tuple[str, ...] = ("string", "uint256", "bytes32")
#: leaf encoding of a dataset's subjects (pseudonymous addresses)
SUBJECT_TYPES: tuple[str, ...] = ("address",)

FORMAT = "standard-v1"
_UINT256_LIMIT = 1 << 256


def _load_keccak() -> Callable[[bytes], bytes]:
    """Pick the fastest keccak256 available: safe-pysha3 (C, ~0.8 µs per leaf) when installed,
    pycryptodome otherwise (~4 µs). Both give the same digests; only speed differs."""
    try:
        sha3 = importlib.import_module("sha3")
        ctor = sha3.keccak_256

        def pysha3_keccak(data: bytes) -> bytes:
            return cast(bytes, ctor(data).digest())

        return pysha3_keccak
    except (ImportError, AttributeError):
        from Crypto.Hash import keccak as _keccak

        return lambda data: _keccak.new(digest_bits=256, data=data).digest()


keccak256: Callable[[bytes], bytes] = _load_keccak()


# ---------------------------------------------------------------------------------------------
# value normalisation and ABI encoding
# ---------------------------------------------------------------------------------------------


def _as_bytes(value: Any, length: int | None, what: str) -> bytes:
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
    elif isinstance(value, str):
        text = value[2:] if value[:2] in ("0x", "0X") else value
        try:
            raw = bytes.fromhex(text)
        except ValueError as exc:
            raise InvalidInput(f"{what}: {value!r} is not hex") from exc
    else:
        raise InvalidInput(f"{what}: expected bytes or a hex string, got {type(value).__name__}")
    if length is not None and len(raw) != length:
        raise InvalidInput(f"{what}: expected {length} bytes, got {len(raw)}")
    return raw


def _as_int(value: Any, bits: int, signed: bool, what: str) -> int:
    if isinstance(value, bool):
        raise InvalidInput(f"{what}: expected an integer, got a bool")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str):
        try:
            number = int(value, 0)
        except ValueError as exc:
            raise InvalidInput(f"{what}: {value!r} is not an integer") from exc
    else:
        raise InvalidInput(f"{what}: expected an integer, got {type(value).__name__}")
    low, high = (-(1 << (bits - 1)), 1 << (bits - 1)) if signed else (0, 1 << bits)
    if not low <= number < high:
        raise InvalidInput(f"{what}: {number} is out of range")
    return number


def _as_address(value: Any, what: str) -> str:
    raw = _as_bytes(value, 20, what)
    return "0x" + raw.hex()


def _normalize_one(kind: str, value: Any, what: str) -> Any:
    """Bring one value to the form used for hashing and lookups, so that "0xAB.." and b"\\xab.." or
    "5" and 5 name the same leaf (a JSON dump carries strings where Python code passes ints)."""
    if kind == "string":
        if not isinstance(value, str):
            raise InvalidInput(f"{what}: expected a string, got {type(value).__name__}")
        return value
    if kind == "address":
        return _as_address(value, what)
    if kind == "bool":
        if not isinstance(value, bool):
            raise InvalidInput(f"{what}: expected a bool")
        return value
    if kind == "bytes":
        return _as_bytes(value, None, what)
    if kind.startswith("bytes") and kind[5:].isdigit():
        return _as_bytes(value, int(kind[5:]), what)
    if kind.startswith("uint"):
        return _as_int(value, int(kind[4:] or 256), False, what)
    if kind.startswith("int"):
        return _as_int(value, int(kind[3:] or 256), True, what)
    return value  # arrays and tuples: eth_abi validates them


def normalize_value(types: Sequence[str], value: Sequence[Any]) -> tuple[Any, ...]:
    """A leaf value in canonical Python form (str, int, bool, bytes; addresses as lower-case hex)."""
    # fast path for content leaves already in canonical form (100k-file datasets)
    if (
        type(value) is tuple
        and len(value) == 3
        and type(value[0]) is str
        and type(value[1]) is int
        and type(value[2]) is bytes
        and len(value[2]) == 32
        and 0 <= value[1] < _UINT256_LIMIT
        and tuple(types) == CONTENT_TYPES
    ):
        return value
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise InvalidInput(f"a leaf value must be a sequence of {len(types)} items, got {type(value).__name__}")
    if len(value) != len(types):
        raise InvalidInput(f"a leaf value must have {len(types)} items ({', '.join(types)}), got {len(value)}")
    return tuple(
        _normalize_one(kind, item, f"leaf item {i} ({kind})")
        for i, (kind, item) in enumerate(zip(types, value, strict=True))
    )


def encode_content_leaf(path: str, size: int, sha256: bytes) -> bytes:
    """``abi.encode(string, uint256, bytes32)`` by hand: head (offset 0x60, size, digest), then the
    string's length and its UTF-8 bytes right-padded to a 32-byte boundary."""
    data = path.encode("utf-8")
    padded = -len(data) % 32
    return b"".join(
        (
            (0x60).to_bytes(32, "big"),
            size.to_bytes(32, "big"),
            sha256,
            len(data).to_bytes(32, "big"),
            data,
            b"\x00" * padded,
        )
    )


def encode_subject_leaf(address: bytes) -> bytes:
    """``abi.encode(address)``: the 20 bytes left-padded to 32."""
    return b"\x00" * 12 + address


def abi_encode(types: Sequence[str], value: Sequence[Any]) -> bytes:
    """``abi.encode(types, value)`` of a normalised value; hand-encoded for the ledger's two leaf shapes."""
    kinds = tuple(types)
    if kinds == CONTENT_TYPES:
        return encode_content_leaf(value[0], value[1], value[2])
    if kinds == SUBJECT_TYPES:
        return encode_subject_leaf(bytes.fromhex(value[0][2:]))
    # eth_abi (~0.1 s to import) is only needed for leaf shapes other than the ledger's two
    from eth_abi.abi import encode

    try:
        return encode(list(kinds), list(value))
    except Exception as exc:  # eth_abi raises several unrelated types for bad input
        raise InvalidInput(f"cannot ABI-encode {value!r} as ({', '.join(kinds)}): {exc}") from exc


def _leaf_hash_normalized(types: tuple[str, ...], value: tuple[Any, ...]) -> bytes:
    return keccak256(keccak256(abi_encode(types, value)))


def leaf_hash(types: Sequence[str], value: Sequence[Any]) -> bytes:
    """OpenZeppelin's ``standardLeafHash``: keccak256(keccak256(abi.encode(types, value)))."""
    return keccak256(keccak256(abi_encode(types, normalize_value(types, value))))


def node_hash(a: bytes, b: bytes) -> bytes:
    """OpenZeppelin's ``standardNodeHash`` (= ``MerkleProof``'s ``_hashPair``): hash of the sorted pair."""
    return keccak256(a + b if a <= b else b + a)


def _to_hex(data: bytes) -> str:
    return "0x" + data.hex()


# ---------------------------------------------------------------------------------------------
# proofs
# ---------------------------------------------------------------------------------------------


def process_proof(leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root a proof leads to from a leaf hash."""
    node = leaf
    for sibling in proof:
        node = node_hash(node, sibling)
    return node


def verify(root: bytes | str, types: Sequence[str], value: Sequence[Any], proof: Sequence[bytes | str]) -> bool:
    """Whether ``value`` is a leaf of the tree with ``root`` (what ``MerkleProof.verify`` checks on chain).
    Malformed input (wrong lengths, bad hex) is simply not a valid proof: returns False."""
    try:
        expected = _as_bytes(root, 32, "root")
        steps = [_as_bytes(p, 32, "proof") for p in proof]
        return process_proof(leaf_hash(types, value), steps) == expected
    except InvalidInput:
        return False


@dataclass(frozen=True)
class MultiProof:
    """Proof for several leaves at once (OpenZeppelin ``getMultiProof`` layout)."""

    leaves: list[tuple[Any, ...]]
    proof: list[bytes]
    proof_flags: list[bool]


def process_multiproof(leaf_hashes: Sequence[bytes], proof: Sequence[bytes], proof_flags: Sequence[bool]) -> bytes:
    """The root a multiproof leads to (``MerkleProof.multiProofVerify``)."""
    if len(proof) < sum(1 for f in proof_flags if not f):
        raise InvalidInput("invalid multiproof format")
    if len(leaf_hashes) + len(proof) != len(proof_flags) + 1:
        raise InvalidInput("leaves and multiproof are not compatible")
    stack = list(leaf_hashes)
    rest = list(proof)
    head = 0  # the stack is used as a queue; an index avoids O(n) pops from the front
    proof_head = 0
    for flag in proof_flags:
        a = stack[head]
        head += 1
        if flag:
            b = stack[head]
            head += 1
        else:
            b = rest[proof_head]
            proof_head += 1
        stack.append(node_hash(a, b))
    if len(stack) > head:
        return stack[-1]
    return rest[proof_head]


def verify_multiproof(root: bytes | str, types: Sequence[str], multiproof: MultiProof) -> bool:
    """Whether every leaf of ``multiproof`` is in the tree with ``root``."""
    try:
        expected = _as_bytes(root, 32, "root")
        hashes = [leaf_hash(types, v) for v in multiproof.leaves]
        return process_multiproof(hashes, multiproof.proof, multiproof.proof_flags) == expected
    except (InvalidInput, IndexError):
        return False


# ---------------------------------------------------------------------------------------------
# the tree
# ---------------------------------------------------------------------------------------------


class StandardMerkleTree:
    """A complete tree over typed values, as built by OpenZeppelin's ``StandardMerkleTree.of``.

    ``values[i]`` is the i-th value in the order given; ``tree_index(i)`` where its leaf sits in the
    flat ``tree`` array. Build with :meth:`of` or :meth:`load`.
    """

    def __init__(self, tree: list[bytes], values: list[tuple[Any, ...]], tree_indices: list[int], types: Sequence[str]):
        self.tree = tree
        self.values = values
        self._tree_indices = tree_indices
        self.types: tuple[str, ...] = tuple(types)
        # like the JS library's hashLookup: a duplicate value resolves to its last occurrence
        self._lookup = {tree[t]: i for i, t in enumerate(tree_indices)}

    @classmethod
    def of(cls, values: Iterable[Sequence[Any]], types: Sequence[str]) -> StandardMerkleTree:
        """Build the tree; leaves are sorted by hash (the JS library's default ``sortLeaves: true``)."""
        kinds = tuple(types)
        normalized = [normalize_value(kinds, v) for v in values]
        if not normalized:
            raise InvalidInput("a Merkle tree needs at least one leaf")
        hashes = [_leaf_hash_normalized(kinds, v) for v in normalized]
        order = sorted(range(len(hashes)), key=hashes.__getitem__)  # stable, like Array.prototype.sort
        n = len(hashes)
        size = 2 * n - 1
        tree: list[bytes] = [b""] * size
        tree_indices = [0] * n
        for leaf_index, value_index in enumerate(order):
            position = size - 1 - leaf_index
            tree[position] = hashes[value_index]
            tree_indices[value_index] = position
        for i in range(size - 1 - n, -1, -1):
            tree[i] = node_hash(tree[2 * i + 1], tree[2 * i + 2])
        return cls(tree, normalized, tree_indices, kinds)

    # -- reading ------------------------------------------------------------------------------

    @property
    def root(self) -> bytes:
        """The 32-byte root (what the chain stores as a content or subject root)."""
        return self.tree[0]

    @property
    def root_hex(self) -> str:
        return _to_hex(self.tree[0])

    def __len__(self) -> int:
        return len(self.values)

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return iter(self.values)

    def tree_index(self, index: int) -> int:
        return self._tree_indices[index]

    def index_of(self, value: Sequence[Any]) -> int:
        """Position of ``value`` in :attr:`values`; :class:`InvalidInput` if it is not a leaf."""
        found = self._lookup.get(leaf_hash(self.types, value))
        if found is None:
            raise InvalidInput("value is not a leaf of this tree")
        return found

    def __contains__(self, value: object) -> bool:
        if not isinstance(value, Sequence):
            return False
        try:
            self.index_of(value)
        except InvalidInput:
            return False
        return True

    def _resolve(self, leaf: int | Sequence[Any]) -> int:
        if isinstance(leaf, int) and not isinstance(leaf, bool):
            if not 0 <= leaf < len(self.values):
                raise InvalidInput(f"leaf index {leaf} out of range (tree has {len(self.values)} leaves)")
            return leaf
        return self.index_of(cast(Sequence[Any], leaf))

    # -- proofs -------------------------------------------------------------------------------

    def proof(self, leaf: int | Sequence[Any]) -> list[bytes]:
        """Inclusion proof (sibling hashes, leaf to root) for a value or its index in :attr:`values`."""
        index = self._tree_indices[self._resolve(leaf)]
        proof: list[bytes] = []
        while index > 0:
            sibling = index - 1 if index % 2 == 0 else index + 1
            proof.append(self.tree[sibling])
            index = (index - 1) // 2
        return proof

    def proof_hex(self, leaf: int | Sequence[Any]) -> list[str]:
        return [_to_hex(p) for p in self.proof(leaf)]

    def verify(self, leaf: int | Sequence[Any], proof: Sequence[bytes | str]) -> bool:
        value = self.values[self._resolve(leaf)] if isinstance(leaf, int) else leaf
        return verify(self.root, self.types, value, proof)

    def multiproof(self, leaves: Iterable[int | Sequence[Any]]) -> MultiProof:
        """One proof for several leaves (OpenZeppelin ``getMultiProof``)."""
        indices = sorted((self._tree_indices[self._resolve(leaf)] for leaf in leaves), reverse=True)
        if any(a == b for a, b in itertools.pairwise(indices)):
            raise InvalidInput("cannot prove a duplicated leaf")
        queue = list(indices)
        head = 0
        proof: list[bytes] = []
        flags: list[bool] = []
        while head < len(queue) and queue[head] > 0:
            j = queue[head]
            head += 1
            sibling = j - 1 if j % 2 == 0 else j + 1
            parent = (j - 1) // 2
            if head < len(queue) and queue[head] == sibling:
                flags.append(True)
                head += 1
            else:
                flags.append(False)
                proof.append(self.tree[sibling])
            queue.append(parent)
        if not indices:
            proof.append(self.tree[0])
        return MultiProof(
            leaves=[self.values[self._lookup[self.tree[t]]] for t in indices],
            proof=proof,
            proof_flags=flags,
        )

    def verify_multiproof(self, multiproof: MultiProof) -> bool:
        return verify_multiproof(self.root, self.types, multiproof)

    # -- JSON (OpenZeppelin "standard-v1") ----------------------------------------------------

    def dump(self) -> dict[str, Any]:
        """The tree in the JS library's ``dump()`` format, so ``StandardMerkleTree.load`` in JavaScript
        reads it. Integers are written as decimal strings (JSON cannot carry uint256 exactly)."""
        return {
            "format": FORMAT,
            "leafEncoding": list(self.types),
            "tree": [_to_hex(node) for node in self.tree],
            "values": [
                {"value": [_jsonable(kind, item) for kind, item in zip(self.types, value, strict=True)], "treeIndex": t}
                for value, t in zip(self.values, self._tree_indices, strict=True)
            ],
        }

    @classmethod
    def load(cls, data: Mapping[str, Any]) -> StandardMerkleTree:
        """Read a ``dump()`` (ours or the JS library's) and check it: every value hashes to its leaf
        and every node to its children, so a loaded tree can be trusted as much as a rebuilt one."""
        if data.get("format") != FORMAT:
            raise InvalidInput(f"unknown Merkle tree format {data.get('format')!r}")
        types = data.get("leafEncoding")
        if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
            raise InvalidInput("Merkle tree dump has no leafEncoding")
        try:
            tree = [_as_bytes(node, 32, "tree node") for node in data["tree"]]
            entries = data["values"]
            values = [normalize_value(types, entry["value"]) for entry in entries]
            indices = [int(entry["treeIndex"]) for entry in entries]
        except (KeyError, TypeError) as exc:
            raise InvalidInput(f"malformed Merkle tree dump: {exc}") from exc
        if not tree:
            raise InvalidInput("Merkle tree dump has no nodes")
        for value, t in zip(values, indices, strict=True):
            if not 0 <= t < len(tree) or 2 * t + 1 < len(tree):
                raise InvalidInput(f"treeIndex {t} is not a leaf")
            if tree[t] != keccak256(keccak256(abi_encode(types, value))):
                raise InvalidInput(f"Merkle tree does not contain the expected value at {t}")
        for i in range(len(tree)):
            left, right = 2 * i + 1, 2 * i + 2
            if right >= len(tree):
                if left < len(tree):
                    raise InvalidInput("Merkle tree is invalid")
            elif tree[i] != node_hash(tree[left], tree[right]):
                raise InvalidInput("Merkle tree is invalid")
        return cls(tree, values, indices, types)


def _jsonable(kind: str, item: Any) -> Any:
    if isinstance(item, bool):
        return item
    if isinstance(item, int):
        return str(item)
    if isinstance(item, bytes):
        return _to_hex(item)
    if kind == "address":
        # eth_utils is slow to import and only address leaves (dumps of other trees) need it
        from eth_utils.address import to_checksum_address

        return to_checksum_address(item)
    return item


# ---------------------------------------------------------------------------------------------
# the ledger's two trees
# ---------------------------------------------------------------------------------------------


def content_leaf(path: str, size: int, sha256: bytes | str) -> tuple[str, int, bytes]:
    """The leaf value of one file entry."""
    return (path, size, _as_bytes(sha256, 32, "sha256"))


def content_tree(entries: Iterable[Any]) -> StandardMerkleTree:
    """Tree over file entries: ``(path, size, sha256)`` tuples or objects with those attributes
    (``ledger.files.FileEntry``, metadata file entries). Its root is the dataset's content root."""
    leaves: list[tuple[str, int, bytes]] = []
    for entry in entries:
        if isinstance(entry, tuple | list):
            path, size, digest = entry
        else:
            path, size, digest = entry.path, entry.size, entry.sha256
        leaves.append(content_leaf(path, size, digest))
    if len({leaf[0] for leaf in leaves}) != len(leaves):
        raise InvalidInput("duplicate file path in the entries")
    return StandardMerkleTree.of(leaves, CONTENT_TYPES)


def content_root(entries: Iterable[Any]) -> bytes:
    return content_tree(entries).root


def subject_tree(addresses: Iterable[str | bytes]) -> StandardMerkleTree:
    """Tree over subject addresses; its root is the dataset's subject root. Duplicates are refused:
    a subject is either in a cohort or not, and a duplicate would make counts disagree with the tree."""
    values = [(_as_address(a, "subject address"),) for a in addresses]
    if len({v[0] for v in values}) != len(values):
        raise InvalidInput("duplicate subject address")
    return StandardMerkleTree.of(values, SUBJECT_TYPES)
