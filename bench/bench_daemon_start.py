"""`vaultlearn watch` start-up: a restart on an unchanged vault serving suggestions, and the first saved note.

A synthetic vault (bench/synth_vault.py, default 10,000 notes) is indexed once in-process with stand-in vectors
(seeded random: suggest never runs the model for an indexed note, and an unchanged vault is not re-embedded).
Then, with a real daemon process and the default model: (1) process start → first ``GET /suggest`` answered,
(2) process start → model loaded in the background, (3) a note saved right after the daemon serves → served
(waits for the model if it is still loading), (4) a note saved once the model is loaded → served. Baselines in
the same run: a ``vaultlearn suggest`` CLI process (a cold process answering one suggestion) for (1), and the
same change through the service in-process with the model loaded (``index([path])`` + ``suggest``) for (4).

    python bench/bench_daemon_start.py [--notes 10000]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the daemon does, so the baseline is comparable
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))
from bench_index import FreeEncoder  # noqa: E402
from synth_vault import write_vault  # noqa: E402
from tests.conftest import DaemonProcess, poll  # noqa: E402

from vaultlearn.paths import StatePaths  # noqa: E402
from vaultlearn.service import VaultService  # noqa: E402

TEXT = "Notes about {0}: sourdough starters, rye loaves and the oven at {0} degrees. Baking bread is patient work.\n"


def served(daemon: DaemonProcess, note: str) -> bool:
    return daemon.suggest(note).status_code == 200


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notes", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        vault = write_vault(Path(tmp) / "vault", args.notes)
        StatePaths(vault).root.mkdir(exist_ok=True)
        StatePaths(vault).config.write_text("learn_quiet_seconds = 86400.0\n")
        service = VaultService(vault)
        service._encoder = FreeEncoder()
        service.index()
        probe = service.store.notes()[0].path
        service.close()

        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "vaultlearn.cli", "suggest", probe, "--vault", str(vault), "--json"],
                       check=True, capture_output=True)
        cli = time.perf_counter() - t

        started = time.monotonic()
        daemon = DaemonProcess(vault, Path(tmp) / "daemon.log").wait_serving()
        try:
            poll(lambda: served(daemon, probe), 120, "a suggestion", interval=0.02)
            restart = time.monotonic() - started
            (vault / "Early.md").write_text(TEXT.format(200))
            saved = time.monotonic()
            poll(lambda: served(daemon, "Early.md"), 300, "the early note", interval=0.02)
            early = time.monotonic() - saved
            poll(lambda: daemon.status()["model"] == "loaded", 300, "the model")
            loaded = time.monotonic() - started
            daemon.wait_idle()
            (vault / "Later.md").write_text(TEXT.format(220))
            saved = time.monotonic()
            poll(lambda: served(daemon, "Later.md"), 60, "the later note", interval=0.02)
            later = time.monotonic() - saved
        finally:
            daemon.stop()

        service = VaultService(vault)
        (vault / "Warm.md").write_text(TEXT.format(230))
        service.index(["Warm.md"])  # model loaded, first forward pass and index load done, as in the daemon
        service.suggest("Warm.md")
        (vault / "Direct.md").write_text(TEXT.format(240))
        t = time.perf_counter()
        service.index(["Direct.md"])
        service.suggest("Direct.md")
        direct = time.perf_counter() - t
        service.close()
    print(f"machine: {os.cpu_count()} CPUs, python {sys.version.split()[0]}; {args.notes} synthetic notes, "
          f"stand-in vectors, default model for saved notes")
    print(f"restart -> first suggestion served   : {restart:6.2f} s  (baseline: one `vaultlearn suggest` process "
          f"{cli:.2f} s; ratio {restart / cli:.2f}x)")
    print(f"restart -> model loaded (background) : {loaded:6.2f} s")
    print(f"note saved as soon as serving        : {early:6.2f} s to served (waits for the model if still loading)")
    print(f"note saved once the model is loaded  : {later:6.2f} s to served (baseline in-process index+suggest "
          f"{direct:.2f} s; ratio {later / direct:.2f}x)")


if __name__ == "__main__":
    main()
