"""Deploy the contracts and keep the deployment record.

``ensure_deployed`` is idempotent: a record that matches the chain (same chain id, code at every
address, same ABIs as the compiled contracts) is reused; otherwise the contracts are deployed and
the record rewritten. Deploying to a chain other than a local anvil needs ``allow_deploy``.
"""

from __future__ import annotations

from typing import Any, cast

from web3.types import TxReceipt

from ledger.chain.client import ChainClient, DeploymentRecord, load_artifacts
from ledger.core.config import Settings
from ledger.core.errors import DeploymentMismatch


def deploy_all(client: ChainClient) -> DeploymentRecord:
    """Deploy forwarder, roles and the four registries, wired together; the client's account
    becomes the first admin. Returns the record (not yet saved)."""
    w3 = client.w3
    arts = client.artifacts
    addresses: dict[str, str] = {}
    first_block: int | None = None

    def deploy(name: str, *args: Any) -> str:
        nonlocal first_block
        factory = w3.eth.contract(abi=arts[name].abi, bytecode=arts[name].bytecode)
        ctor = factory.constructor(*args)
        gas = int(ctor.estimate_gas({"from": client.address}) * 1.2) + 50_000
        tx = ctor.build_transaction({"from": client.address, "chainId": client.chain_id, "gas": gas, **client.fees()})
        receipt = cast(TxReceipt, client.send_raw(cast(dict[str, Any], tx)))
        if first_block is None:
            first_block = int(receipt["blockNumber"])
        address = str(receipt["contractAddress"])
        addresses[name] = address
        return address

    forwarder = deploy("LedgerForwarder")
    roles = deploy("LedgerRoles", forwarder, client.address)
    datasets = deploy("DatasetRegistry", forwarder, roles)
    deploy("ConsentRegistry", forwarder, datasets)
    access = deploy("AccessRegistry", forwarder, roles, datasets)
    deploy("UsageRegistry", forwarder, roles, datasets, access)
    return DeploymentRecord(
        chain_id=client.chain_id,
        deploy_block=first_block or 0,
        compiler=arts["LedgerForwarder"].compiler,
        addresses=addresses,
        abi_hashes={name: arts[name].abi_hash for name in addresses},
        code_hashes={name: arts[name].code_hash for name in addresses},
    )


def ensure_deployed(settings: Settings, *, allow_deploy: bool | None = None) -> DeploymentRecord:
    """Return a record that matches the chain, deploying first if needed (and allowed)."""
    artifacts = load_artifacts(settings.artifacts_dir)
    client = ChainClient(settings, artifacts=artifacts, check_record=False)
    path = settings.deployment_path
    try:
        record = DeploymentRecord.load(path)
        client.check_record(record)
        return record
    except DeploymentMismatch as mismatch:
        allowed = settings.is_local_anvil if allow_deploy is None else allow_deploy
        if not allowed:
            raise DeploymentMismatch(
                f"{mismatch.message}; refusing to deploy on chain {settings.chain_id} automatically",
                hint="deploy explicitly (medledger deploy --yes) or fix MEDLEDGER_DEPLOYMENT_FILE",
            ) from mismatch
    record = deploy_all(client)
    record.save(path)
    return record
