"""Running the ledger: local nodes, deployment, the service, readiness and relay tickets."""

from __future__ import annotations

from typing import Any

import typer
from rich.console import Console

from ledger.cli._state import EXIT_CANNOT_RUN, done, emit, kv_table, state
from ledger.core.errors import ConfigurationError
from ledger.devstack.nodes import LocalStack

nodes_app = typer.Typer(
    help="Local development nodes (anvil and js-ipfs) as the settings describe them; they keep running "
    "after the command exits.",
    no_args_is_help=True,
)
relay_app = typer.Typer(help="Relayed requests queued at the service.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command("up")(up)
    app.add_typer(nodes_app, name="nodes")
    app.add_typer(nodes_app, name="node", hidden=True)  # the singular spelling works too
    app.command("deploy")(deploy)
    app.command("serve")(serve)
    app.command("status")(status)
    app.add_typer(relay_app, name="relay")


def _render_nodes(out: Console, data: Any) -> None:
    for name, info in data.items():
        running = "[green]running[/green]" if info.get("running") else "[red]stopped[/red]"
        where = info.get("url") or info.get("api")
        pid = f" (pid {info['pid']})" if info.get("pid") else ""
        out.print(f"{name}: {running} at {where}{pid}")


@nodes_app.command("start")
def nodes_start() -> None:
    """Start anvil and js-ipfs under the data directory (reused if already running)."""
    stack = LocalStack(state().settings(), detach=True).start()
    emit(stack.status(), _render_nodes)


@nodes_app.command("stop")
def nodes_stop() -> None:
    """Stop the local nodes started with `medledger nodes start`."""
    stack = LocalStack(state().settings(), detach=True)
    stopped = {"anvil": stack.anvil.stop(), "ipfs": stack.ipfs.stop()}

    def render(out: Console, data: Any) -> None:
        for name, was in data["stopped"].items():
            out.print(f"{name}: {'stopped' if was else 'was not running (or not started by medledger)'}")

    emit({"stopped": stopped}, render)


@nodes_app.command("status")
def nodes_status() -> None:
    """Whether the local nodes answer, and their process ids."""
    emit(LocalStack(state().settings(), detach=True).status(), _render_nodes)


def up(
    yes: bool = typer.Option(
        False, "--yes", help="Allow deploying to a chain other than a local anvil (it costs real gas)."
    ),
) -> None:
    """Everything needed to start working: the local nodes (when the settings manage them) and the
    contracts (deployed unless the deployment record matches the chain)."""
    # web3 and the contracts' artifacts: loaded here, not for --help
    from ledger.chain.deployment import ensure_deployed

    settings = state().settings()
    nodes: dict[str, Any] = {}
    if settings.manage_nodes:
        nodes = LocalStack(settings, detach=True).start().status()
    record = ensure_deployed(settings, allow_deploy=True if yes else None)
    body = {"nodes": nodes, "deployment_file": str(settings.deployment_path), **record.to_json()}

    def render(out: Console, data: Any) -> None:
        if data["nodes"]:
            _render_nodes(out, data["nodes"])
        else:
            out.print(f"external nodes: chain {settings.rpc_url}, IPFS {settings.ipfs_api}")
        out.print(f"[green]✓[/green] contracts on chain {data['chain_id']} (record {data['deployment_file']})")

    emit(body, render)


def deploy(
    yes: bool = typer.Option(
        False, "--yes", help="Allow deploying to a chain other than a local anvil (it costs real gas)."
    ),
) -> None:
    """Deploy the contracts if the deployment record does not match the chain (idempotent). On a
    chain other than a local anvil this needs --yes."""
    # web3 and the contracts' artifacts: loaded here, not for --help
    from ledger.chain.deployment import ensure_deployed

    settings = state().settings()
    record = ensure_deployed(settings, allow_deploy=True if yes else None)
    body = {"deployment_file": str(settings.deployment_path), **record.to_json()}

    def render(out: Console, data: Any) -> None:
        out.print(f"[green]✓[/green] contracts on chain {data['chain_id']} (record {data['deployment_file']})")
        out.print(kv_table({name: c["address"] for name, c in data["contracts"].items()}))

    emit(body, render)


def serve(
    host: str | None = typer.Option(None, "--host", help="Interface to listen on (default: settings api_host)."),
    port: int | None = typer.Option(None, "--port", help="Port (default: settings api_port)."),
    log_level: str = typer.Option("info", "--log-level", help="uvicorn log level."),
) -> None:
    """Run the HTTP service (its relayer and indexer start with it) until interrupted."""
    try:
        import uvicorn
    except ImportError as exc:  # pragma: no cover - a dependency
        raise ConfigurationError("uvicorn is not installed", hint="pip install medledger[service]") from exc
    settings = state().settings()
    uvicorn.run(
        "api.app:create_app",
        factory=True,
        host=host or settings.api_host,
        port=port or settings.api_port,
        log_level=log_level,
    )


def status() -> None:
    """Is everything reachable? With --service: the service's readiness report; otherwise the
    chain, the deployment, the relayer's balance and the IPFS node. Exit code 3 if not ready."""
    body = state().backend().status()

    def render(out: Console, data: Any) -> None:
        colour = "green" if data.get("status") == "ready" else "red"
        out.print(f"[{colour}]{data.get('status')}[/{colour}] ({data.get('mode')})")
        out.print(kv_table({k: v for k, v in data.items() if k not in ("status", "mode")}))

    emit(body, render)
    if body.get("status") != "ready":
        raise typer.Exit(EXIT_CANNOT_RUN)


@relay_app.command("status")
def relay_status(ticket: str = typer.Argument(..., help="The ticket id a queued write returned.")) -> None:
    """A relayed request's status at the service: queued, submitting, mined or failed."""
    body = state().service().ticket(ticket)
    if body.get("status") == "mined":
        done(f"request {ticket} mined", body)
    else:
        emit(body)
