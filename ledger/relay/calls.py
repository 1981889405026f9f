"""The relayable operations by name, their arguments from JSON, and decoding of signed calldata.

The API and CLI name operations (``requestAccess``, ``approveAccess``, ...) rather than contract
functions; this table maps each to its contract and function, and to the service route that
accepts it (the one statement of that mapping: the service's endpoints accept exactly their
operations, the HTTP client posts each operation to its route). Arguments are converted from JSON
by the function's ABI (hex strings to bytes32, decimal strings or ints to uints, checksummed
addresses).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from eth_utils.address import is_address, to_checksum_address

from ledger.core.errors import InvalidInput
from ledger.relay.relayer import Relayer


@dataclass(frozen=True)
class Operation:
    name: str
    contract: str
    function: str
    resource: str  # API resource that accepts it
    party: str  # who signs it
    route: str  # the service path it is posted to; ``{contentRoot}`` is filled from the arguments

    def path(self, args: Mapping[str, Any]) -> str:
        """The route with its placeholders filled from the operation's (JSON) arguments."""
        if "{contentRoot}" not in self.route:
            return self.route
        if "contentRoot" not in args:
            raise InvalidInput(f"{self.name} needs a contentRoot argument")
        return self.route.format(contentRoot=args["contentRoot"])


#: the routes that accept signed forward requests (``REGISTRATION`` also needs the metadata)
ROLES = "/roles"
REGISTRATION = "/datasets"
DATASET_STATUS = "/datasets/{contentRoot}/status"
SUSPENSIONS = "/suspensions"
ACCESS_REQUESTS = "/access-requests"
DECISIONS = "/access-requests/decisions"
USES = "/uses"
#: any operation but a registration may also be posted here
FORWARD = "/relay/forward"

_UNDER_EMBARGO = "reviewer (holder under embargo)"

OPERATIONS: dict[str, Operation] = {
    op.name: op
    for op in (
        Operation("grantRole", "LedgerRoles", "grantRole", "roles", "admin", ROLES),
        Operation("revokeRole", "LedgerRoles", "revokeRole", "roles", "admin", ROLES),
        Operation("registerDataset", "DatasetRegistry", "register", "datasets", "holder or user", REGISTRATION),
        Operation("setSharing", "DatasetRegistry", "setSharing", "datasets", "holder", DATASET_STATUS),
        Operation("deprecateDataset", "DatasetRegistry", "deprecate", "datasets", "holder", DATASET_STATUS),
        Operation("retractDataset", "DatasetRegistry", "retract", "datasets", "holder", DATASET_STATUS),
        Operation("suspendDataset", "DatasetRegistry", "suspend", "suspensions", "auditor", SUSPENSIONS),
        Operation("reinstateDataset", "DatasetRegistry", "reinstate", "suspensions", "auditor", SUSPENSIONS),
        Operation("requestAccess", "AccessRegistry", "requestAccess", "access", "user", ACCESS_REQUESTS),
        Operation("approveAccess", "AccessRegistry", "approve", "access", _UNDER_EMBARGO, DECISIONS),
        Operation("denyAccess", "AccessRegistry", "deny", "access", _UNDER_EMBARGO, DECISIONS),
        Operation("revokeAccess", "AccessRegistry", "revoke", "access", "reviewer or holder", DECISIONS),
        Operation("overrideEmbargo", "AccessRegistry", "overrideEmbargo", "access", "auditor", DECISIONS),
        Operation("suspendUser", "AccessRegistry", "suspendUser", "suspensions", "auditor", SUSPENSIONS),
        Operation("reinstateUser", "AccessRegistry", "reinstateUser", "suspensions", "auditor", SUSPENSIONS),
        Operation("recordUse", "UsageRegistry", "recordUse", "uses", "user", USES),
    )
}


def accepted_at(route: str) -> frozenset[str]:
    """The operations a route accepts: its own, or at ``FORWARD`` every one but a registration."""
    if route == FORWARD:
        return frozenset(name for name, op in OPERATIONS.items() if op.route != REGISTRATION)
    return frozenset(name for name, op in OPERATIONS.items() if op.route == route)

_BY_FUNCTION = {(op.contract, op.function): op for op in OPERATIONS.values()}


def _convert(kind: str, value: Any, name: str) -> Any:
    if kind.endswith("[]"):
        if not isinstance(value, list):
            raise InvalidInput(f"argument {name} must be a list")
        return [_convert(kind[:-2], v, f"{name}[{i}]") for i, v in enumerate(value)]
    if kind == "address":
        if not isinstance(value, str) or not is_address(value):
            raise InvalidInput(f"argument {name} must be an address (0x + 40 hex digits)")
        return to_checksum_address(value)
    if kind.startswith("bytes") and kind != "bytes":
        size = int(kind[5:])
        if isinstance(value, str):
            text = value[2:] if value.startswith("0x") else value
            try:
                raw = bytes.fromhex(text)
            except ValueError as exc:
                raise InvalidInput(f"argument {name} must be hex") from exc
            if len(raw) != size:
                raise InvalidInput(f"argument {name} must be {size} bytes (0x + {2 * size} hex digits)")
            return raw
        raise InvalidInput(f"argument {name} must be a hex string")
    if kind.startswith(("uint", "int")):
        try:
            number = int(value) if not isinstance(value, bool) else None
        except (TypeError, ValueError):
            number = None
        if number is None:
            raise InvalidInput(f"argument {name} must be an integer")
        bits = int(kind[4:] if kind.startswith("uint") else kind[3:] or 256)
        if kind.startswith("uint") and not 0 <= number < 2**bits:
            raise InvalidInput(f"argument {name} must be between 0 and 2^{bits}-1")
        return number
    if kind == "bool":
        if not isinstance(value, bool):
            raise InvalidInput(f"argument {name} must be true or false")
        return value
    if kind == "string":
        if not isinstance(value, str):
            raise InvalidInput(f"argument {name} must be a string")
        return value
    raise InvalidInput(f"argument {name} of type {kind} is not supported")


def encode_arguments(relayer: Relayer, operation: str, args: dict[str, Any]) -> tuple[Operation, list[Any]]:
    """Named JSON arguments -> positional ABI values for ``operation``."""
    op = OPERATIONS.get(operation)
    if op is None:
        raise InvalidInput(f"unknown operation {operation!r}", hint=f"one of {', '.join(sorted(OPERATIONS))}")
    abi = relayer.client.contract(op.contract).get_function_by_name(op.function).abi
    inputs = abi["inputs"]
    names = [i["name"] for i in inputs]
    missing = [n for n in names if n not in args]
    extra = [n for n in args if n not in names]
    if missing or extra:
        raise InvalidInput(
            f"{operation} takes arguments {names}; missing {missing}, unexpected {extra}",
        )
    return op, [_convert(i["type"], args[i["name"]], i["name"]) for i in inputs]


def decode_call(relayer: Relayer, to: str, data: bytes) -> tuple[Operation, dict[str, Any]]:
    """Which operation a forward request's calldata performs, with its arguments."""
    record = relayer.client.record
    names = {to_checksum_address(a): n for n, a in (record.addresses.items() if record else [])}
    contract_name = names.get(to_checksum_address(to))
    if contract_name is None:
        raise InvalidInput(f"{to} is not a ledger contract")
    contract = relayer.client.contract(contract_name)
    try:
        fn, args = contract.decode_function_input(data)
    except ValueError as exc:
        raise InvalidInput(f"calldata does not match any function of {contract_name}") from exc
    op = _BY_FUNCTION.get((contract_name, fn.fn_name))
    if op is None:
        raise InvalidInput(f"{contract_name}.{fn.fn_name} cannot be relayed through this service")
    return op, dict(args)
