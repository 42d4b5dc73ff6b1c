"""`wanx token new|list|revoke`: manage the gateway's access tokens (stored only as hashes)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

from wanx.cli import _output
from wanx.errors import UsageError
from wanx.gateway.tokens import Role, add_token, load_tokens, revoke_token

app = typer.Typer(help="Create, list and revoke gateway access tokens.", no_args_is_help=True)

TokensFileOpt = Annotated[
    Path | None,
    typer.Option("--tokens-file", help="Tokens file [env WANX_TOKENS_FILE; default ./tokens.json]"),
]


def _tokens_file(value: Path | None) -> Path:
    if value is not None:
        return value
    env = os.environ.get("WANX_TOKENS_FILE")
    return Path(env) if env else Path("tokens.json")


@app.command("new")
def new(
    name: Annotated[str, typer.Option("--name", help="Who or what the token is for (shown in audit lines)")],
    role: Annotated[Role, typer.Option("--role", help="admin: everything; user: the web page and the API")] = Role.USER,
    tokens_file: TokensFileOpt = None,
) -> None:
    """Create a token and print it as the last line of output (it is shown only this once)."""
    path = _tokens_file(tokens_file)
    token = add_token(path, name=name, role=role)
    _output.console.print(f"created {role} token {name!r} in {path}; it is printed once, below. Store it now.")
    print(token)


@app.command("list")
def list_(
    tokens_file: TokensFileOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per token on stdout")] = False,
) -> None:
    """List token names, roles and creation times (never the tokens)."""
    records = load_tokens(_tokens_file(tokens_file))
    for record in records:
        if as_json:
            print(json.dumps({"name": record.name, "role": str(record.role), "created": record.created}))
        else:
            print(f"{record.name}\t{record.role}\t{record.created}")
    if not records:
        _output.console.print("no tokens yet: create one with 'wanx token new --name NAME --role user'")


@app.command("revoke")
def revoke(
    name: Annotated[str, typer.Argument(help="Name of the token to revoke")], tokens_file: TokensFileOpt = None
) -> None:
    """Revoke a token; a running gateway stops accepting it within a second."""
    if not name:
        raise UsageError("token name: empty; give the name shown by 'wanx token list'")
    record = revoke_token(_tokens_file(tokens_file), name)
    _output.console.print(f"revoked {record.role} token {record.name!r}")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="token")
