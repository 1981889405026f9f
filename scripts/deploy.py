"""brownie run scripts/deploy.py [--network NAME]

Deploys the ledger's contracts to the network brownie is connected to and writes the deployment
record (chain id, addresses, deploy block, compiler version, ABI hashes) that the Python library
loads. Running it again against the same chain reuses the record instead of redeploying.
The deployment itself is the library's (ledger.deployment), signed locally with the configured
relayer key (anvil's first development account on a local anvil)."""

from typing import cast

from brownie import network
from web3 import HTTPProvider

from ledger.chain.deployment import ensure_deployed
from ledger.core.config import load_settings


def main() -> None:
    web3 = network.web3
    # brownie connects to its networks over HTTP: the provider has an endpoint
    rpc = str(cast(HTTPProvider, web3.provider).endpoint_uri)
    chain_id = web3.eth.chain_id
    settings = load_settings(rpc_url=rpc, chain_id=chain_id)
    record = ensure_deployed(settings)
    print(f"deployment record: {settings.deployment_path}")
    for name, address in record.addresses.items():
        print(f"  {name:16} {address}")
    print(f"  deploy block {record.deploy_block}, compiler {record.compiler}")
