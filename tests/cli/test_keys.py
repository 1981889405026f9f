"""`medledger keys`: standard encrypted keystore files, created and imported by the CLI; nothing
secret in plaintext; clear refusals with the right exit codes."""

from __future__ import annotations

import json
from pathlib import Path

from eth_account import Account

from .helpers import PASSWORD, Cli


def _keystore_cli(cli: Cli, tmp_path: Path) -> Cli:
    """The same CLI with a keystore of its own (these tests must not touch the parties' keys)."""
    return Cli({**cli.env, "MEDLEDGER_KEYSTORE": str(tmp_path / "ks")}, cli.data_dir)


def test_create_list_address(cli: Cli, tmp_path: Path) -> None:
    local = _keystore_cli(cli, tmp_path)
    assert local.json("keys", "list")["keys"] == []
    created = local.json("keys", "create", "alice")
    path = Path(created["file"])
    assert path == tmp_path / "ks" / "alice.json"
    assert path.stat().st_mode & 0o777 == 0o600

    # a standard V3 keystore file, scrypt, that any Ethereum tool opens with the password
    document = json.loads(path.read_text())
    assert document["version"] == 3
    assert document["crypto"]["kdf"] == "scrypt"
    account = Account.from_key(Account.decrypt(document, PASSWORD))
    assert account.address == created["address"]
    assert account.key.hex().removeprefix("0x") not in path.read_text()

    local.json("keys", "create", "bob")
    listed = local.json("keys", "list")["keys"]
    assert [k["alias"] for k in listed] == ["alice", "bob"]
    # human output lists aliases and addresses; `keys address` prints the bare address
    human = local.run("keys", "list").stdout
    assert "alice" in human and created["address"] in human
    assert local.run("keys", "address", "alice").stdout.strip() == created["address"]


def test_import_hex_key_and_keystore_file(cli: Cli, tmp_path: Path) -> None:
    local = _keystore_cli(cli, tmp_path)
    account = Account.create()
    key_file = tmp_path / "key.txt"
    key_file.write_text("0x" + bytes(account.key).hex() + "\n")
    imported = local.json("keys", "import", "lab", "--private-key-file", str(key_file))
    assert imported["address"] == account.address

    # an existing keystore file (made elsewhere, its own password) is copied unchanged
    other = Account.create()
    external = tmp_path / "UTC--external"
    external.write_text(json.dumps(Account.encrypt(other.key, "their password", iterations=1024)))
    refused = local.json(
        "keys", "import", "ext", "--keystore-file", str(external), expect=3, env={"MEDLEDGER_PASSWORD": "wrong"}
    )
    assert refused["error"]["type"] == "wrong-password"
    done = local.json(
        "keys", "import", "ext", "--keystore-file", str(external), env={"MEDLEDGER_PASSWORD": "their password"}
    )
    assert done["address"] == other.address
    assert json.loads(Path(done["file"]).read_text()) == json.loads(external.read_text())

    listed = {k["alias"]: k["address"] for k in local.json("keys", "list")["keys"]}
    assert listed == {"lab": account.address, "ext": other.address}

    # --password-file takes precedence over MEDLEDGER_PASSWORD: the key opens, and it is the
    # contract that refuses (ext is no admin), not the password
    password_file = tmp_path / "pw"
    password_file.write_text("their password\n")
    refused_by_chain = local.json(
        "--password-file",
        str(password_file),
        "--key",
        "ext",
        "roles",
        "grant",
        "user",
        "ext",
        expect=3,
        env={"MEDLEDGER_PASSWORD": "wrong"},
    )
    assert refused_by_chain["error"]["type"] == "access-denied"
    assert "AccessControlUnauthorizedAccount" in refused_by_chain["error"]["message"]
    assert refused_by_chain["error"]["hint"] == "only an admin may grant or revoke roles"


def test_refusals(cli: Cli, tmp_path: Path) -> None:
    local = _keystore_cli(cli, tmp_path)
    local.json("keys", "create", "alice")
    # the alias is taken: a usage error, nothing overwritten
    taken = local.json("keys", "create", "alice", expect=2)
    assert taken["error"]["type"] == "alias-taken"
    # not an alias at all
    bad = local.run("keys", "create", "../escape", expect=2)
    assert "not a valid key alias" in bad.stderr
    # a malformed private key
    key_file = tmp_path / "bad.txt"
    key_file.write_text("0x1234\n")
    malformed = local.run("keys", "import", "x", "--private-key-file", str(key_file), expect=2)
    assert "64 hex digits" in malformed.stderr
    assert not (tmp_path / "ks" / "x.json").exists()
    # an unknown alias as the acting key is a usage error naming the known ones
    unknown = local.run("--key", "nobody", "roles", "grant", "user", "alice", expect=2)
    assert "no key 'nobody'" in unknown.stderr and "alice" in unknown.stderr
    # the wrong password cannot run the command
    wrong = local.run("--key", "alice", "roles", "grant", "user", "alice", expect=3, env={"MEDLEDGER_PASSWORD": "nope"})
    assert "wrong password" in wrong.stderr.lower()
    assert "Traceback" not in wrong.stderr + wrong.stdout
