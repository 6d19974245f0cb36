"""The commands on learning: ``learn``, ``eval``, ``report overlap`` and ``watch`` (the daemon)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from .cli_common import echo_json, json_option, open_vault, quiet_libraries, service_for, vault_arguments
from .config import Config
from .errors import VaultlearnError


@click.command()
@vault_arguments
@click.option("--phase", default=None, help="Learn only this phase (default: every pending phase, in order).")
@click.option("--force", is_flag=True,
              help="Commit what is learned even when validation finds no gain or an earlier phase dropping.")
@json_option("the report")
def learn(vault: str | None, vault_opt: str | None, phase: str | None, force: bool, as_json: bool) -> None:
    """Learn the vault's pending phases from its links; keep each only if it gains on held-out links and no
    earlier phase drops; then refit the suggestions' reranker with what was learned."""
    from tqdm import tqdm

    if as_json or not sys.stderr.isatty():
        quiet_libraries()
    service = service_for(open_vault(vault_opt, vault), create=False)
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
        echo_json(report.to_json())
        return
    if not report.phases:
        status = service.status()
        if status.declined_phases:
            click.echo("nothing new to learn; declined earlier (use --force to commit anyway): " + "; ".join(
                f"{p}: {why}" for p, why in status.declined_phases.items()))
        else:
            click.echo("nothing to learn: every phase is learned" if status.phases
                       else "nothing to learn: the vault has no phases")
    for p in report.phases:
        if not p.committed:
            tried = f"{p.steps} steps in {p.seconds:.1f}s" if p.steps else "not trained"
            click.echo(f"{p.phase}: kept the current model ({p.links} links, {tried}): {p.reason}")
            continue
        click.echo(f"{p.phase}: {p.links} links, {p.steps} steps"
                   f"{f' from the {p.start} map' if p.start else ''} in {p.seconds:.1f}s; "
                   f"{'committed without passing validation' if p.forced else 'validated'}: {p.reason}; "
                   f"re-embedded {p.reembedded} notes ({p.reembedded_share:.1%}), vectors changed for "
                   f"{p.vectors_changed:.1%}; "
                   f"drift {p.drift_cosine:.4f} mean cosine, top-10 changed for {p.top10_changed:.1%} "
                   f"of old notes")


@click.command("eval")
@vault_arguments
@click.option("--strategies", default="frozen,full,lora,ewc,sparse,memory,vaultlearn,propagate,adapter,joint",
              show_default=True,
              help="Comma-separated strategies (frozen, full, lora, ewc, sparse, memory, vaultlearn and their "
                   "ablations) and references (propagate, adapter, joint).")
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
    from .eval.strategies import run_seeds
    from .eval.summary import format_table
    from .plots import plot_recall_matrix

    root = open_vault(vault_opt, vault)
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
        echo_json(result)
    else:
        click.echo(format_table(result))


@click.group()
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

    service = service_for(open_vault(vault_opt, vault), create=False)
    table = overlap_table(service.paths.model)
    if len(table["phases"]) < 2:
        raise VaultlearnError("fewer than two phases are learned: run `vaultlearn learn` first")
    png_path = Path(png) if png else service.paths.overlap_png
    plot_overlap(table, png_path)
    if as_json:
        echo_json({**table, "png": str(png_path)})
        return
    width = max(len(p) for p in table["phases"])
    for group, matrix in table["groups"].items():
        click.echo(f"\n{group}")
        click.echo(" " * (width + 1) + " ".join(f"{n + 1:>5}" for n in range(len(matrix))))
        for n, (phase, row) in enumerate(zip(table["phases"], matrix), 1):
            cells = " ".join("    -" if v is None else f"{v:5.2f}" for v in row)
            click.echo(f"{phase:<{width}} {cells}   ({n})")
    click.echo(f"\nheatmap: {png_path}")


@click.command()
@vault_arguments
@click.option("--port", type=click.IntRange(0, 65535), default=None, help="Port (0 picks a free one).")
@click.option("--host", default=None, help="Interface to bind (default 127.0.0.1).")
@click.option("--allow-remote", is_flag=True, help="Allow binding to a non-loopback interface.")
def watch(vault: str | None, vault_opt: str | None, port: int | None, host: str | None, allow_remote: bool) -> None:
    """Run the daemon: follow the vault's changes, learn in the background, serve the local API."""
    from .daemon.process import run_daemon

    root = open_vault(vault_opt, vault)
    sys.exit(run_daemon(root, Config.load(root), host=host, port=port, allow_remote=allow_remote))

