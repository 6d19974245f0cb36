"""What every ``vaultlearn`` command shares: finding the vault, opening its service, printing JSON and
warnings, and the VAULT/--vault and --json option decorators."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from .errors import NotAVaultError
from .paths import STATE_DIR


def find_vault(start: Path) -> Path:
    """The nearest folder at or above ``start`` holding ``.vaultlearn/`` or ``.obsidian/``."""
    start = start.resolve()
    for folder in [start, *start.parents]:
        if (folder / STATE_DIR).is_dir() or (folder / ".obsidian").is_dir():
            return folder
    raise NotAVaultError(f"no vault at or above {start}: pass --vault PATH (a folder with .obsidian/ or .vaultlearn/)")


def open_vault(vault: str | None, positional: str | None = None, near: Path | None = None) -> Path:
    """The vault a command names (VAULT, else ``--vault``), or the one found at or above ``near``."""
    chosen = positional or vault
    if chosen:
        path = Path(chosen).expanduser()
        if not path.is_dir():
            raise NotAVaultError(f"{chosen} is not a folder: give the path of an Obsidian vault")
        return path.resolve()
    return find_vault(near or Path.cwd())


def service_for(vault: Path, create: bool = True):
    """The VaultService of ``vault``, saying on stderr when it waits for another writer."""
    from .service import VaultService

    return VaultService(vault, create=create, on_wait=warn)


def echo_json(data) -> None:
    """``data`` as indented JSON on stdout (the format of every ``--json``)."""
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, sort_keys=False))


def warn(message: str) -> None:
    """``warning: message`` on stderr."""
    click.echo(f"warning: {message}", err=True)


def quiet_libraries() -> None:
    """No progress bars from the model libraries (transformers' "Loading weights"); call before they load."""
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"


vault_option = click.option("--vault", "vault_opt", type=click.Path(file_okay=False), default=None,
                            help="The vault (default: the nearest folder above holding .vaultlearn/ or .obsidian/).")


def vault_arguments(command):
    """The optional VAULT argument and the ``--vault`` option, as every command on a whole vault takes them."""
    return click.argument("vault", required=False, type=click.Path(file_okay=False))(vault_option(command))


def json_option(what: str):
    """``--json``: print ``what`` as JSON instead of text (the value arrives as ``as_json``)."""
    return click.option("--json", "as_json", is_flag=True, help=f"Print {what} as JSON.")

