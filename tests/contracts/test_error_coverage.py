"""Every custom error in the deployed contracts' ABIs is provoked, by name and arguments, somewhere
in these tests (an `expect_revert("Name(types)", ...)` with its canonical signature)."""

from pathlib import Path

import pytest

HERE = Path(__file__).parent

# errors of OpenZeppelin code the ledger cannot reach once deployed
UNREACHABLE = {
    "InsufficientBalance(uint256,uint256)": "Address.sendValue: executeBatch refunds only value it received",
    "InvalidAccountNonce(address,uint256)": "Nonces._useCheckedNonce: the forwarder uses _useNonce",
    "InvalidShortString()": "ShortStrings: EIP-712 name and version are fixed at construction",
    "StringTooLong(string)": "ShortStrings: EIP-712 name and version are fixed at construction",
}


def canonical(item):
    def kind(inp):
        if inp["type"].startswith("tuple"):
            return "(" + ",".join(kind(c) for c in inp["components"]) + ")" + inp["type"][5:]
        return inp["type"]

    return f"{item['name']}({','.join(kind(i) for i in item['inputs'])})"


@pytest.mark.parametrize("label", ["forwarder", "roles", "datasets", "consent", "access", "usage"])
def test_every_error_is_provoked(ledger, label):
    sources = "".join(p.read_text() for p in HERE.glob("test_*.py") if p.name != Path(__file__).name)
    contract = getattr(ledger, label)
    errors = {canonical(item) for item in contract.abi if item["type"] == "error"}
    assert errors, f"{label} declares no errors"
    untested = sorted(e for e in errors - set(UNREACHABLE) if f'"{e}"' not in sources)
    assert not untested, f"{label}: errors never provoked by the tests: {untested}"
