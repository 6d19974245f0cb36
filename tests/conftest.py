"""Shared fixtures and helpers: copies of the repo's sample vault, the real vaults when ../shared is present,
the console entry point in a subprocess, and real daemon processes."""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from vaultlearn.config import Config
from vaultlearn.eval.protocol import EvalCorpus
from vaultlearn.paths import STATE_DIR

REPO = Path(__file__).resolve().parents[1]
SAMPLE_VAULT = REPO / "sample_vault"
SHARED_VAULTS = REPO.parent / "shared" / "vaults"


@pytest.fixture
def sample_vault(tmp_path) -> Path:
    """A fresh copy of sample_vault/ (tests never write into the repository's own vault)."""
    target = tmp_path / "vault"
    shutil.copytree(SAMPLE_VAULT, target, ignore=shutil.ignore_patterns(".vaultlearn"))
    return target


@pytest.fixture(scope="module")
def indexed_sample_vault(tmp_path_factory) -> Path:
    """A copy of sample_vault/ indexed once with the real default model, shared by a module's tests."""
    from vaultlearn.service import VaultService

    target = tmp_path_factory.mktemp("indexed") / "vault"
    shutil.copytree(SAMPLE_VAULT, target, ignore=shutil.ignore_patterns(".vaultlearn"))
    service = VaultService(target)
    service.index()
    service.close()
    return target


def shared_vault(name: str) -> Path:
    """A real development vault under ../shared/vaults, or skip the test when it is absent."""
    path = SHARED_VAULTS / name / "vault"
    if not path.is_dir():
        pytest.skip(f"{path} is not present")
    return path


def pytest_collection_modifyitems(config, items):
    """GPU tests skip cleanly where torch sees no CUDA device."""
    if not any("gpu" in item.keywords for item in items):
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


# --- the command line in a subprocess ----------------------------------------------------------------------
def run(*args, cwd=None):
    """Run the real console entry point in a subprocess (exit codes and stderr as a user sees them)."""
    return subprocess.run([sys.executable, "-m", "vaultlearn.cli", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, env={**os.environ, "PYTHONWARNINGS": "ignore"})


# a small memory and a few steps: learning on the sample vault in seconds
TINY = """memory_slots = 1024
memory_topk = 8
memory_heads = 2
learn_steps = 4
learn_batch_size = 8
learn_top_t = 64
learn_max_tokens = 64
fisher_samples = 8
map_min_phase_links = 1
"""  # map_min_phase_links: the tiny phases move their notes (test_validation sets it)


@pytest.fixture(scope="session")
def indexed_tiny_template(tmp_path_factory) -> Path:
    """The sample vault with the ``TINY`` config, indexed once through the CLI; tests take copies."""
    target = tmp_path_factory.mktemp("tiny") / "vault"
    shutil.copytree(SAMPLE_VAULT, target, ignore=shutil.ignore_patterns(".vaultlearn"))
    (target / ".vaultlearn").mkdir()
    (target / ".vaultlearn" / "config.toml").write_text(TINY)
    indexed = run("index", target, "-q")
    assert indexed.returncode == 0, indexed.stderr
    return target


@pytest.fixture
def tiny_vault(indexed_tiny_template, tmp_path) -> Path:
    """A fresh copy of the indexed tiny vault, its state included (file times kept: nothing to index again)."""
    target = tmp_path / "vault"
    shutil.copytree(indexed_tiny_template, target)
    return target


# the hostile vault: the bad notes that can be committed (test_hostile_vault.py adds the ones that cannot)
FIXTURE = REPO / "tests" / "fixtures" / "hostile_vault"
_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH, _PR_CAPBSET_DROP = 1, 2, 24


def drop_file_capabilities() -> None:
    """In a child before exec: as root, give up reading files regardless of their mode (mode 000 holds)."""
    if os.geteuid() == 0:
        libc = ctypes.CDLL(None, use_errno=True)
        for cap in (_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH):
            if libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
                raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def run_cli(*args) -> subprocess.CompletedProcess:
    """The real console entry point in a subprocess that cannot read mode-000 files."""
    return subprocess.run([sys.executable, "-m", "vaultlearn.cli", *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"}, preexec_fn=drop_file_capabilities)


def mode_000_holds(path: Path) -> bool:
    """Whether a child started by these tests is refused a mode-000 file (root needs its capabilities dropped)."""
    try:
        child = subprocess.run([sys.executable, "-c", f"open({str(path)!r}).read()"], capture_output=True,
                               preexec_fn=drop_file_capabilities)
    except subprocess.SubprocessError:  # prctl refused: no CAP_SETPCAP in this container
        return False
    return child.returncode != 0 and b"PermissionError" in child.stderr


# --- daemon processes ------------------------------------------------------------------------------------
DAEMON_CONFIG = "debounce_seconds = 0.2\nlearn_quiet_seconds = 3600.0\n"
WATCH = [sys.executable, "-m", "vaultlearn.cli", "watch"]  # `vaultlearn watch` of this checkout

NOTES = {
    "Kitchen/Sourdough.md": "Sourdough bread rises with a wild yeast starter. Feed the starter flour and water, "
                            "then bake the loaf in a hot dutch oven until the crust is dark.",
    "Kitchen/Rye bread.md": "Dense rye loaves use a sour starter, caraway seeds and a long cold fermentation "
                            "before baking. [[Sourdough]]",
    "Code/Asyncio.md": "Python asyncio runs coroutines on an event loop; await suspends a task until a future "
                       "completes. Tasks are scheduled cooperatively.",
    "Code/Threads.md": "Python threads share memory; the GIL serialises bytecode and locks protect shared state "
                       "between threads. [[Asyncio]]",
}


class DaemonProcess:
    """``vaultlearn watch VAULT --port 0`` with an authenticated client once it serves."""

    def __init__(self, vault: Path, log: Path, *args: str):
        self.vault = vault
        self.log = log
        self.proc = subprocess.Popen([*WATCH, str(vault), "--port", "0", *args], stdout=subprocess.DEVNULL,
                                     stderr=open(log, "ab"))
        self.client: httpx.Client | None = None

    @property
    def state(self) -> Path:
        return self.vault / STATE_DIR

    def wait_serving(self, timeout: float = 120) -> DaemonProcess:
        """Wait for this process's daemon.json; connect with the token."""
        info = poll(self._info, timeout, "daemon.json of the new daemon")
        token = (self.state / "token").read_text().strip()
        self.client = httpx.Client(base_url=f"http://{info['host']}:{info['port']}",
                                   headers={"Authorization": f"Bearer {token}"}, timeout=30)
        return self

    def _info(self) -> dict | None:
        assert self.proc.poll() is None, f"daemon exited with {self.proc.returncode}:\n{self.log.read_text()}"
        try:
            info = json.loads((self.state / "daemon.json").read_text())
        except (OSError, ValueError):
            return None
        return info if info["pid"] == self.proc.pid else None

    def status(self) -> dict:
        return self.client.get("/status").json()

    def wait_idle(self, timeout: float = 120) -> dict:
        """Wait until every change seen so far is applied and no job is queued."""

        def idle():
            status = self.status()
            busy = status["state"] != "idle" or status["pending_changes"] or status["queued_jobs"]
            return None if busy else status

        time.sleep(0.3)  # let the kernel deliver the last events
        return poll(idle, timeout, "an idle daemon", interval=0.25)

    def suggest(self, note: str, k: int = 5) -> httpx.Response:
        return self.client.get("/suggest", params={"note": note, "k": k})

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        if self.client:
            self.client.close()
        self.proc.send_signal(sig)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.client:
            self.client.close()
        self.proc.kill()
        self.proc.wait(10)


def poll(check, timeout: float, what: str, interval: float = 0.05):
    """Call ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def make_vault(root: Path) -> Path:
    vault = root / "vault"
    shutil.copytree(SAMPLE_VAULT, vault)
    for rel, text in NOTES.items():
        (vault / rel).parent.mkdir(parents=True, exist_ok=True)
        (vault / rel).write_text(text)
    (vault / STATE_DIR).mkdir(exist_ok=True)
    (vault / STATE_DIR / "config.toml").write_text(DAEMON_CONFIG)
    return vault


def paths(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [s["path"] for s in response.json()["suggestions"]]


FILLER = (
    "river stone paper window garden silver morning letter window bridge quiet number table light yellow market "
    "winter candle forest music engine coffee summer pencil island mirror planet ticket rocket shadow"
).split()
MARKERS = ["zorbex", "quillon", "varnak", "drelith", "pomaru", "skivet", "talbrin", "wexolo", "brunmig", "yestrel"]


def synthetic_corpus(seed: int = 0) -> EvalCorpus:
    """Two phases × 5 clusters × 8 notes: a rare marker word among filler; links i→i+1, i→i+3 in a cluster."""
    rng = np.random.default_rng(seed)
    paths, texts, phase_of, edges = [], [], [], []
    for p, phase in enumerate(["alpha", "beta"]):
        for c in range(5):
            marker = MARKERS[5 * p + c]
            first = len(paths)
            for i in range(8):
                words = rng.choice(FILLER, size=20).tolist()
                words.insert(int(rng.integers(20)), marker)
                paths.append(f"{phase}/{marker}-{i}.md")
                texts.append(" ".join(words))
                phase_of.append(phase)
            edges += [(first + i, first + (i + step) % 8) for i in range(8) for step in (1, 3)]
    for i in range(10):  # notes in no phase: the background before the first phase
        paths.append(f"misc-{i}.md")
        texts.append(" ".join(rng.choice(FILLER, size=21)))
        phase_of.append(None)
    return EvalCorpus(paths, texts, phase_of, ["alpha", "beta"], edges)


def tiny_config(**kw) -> Config:
    base = dict(
        max_seq_length=32, memory_slots=1024, memory_topk=4, memory_heads=1, memory_key_dim=16,
        learn_steps=30, learn_batch_size=8, learn_lr=2.0, learn_top_t=4096, learn_max_tokens=32, fisher_samples=8,
        cpu_precision="float32",  # the learner's float32 forward and encode() agree to 1e-5 only in float32
        map_min_phase_links=1,  # the tiny tasks' phases move their notes (the rule's own tests set it)
    )
    base.update(kw)
    return Config(**base)
