"""`vaultlearn watch`: note save → fresh suggestion over the API (p50/p95), and a burst of 1,000 writes.

A daemon process serves a vault of ~1,060 notes (the sample vault + 1,000 synthetic notes, bench/synth_vault.py)
with the default model and the default debounce. Latency: a probe note is rewritten as a near copy of a
different sample note each time (a plain write, as an editor saves); the clock runs from just before the
write until ``GET /suggest`` ranks that note first. Burst: 1,000 new notes written as fast as possible, every
tenth rewritten; the clock runs until the daemon reports them all applied; nothing may be lost (checked
against the files). Baseline, in the same run on a copy of the same state: the same work through the service
in-process (``index(paths)`` + ``suggest``) with no watcher, no debounce and no HTTP; printed as a ratio.

    python bench/bench_daemon.py [--saves 30] [--burst 1000] [--vault REAL_VAULT]

With ``--vault`` the daemon serves a copy of that real vault instead (its notes as they are); the probe copies
its notes, taking the first notes (by seeded order) whose copy the in-process service ranks first.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the daemon does, so the baseline is comparable
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))
from synth_vault import write_vault  # noqa: E402
from tests.conftest import SAMPLE_VAULT, DaemonProcess, poll  # noqa: E402
from tests.test_daemon_e2e import assert_consistent  # noqa: E402

from vaultlearn.config import Config  # noqa: E402
from vaultlearn.paths import STATE_DIR, StatePaths  # noqa: E402
from vaultlearn.service import VaultService  # noqa: E402

PROBE = "Probe.md"
POLL_SECONDS = 0.05  # what a client polling faster would measure is at most this much lower


def _percentiles(samples: list[float]) -> tuple[float, float]:
    samples = sorted(samples)
    return samples[len(samples) // 2], samples[min(len(samples) - 1, int(len(samples) * 0.95))]


def build_vault(root: Path, real: Path | None = None) -> Path:
    if real is None:
        vault = write_vault(root / "vault", 1000)
        shutil.copytree(SAMPLE_VAULT, vault, dirs_exist_ok=True)
    else:
        vault = root / "vault"
        shutil.copytree(real, vault, ignore=shutil.ignore_patterns(STATE_DIR))
    StatePaths(vault).root.mkdir(exist_ok=True)
    StatePaths(vault).config.write_text("learn_quiet_seconds = 86400.0\n")  # no background learning
    (vault / PROBE).write_text("A probe note.\n")
    service = VaultService(vault)
    service.index()
    service.close()
    return vault


def probe_texts(vault: Path, saves: int) -> list[tuple[str, str]]:
    """``(target path, probe text)``: a near copy of a different sample note each time."""
    targets = sorted(p.relative_to(vault).as_posix() for p in (vault / "Concepts").glob("*.md"))
    return [(t, (vault / t).read_text() + f"\n\nProbe revision {i}.\n")
            for i, t in enumerate(targets[i % len(targets)] for i in range(saves))]


def real_probe_texts(vault: Path, saves: int, seed: int = 1) -> list[tuple[str, str]]:
    """Near copies of a real vault's notes whose copy the in-process service ranks first (checked on a copy)."""
    import random

    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "check"
        shutil.copytree(vault, copy)
        service = VaultService(copy)
        paths = sorted(row.path for row in service.store.notes() if row.path != PROBE)
        random.Random(seed).shuffle(paths)
        probes = []
        for target in paths:
            text = (copy / target).read_text(errors="replace") + f"\n\nProbe revision {len(probes)}.\n"
            (copy / PROBE).write_text(text)
            service.index([PROBE])
            ranked = service.suggest(PROBE, 10)
            if ranked and ranked[0].path == target:
                probes.append((target, text))
            if len(probes) == saves:
                break
        service.close()
    return probes


def burst_files(count: int) -> dict[str, str]:
    return {f"Burst/Item {i:04d}.md": f"# Item {i}\n\nBurst note {i} on topic {i % 13}. See [[Item {(i + 1) % count:04d}]].\n"
            for i in range(count)}


def daemon_saves(daemon: DaemonProcess, probes: list[tuple[str, str]]) -> tuple[list[float], list[float]]:
    latencies, index_seconds = [], []
    for target, text in probes:
        time.sleep(1.0)  # a quiet vault before each save
        started = time.perf_counter()
        (daemon.vault / PROBE).write_text(text)

        def fresh():
            response = daemon.suggest(PROBE, k=10)
            return response.status_code == 200 and response.json()["suggestions"][0]["path"] == target

        poll(fresh, 30, f"suggestions after saving a copy of {target}", interval=POLL_SECONDS)
        latencies.append(time.perf_counter() - started)
        index_seconds.append(daemon.status()["last_change"]["seconds"])
    return latencies, index_seconds


def daemon_burst(daemon: DaemonProcess, files: dict[str, str]) -> dict:
    (daemon.vault / "Burst").mkdir()
    before = daemon.wait_idle()
    started = time.perf_counter()
    for rel, text in files.items():
        (daemon.vault / rel).write_text(text)
    for rel in list(files)[::10]:
        (daemon.vault / rel).write_text(files[rel] + "\nRewritten.\n")
    written = time.perf_counter()
    expected = before["notes"] + len(files)
    poll(lambda: daemon.status()["notes"] == expected, 600, "the burst to be indexed", interval=0.5)
    after = daemon.wait_idle(timeout=600)
    done = time.perf_counter()
    return {"writes": len(files) + len(list(files)[::10]),
            "write_s": written - started, "total_s": done - started, "after_last_write_s": done - written,
            "batches": after["applied_batches"] - before["applied_batches"], "lost": expected - after["notes"]}


def direct_baseline(vault: Path, probes: list[tuple[str, str]], files: dict[str, str]) -> tuple[list[float], float]:
    """The same saves and burst through the service in-process on a copy of the state."""
    service = VaultService(vault)
    service.encoder()
    latencies = []
    for target, text in probes:
        started = time.perf_counter()
        (vault / PROBE).write_text(text)
        service.index([PROBE])
        assert service.suggest(PROBE, 10)[0].path == target
        latencies.append(time.perf_counter() - started)
    (vault / "Burst").mkdir()
    started = time.perf_counter()
    for rel, text in files.items():
        (vault / rel).write_text(text)
    for rel in list(files)[::10]:
        (vault / rel).write_text(files[rel] + "\nRewritten.\n")
    service.index(list(files))
    burst_seconds = time.perf_counter() - started
    service.close()
    return latencies, burst_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--saves", type=int, default=30)
    parser.add_argument("--burst", type=int, default=1000)
    parser.add_argument("--vault", type=Path, default=None, help="a real vault to copy instead of the synthetic one")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        vault = build_vault(tmp, args.vault)
        copy = tmp / "copy"
        shutil.copytree(vault, copy)
        notes = len(list(vault.rglob("*.md")))
        probes = real_probe_texts(vault, args.saves) if args.vault else probe_texts(vault, args.saves)
        files = burst_files(args.burst)

        daemon = DaemonProcess(vault, tmp / "daemon.log").wait_serving()
        daemon.wait_idle()
        latencies, index_seconds = daemon_saves(daemon, probes)
        burst = daemon_burst(daemon, files) if files else None
        assert daemon.stop() == 0
        assert_consistent(vault)
        direct, direct_burst = direct_baseline(copy, probes, files)

    p50, p95 = _percentiles(latencies)
    i50, i95 = _percentiles(index_seconds)
    d50, d95 = _percentiles(direct)
    config = Config()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"python {platform.python_version()}; model {config.model}; debounce {config.debounce_seconds} s; "
          f"vault {notes} notes ({args.vault.name if args.vault else 'sample vault + synthetic'})")
    print(f"save -> fresh suggestion over the API ({len(latencies)} saves): p50 {p50 * 1e3:.0f} ms, "
          f"p95 {p95 * 1e3:.0f} ms (daemon's index of the change p50 {i50 * 1e3:.0f} ms, p95 {i95 * 1e3:.0f} ms)")
    print(f"baseline in-process index(paths)+suggest: p50 {d50 * 1e3:.0f} ms, p95 {d95 * 1e3:.0f} ms "
          f"-> daemon/direct p50 = {p50 / d50:.1f}x (a closed save waits 100 ms of quiet; polled every "
          f"{POLL_SECONDS * 1e3:.0f} ms)")
    if burst is None:
        return
    print(f"burst: {burst['writes']} writes ({len(files)} new notes, every 10th rewritten) in "
          f"{burst['write_s']:.2f} s; all applied {burst['total_s']:.1f} s after the first write "
          f"({burst['after_last_write_s']:.1f} s after the last) in {burst['batches']} batches; "
          f"lost {burst['lost']}; state consistent with the files")
    print(f"baseline in-process index of the same burst: {direct_burst:.1f} s -> daemon/direct = "
          f"{burst['total_s'] / direct_burst:.2f}x")


if __name__ == "__main__":
    main()
