"""The ``vaultlearn`` command line: parse arguments, call the service, print. Nothing else lives here; the
commands are in :mod:`cli_state` and :mod:`cli_learning`, what they share in :mod:`cli_common`."""

from __future__ import annotations

import sys

import click

from .cli_learning import evaluate, learn, report, watch
from .cli_state import graph, index, init, status, suggest
from .errors import VaultlearnError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="vaultlearn")
def cli() -> None:
    """Link suggestions for an Obsidian vault, learned from its own links, offline."""


for command in (init, index, suggest, status, graph, learn, evaluate, report, watch):
    cli.add_command(command)


def main() -> None:
    """Console entry point: user-facing errors on stderr, exit 1; usage errors exit 2 (click)."""
    try:
        code = cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except VaultlearnError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except OSError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
