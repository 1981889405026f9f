"""``medledger roles``: the admin grants and revokes the parties' roles."""

from __future__ import annotations

from typing import Any

import typer
from rich.console import Console

from ledger.cli._params import RoleName, address_arg
from ledger.cli._state import done, emit, state

app = typer.Typer(help="Roles (holder, reviewer, user, auditor, admin), granted and revoked by an admin.")


@app.command("grant")
def grant(
    role: RoleName = typer.Argument(..., case_sensitive=False, help="holder, reviewer, user, auditor or admin."),
    account: str = typer.Argument(
        ..., parser=address_arg, metavar="ADDRESS", help="Address (or keystore alias) to grant it to."
    ),
) -> None:
    """Grant a role (signed by an admin: --key)."""
    st = state()
    result = st.backend().grant_role(st.actor(), role.lower(), account)
    done(f"granted {role} to {account}", result)


@app.command("revoke")
def revoke(
    role: RoleName = typer.Argument(..., case_sensitive=False, help="holder, reviewer, user, auditor or admin."),
    account: str = typer.Argument(
        ..., parser=address_arg, metavar="ADDRESS", help="Address (or keystore alias) to revoke it from."
    ),
) -> None:
    """Revoke a role (signed by an admin: --key)."""
    st = state()
    result = st.backend().revoke_role(st.actor(), role.lower(), account)
    done(f"revoked {role} from {account}", result)


@app.command("show")
def show(
    account: str = typer.Argument(..., parser=address_arg, metavar="ADDRESS", help="Address or keystore alias."),
) -> None:
    """The roles an account holds (read from the chain, or from the service)."""
    body = state().backend().account(account)

    def render(out: Console, data: Any) -> None:
        roles = ", ".join(data["roles"]) or "none"
        out.print(f"{data['account']}: {roles}{' (suspended by an auditor)' if data['suspended'] else ''}")

    emit(body, render)
