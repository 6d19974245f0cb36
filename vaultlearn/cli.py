"""The ``vaultlearn`` command line: parse arguments, call the service, print. Nothing else lives here."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import click

from .config import Config
from .errors import NotAVaultError, VaultlearnError
from .paths import STATE_DIR, StatePaths


def find_vault(start: Path) -> Path:
    """The nearest folder at or above ``start`` holding ``.vaultlearn/`` or ``.obsidian/``."""
    start = start.resolve()
    for folder in [start, *start.parents]:
        if (folder / STATE_DIR).is_dir() or (folder / ".obsidian").is_dir():
            return folder
    raise NotAVaultError(f"no vault at or above {start}: pass --vault PATH (a folder with .obsidian/ or .vaultlearn/)")


def _vault(vault: str | None, positional: str | None = None, near: Path | None = None) -> Path:
    chosen = positional or vault
    if chosen:
        path = Path(chosen).expanduser()
        if not path.is_dir():
            raise NotAVaultError(f"{chosen} is not a folder: give the path of an Obsidian vault")
        return path.resolve()
    return find_vault(near or Path.cwd())


def _service(vault: Path, create: bool = True):
    from .service import VaultService

    return VaultService(vault, create=create, on_wait=_warn)


# Characters XML 1.0 cannot hold, even escaped: a file name or property holding one would make GraphML unreadable.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _graphml(graph) -> str:
    """GraphML of ``graph`` with every character XML cannot hold replaced by U+FFFD (keys and attributes)."""
    import networkx as nx

    def clean(value):
        return _NOT_XML.sub("\ufffd", value) if isinstance(value, str) else value

    safe = nx.MultiDiGraph()
    safe.add_nodes_from((clean(n), {k: clean(v) for k, v in data.items()}) for n, data in graph.nodes(data=True))
    safe.add_edges_from((clean(a), clean(b), {k: clean(v) for k, v in data.items()})
                        for a, b, data in graph.edges(data=True))
    return "\n".join(nx.generate_graphml(safe))


def _echo_json(data) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, sort_keys=False))


def _warn(message: str) -> None:
    click.echo(f"warning: {message}", err=True)


def _quiet_libraries() -> None:
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


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="vaultlearn")
def cli() -> None:
    """Link suggestions for an Obsidian vault, learned from its own links, offline."""


@cli.command()
@vault_arguments
def init(vault: str | None, vault_opt: str | None) -> None:
    """Create VAULT/.vaultlearn/ with a config.toml showing every setting."""
    from .atomic import atomic_write_text

    root = _vault(vault_opt, vault, near=Path.cwd())
    config_path = StatePaths(root).config
    if config_path.exists():
        click.echo(f"{config_path} exists; left as it is")
        return
    atomic_write_text(config_path, Config().to_toml())
    click.echo(f"wrote {config_path}")


@cli.command()
@vault_arguments
@json_option("the report")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
def index(vault: str | None, vault_opt: str | None, as_json: bool, quiet: bool) -> None:
    """Scan, parse, embed (changed notes only) and index VAULT."""
    from .notices import summarise

    progress = not quiet and sys.stderr.isatty()
    if not progress:
        _quiet_libraries()
    service = _service(_vault(vault_opt, vault))
    report = service.index(progress=progress)
    for line in summarise(report["warnings"]):
        _warn(line)
    status = service.status()
    if as_json:
        _echo_json({**{k: v for k, v in report.items() if k != "warnings"}, "warnings": len(report["warnings"]),
                    "warning_list": [{"path": path, "message": message} for path, message in report["warnings"]],
                    "status": status})
        return
    if status["notes"] == 0:
        _warn(f"no notes (*.md) found in {service.vault}; nothing to suggest yet")
    click.echo(f"{status['notes']} notes, {status['links']} links ({status['unresolved_links']} unresolved), "
               f"{len(status['phases'])} phases; embedded {report['embedded']} "
               f"(+{report['added']} ~{report['updated']} -{report['deleted']}) in {report['seconds']:.1f}s")


@cli.command()
@click.argument("note")
@vault_option
@click.option("-k", "k", type=click.IntRange(1, 1000), default=None, help="How many suggestions (default 10).")
@json_option("the suggestions")
def suggest(note: str, vault_opt: str | None, k: int | None, as_json: bool) -> None:
    """Notes NOTE should link to and does not yet, best first. NOTE is a path or a link-style name."""
    _quiet_libraries()
    as_file = Path(note).expanduser()
    near = as_file.parent if as_file.is_file() else Path.cwd()
    service = _service(_vault(vault_opt, near=near), create=False)
    if as_file.is_file():
        note = str(as_file.resolve())
    path = service.resolve_note(note)
    if len(namesakes := service.notes_named(note)) > 1 and namesakes[0] == path:
        _warn(f"{len(namesakes)} notes are named {note!r}; answering for {path} (the shortest path, as Obsidian "
              f"resolves the link); give a path for another: {', '.join(namesakes[1:])}")
    service.update_if_stale(path, on_update=_warn)
    suggestions = service.suggest(path, k)
    if as_json:
        _echo_json([s.to_json() for s in suggestions])
        return
    if not suggestions:
        click.echo(f"no suggestions for {path}")
    for rank_no, s in enumerate(suggestions, 1):
        click.echo(f"{rank_no:>3}. {s.score:6.3f}  {s.path}\n       {s.reason}")


@cli.command()
@vault_arguments
@json_option("the status")
def status(vault: str | None, vault_opt: str | None, as_json: bool) -> None:
    """What is indexed, the phases, what is learned and pending."""
    info = _service(_vault(vault_opt, vault), create=False).status()
    if as_json:
        _echo_json(info)
        return
    click.echo(f"vault            {info['vault']}")
    click.echo(f"notes            {info['notes']} ({info['embedded']} embedded, index {info['index_size']})")
    click.echo(f"links            {info['links']} ({info['unresolved_links']} unresolved)")
    click.echo(f"phases           {len(info['phases'])}" + (
        f" by {info['phase_source']}: " + ", ".join(f"{p} ({info['notes_by_phase'][p]})" for p in info["phases"])
        if info["phases"] else ""))
    click.echo(f"learned          {', '.join(info['learned_phases']) or '-'}")
    click.echo(f"pending          {', '.join(info['pending_phases']) or '-'}")
    if info["repair_due"]:
        click.echo("repair due       learning was interrupted after the model was saved: the next `vaultlearn "
                   "index` re-embeds every note with it and records what it learned")
    for phase, why in info["declined_phases"].items():
        click.echo(f"declined         {phase}: {why}")
    if info["notes_with_warnings"]:
        click.echo(f"notes w/warnings {info['notes_with_warnings']}")


@cli.command()
@vault_arguments
@click.option("--format", "fmt", type=click.Choice(["graphml", "json"]), default="json", show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False), default=None, help="Write here instead of stdout.")
def graph(vault: str | None, vault_opt: str | None, fmt: str, output: str | None) -> None:
    """Export the link graph (nodes: notes and unresolved targets; edges: link, embed, frontmatter)."""
    import networkx as nx

    g = _service(_vault(vault_opt, vault), create=False).graph()
    if fmt == "json":
        text = json.dumps(nx.node_link_data(g, edges="edges"), indent=1, ensure_ascii=False)
    else:
        text = _graphml(g)
    if output:
        from .atomic import atomic_write_text

        atomic_write_text(output, text + "\n")
    else:
        click.echo(text)


@cli.command()
@vault_arguments
@click.option("--phase", default=None, help="Learn only this phase (default: every pending phase, in order).")
@click.option("--force", is_flag=True,
              help="Commit what is learned even when validation finds no gain or an earlier phase dropping.")
@json_option("the report")
def learn(vault: str | None, vault_opt: str | None, phase: str | None, force: bool, as_json: bool) -> None:
    """Learn the vault's pending phases from its links; keep each only if it gains on held-out links and no
    earlier phase drops; then re-embed only the notes that changed."""
    from tqdm import tqdm

    if as_json or not sys.stderr.isatty():
        _quiet_libraries()
    service = _service(_vault(vault_opt, vault), create=False)
    bars: dict[str, tqdm] = {}

    def progress(event: dict) -> None:
        bar = bars.get(event["phase"])
        if bar is None:
            bar = bars[event["phase"]] = tqdm(total=100, desc=f"learning {event['phase']}", unit="%",
                                              disable=as_json or not sys.stderr.isatty())
        bar.update(round(event["progress"] * 100) - bar.n)

    report = service.learn(phase, force=force, progress=progress)
    for bar in bars.values():
        bar.close()
    if as_json:
        _echo_json(report)
        return
    if not report["phases"]:
        status = service.status()
        if status["declined_phases"]:
            click.echo("nothing new to learn; declined earlier (use --force to commit anyway): " + "; ".join(
                f"{p}: {why}" for p, why in status["declined_phases"].items()))
        else:
            click.echo("nothing to learn: every phase is learned" if status["phases"]
                       else "nothing to learn: the vault has no phases")
    for p in report["phases"]:
        if not p["committed"]:
            click.echo(f"{p['phase']}: kept the current model ({p['links']} links, {p['steps']} steps in "
                       f"{p['seconds']:.1f}s): {p['reason']}")
            continue
        click.echo(f"{p['phase']}: {p['links']} links, {p['steps']} steps in {p['seconds']:.1f}s; "
                   f"{'committed without passing validation' if p['forced'] else 'validated'}: {p['reason']}; "
                   f"re-embedded {p['reembedded']} notes ({p['reembedded_share']:.1%}); "
                   f"drift {p['drift_cosine']:.4f} mean cosine, top-10 changed for {p['top10_changed']:.1%} "
                   f"of old notes")


@cli.command("eval")
@vault_arguments
@click.option("--strategies", default="frozen,full,lora,ewc,sparse,vaultlearn,propagate,adapter,joint",
              show_default=True,
              help="Comma-separated strategies (frozen, full, lora, ewc, sparse, vaultlearn and its ablations) and "
                   "references (propagate, adapter, joint).")
@click.option("--phase-by", type=click.Choice(["frontmatter", "tag", "folder", "date"]), default=None,
              help="Where phases come from (default: the configured order, first that fits).")
@click.option("--max-phases", type=click.IntRange(1), default=None, help="Only the first N phases.")
@click.option("--steps", type=click.IntRange(1), default=None, help="Training steps per phase (default: config).")
@click.option("--seed", type=int, default=None, help="First seed of the held-out split and training (default: config).")
@click.option("--seeds", "n_seeds", type=click.IntRange(1), default=1, show_default=True,
              help="Run N seeds (seed, seed+1, …) and report mean ± sd of every figure.")
@click.option("--no-trace", is_flag=True,
              help="Also remove from each source note every trace of its held-out links (the link, its shown text, "
                   "the target's title and aliases as words).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default=None)
@json_option("the result")
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Also write the JSON result here.")
@click.option("--plot", type=click.Path(dir_okay=False), default=None, help="Write a PNG of R[k][j] per strategy.")
def evaluate(vault, vault_opt, strategies, phase_by, max_phases, steps, seed, n_seeds, no_trace, device, as_json,
             out, plot) -> None:
    """The continual link-prediction benchmark: strategies × phases, gain, forgetting, drift, beside the
    references. Writes nothing into the vault."""
    from dataclasses import replace

    from .eval.corpus import load_corpus
    from .eval.strategies import format_table, run_seeds
    from .plots import plot_recall_matrix

    root = _vault(vault_opt, vault)
    config = Config.load(root)
    if phase_by:
        config = replace(config, phase_sources=[phase_by])
    corpus = load_corpus(root, config, progress=not as_json)
    if len(corpus.phases) < 1 or not corpus.edges:
        raise VaultlearnError(f"{root} has no phases with links to evaluate (phases: {corpus.phases or 'none'})")
    names = [s.strip() for s in strategies.split(",") if s.strip()]
    say = None if as_json else (lambda message: click.echo(message, err=True))
    first = config.seed if seed is None else seed
    try:
        result = run_seeds(corpus, names, config, seeds=range(first, first + n_seeds), no_trace=no_trace,
                           steps=steps or config.learn_steps, device=device, max_phases=max_phases, progress=say)
    except ValueError as exc:
        raise VaultlearnError(str(exc)) from exc
    if out:
        from .atomic import atomic_write_text

        atomic_write_text(out, json.dumps(result, indent=1) + "\n")
    if plot:
        plot_recall_matrix(result, plot)
    if as_json:
        _echo_json(result)
    else:
        click.echo(format_table(result))


@cli.group()
def report() -> None:
    """Reports on what was learned."""


@report.command("overlap")
@vault_arguments
@json_option("the overlap matrices")
@click.option("--png", type=click.Path(dir_okay=False), default=None,
              help="Heatmap picture (default: VAULT/.vaultlearn/overlap.png).")
def report_overlap(vault: str | None, vault_opt: str | None, as_json: bool, png: str | None) -> None:
    """Fisher overlap between learned phases, per parameter group: 1 = they rely on the same parameters."""
    from .model.overlap import overlap_table
    from .plots import plot_overlap

    service = _service(_vault(vault_opt, vault), create=False)
    table = overlap_table(service.paths.model)
    if len(table["phases"]) < 2:
        raise VaultlearnError("fewer than two phases are learned: run `vaultlearn learn` first")
    png_path = Path(png) if png else service.paths.overlap_png
    plot_overlap(table, png_path)
    if as_json:
        _echo_json({**table, "png": str(png_path)})
        return
    width = max(len(p) for p in table["phases"])
    for group, matrix in table["groups"].items():
        click.echo(f"\n{group}")
        click.echo(" " * (width + 1) + " ".join(f"{n + 1:>5}" for n in range(len(matrix))))
        for n, (phase, row) in enumerate(zip(table["phases"], matrix), 1):
            cells = " ".join("    -" if v is None else f"{v:5.2f}" for v in row)
            click.echo(f"{phase:<{width}} {cells}   ({n})")
    click.echo(f"\nheatmap: {png_path}")


@cli.command()
@vault_arguments
@click.option("--port", type=click.IntRange(0, 65535), default=None, help="Port (0 picks a free one).")
@click.option("--host", default=None, help="Interface to bind (default 127.0.0.1).")
@click.option("--allow-remote", is_flag=True, help="Allow binding to a non-loopback interface.")
def watch(vault: str | None, vault_opt: str | None, port: int | None, host: str | None, allow_remote: bool) -> None:
    """Run the daemon: follow the vault's changes, learn in the background, serve the local API."""
    from .daemon.process import run_daemon

    root = _vault(vault_opt, vault)
    sys.exit(run_daemon(root, Config.load(root), host=host, port=port, allow_remote=allow_remote))


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
