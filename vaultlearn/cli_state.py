"""The commands on a vault's state: ``init``, ``index``, ``suggest``, ``status`` and ``graph``."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import click

from .cli_common import (echo_json, json_option, open_vault, quiet_libraries, service_for, vault_arguments,
                         vault_option, warn)
from .config import Config
from .paths import StatePaths

# Characters XML 1.0 cannot hold, even escaped: a file name or property holding one would make GraphML unreadable.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def graphml_text(graph) -> str:
    """GraphML of ``graph`` with every character XML cannot hold replaced by U+FFFD (keys and attributes)."""
    import networkx as nx

    def clean(value):
        return _NOT_XML.sub("\ufffd", value) if isinstance(value, str) else value

    safe = nx.MultiDiGraph()
    safe.add_nodes_from((clean(n), {k: clean(v) for k, v in data.items()}) for n, data in graph.nodes(data=True))
    safe.add_edges_from((clean(a), clean(b), {k: clean(v) for k, v in data.items()})
                        for a, b, data in graph.edges(data=True))
    return "\n".join(nx.generate_graphml(safe))




@click.command()
@vault_arguments
def init(vault: str | None, vault_opt: str | None) -> None:
    """Create VAULT/.vaultlearn/ with a config.toml showing every setting."""
    from .atomic import atomic_write_text

    root = open_vault(vault_opt, vault, near=Path.cwd())
    config_path = StatePaths(root).config
    if config_path.exists():
        click.echo(f"{config_path} exists; left as it is")
        return
    atomic_write_text(config_path, Config().to_toml())
    click.echo(f"wrote {config_path}")


@click.command()
@vault_arguments
@json_option("the report")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
def index(vault: str | None, vault_opt: str | None, as_json: bool, quiet: bool) -> None:
    """Scan, parse, embed (changed notes only) and index VAULT."""
    from .notices import summarise

    progress = not quiet and sys.stderr.isatty()
    if not progress:
        quiet_libraries()
    service = service_for(open_vault(vault_opt, vault))
    report = service.index(progress=progress)
    for line in summarise(report.warnings):
        warn(line)
    status = service.status()
    if as_json:
        echo_json({**report.to_json(), "status": status.to_json()})
        return
    if status.notes == 0:
        warn(f"no notes (*.md) found in {service.vault}; nothing to suggest yet")
    click.echo(f"{status.notes} notes, {status.links} links ({status.unresolved_links} unresolved), "
               f"{len(status.phases)} phases; embedded {report.embedded} "
               f"(+{report.added} ~{report.updated} -{report.deleted}) in {report.seconds:.1f}s")


@click.command()
@click.argument("note")
@vault_option
@click.option("-k", "k", type=click.IntRange(1, 1000), default=None, help="How many suggestions (default 10).")
@json_option("the suggestions")
def suggest(note: str, vault_opt: str | None, k: int | None, as_json: bool) -> None:
    """Notes NOTE should link to and does not yet, best first. NOTE is a path or a link-style name.

    When a daemon serves the vault (`vaultlearn watch`) and NOTE is indexed as it is on disk, the daemon answers;
    otherwise this process ranks."""
    quiet_libraries()
    as_file = Path(note).expanduser()
    near = as_file.parent if as_file.is_file() else Path.cwd()
    service = service_for(open_vault(vault_opt, near=near), create=False)
    if as_file.is_file():
        note = str(as_file.resolve())
    path = service.resolve_note(note)
    # a note's own path names it alone; a name may be shared by several notes (checked over every note's name)
    given_path = as_file.is_file() or ("/" in note and path in (note, f"{note}.md"))
    if not given_path and len(namesakes := service.notes_named(note)) > 1 and namesakes[0] == path:
        warn(f"{len(namesakes)} notes are named {note!r}; answering for {path} (the shortest path, as Obsidian "
              f"resolves the link); give a path for another: {', '.join(namesakes[1:])}")
    from .daemon.client import daemon_suggestions

    # the vault's daemon holds the ranking in memory: asking it reads no state here
    suggestions = daemon_suggestions(service.vault, path, k) if service.is_current(path) else None
    if suggestions is None:
        service.update_if_stale(path, on_update=warn)
        suggestions = service.suggest(path, k)
    if as_json:
        echo_json([s.to_json() for s in suggestions])
        return
    if not suggestions:
        click.echo(f"no suggestions for {path}")
    for rank_no, s in enumerate(suggestions, 1):
        click.echo(f"{rank_no:>3}. {s.score:6.3f}  {s.path}\n       {s.reason}")


@click.command()
@vault_arguments
@json_option("the status")
def status(vault: str | None, vault_opt: str | None, as_json: bool) -> None:
    """What is indexed, the phases, what is learned and pending."""
    info = service_for(open_vault(vault_opt, vault), create=False).status()
    if as_json:
        echo_json(info.to_json())
        return
    click.echo(f"vault            {info.vault}")
    click.echo(f"notes            {info.notes} ({info.embedded} embedded, index {info.index_size})")
    click.echo(f"links            {info.links} ({info.unresolved_links} unresolved)")
    click.echo(f"phases           {len(info.phases)}" + (
        f" by {info.phase_source}: " + ", ".join(f"{p} ({info.notes_by_phase[p]})" for p in info.phases)
        if info.phases else ""))
    click.echo(f"learned          {', '.join(info.learned_phases) or '-'} ({info.learner})")
    click.echo(f"pending          {', '.join(info.pending_phases) or '-'}")
    if info.repair_due:
        click.echo("repair due       learning was interrupted after the model was saved: the next `vaultlearn "
                   "index` re-embeds every note with it and records what it learned")
    for phase, why in info.declined_phases.items():
        click.echo(f"declined         {phase}: {why}")
    if info.notes_with_warnings:
        click.echo(f"notes w/warnings {info.notes_with_warnings}")


@click.command()
@vault_arguments
@click.option("--format", "fmt", type=click.Choice(["graphml", "json"]), default="json", show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False), default=None, help="Write here instead of stdout.")
def graph(vault: str | None, vault_opt: str | None, fmt: str, output: str | None) -> None:
    """Export the link graph (nodes: notes and unresolved targets; edges: link, embed, frontmatter)."""
    import networkx as nx

    g = service_for(open_vault(vault_opt, vault), create=False).graph()
    if fmt == "json":
        text = json.dumps(nx.node_link_data(g, edges="edges"), indent=1, ensure_ascii=False)
    else:
        text = graphml_text(g)
    if output:
        from .atomic import atomic_write_text

        atomic_write_text(output, text + "\n")
    else:
        click.echo(text)

