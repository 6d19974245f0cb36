"""The ``vaultlearn watch`` process: lock, discovery files, the writer thread, background learning, signals.

One process per vault (``flock`` on ``VAULT/.vaultlearn/daemon.lock``; the kernel drops it when the process
dies, so a killed daemon never blocks the next). Threads: the watchdog observer feeds the watcher; ONE writer
thread runs every state change (``index``, ``rename``, ``learn``) in order; uvicorn serves the API from its own
thread and reads the last consistent state concurrently. The main thread only waits for SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import logging
import os
import secrets
import signal
import socket
import sys
import threading
import time
from collections import deque
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from vaultlearn.atomic import atomic_write_text
from vaultlearn.config import STATE_DIR, Config, ConfigError
from vaultlearn.daemon.watcher import Batch, VaultWatcher
from vaultlearn.errors import VaultlearnError
from vaultlearn.lock import FileLock
from vaultlearn.notices import summarise

log = logging.getLogger("vaultlearn.daemon")

DAEMON_FILE = "daemon.json"
TOKEN_FILE = "token"
LOCK_FILE = "daemon.lock"
PRELOAD_GRACE_SECONDS = 2.0  # the model starts loading this long after the API serves, if no request came
SHUTDOWN_WAIT_SECONDS = 10.0  # then the job is abandoned: every state change is crash-safe


class LearningAbandoned(Exception):
    """Raised from the learning progress callback to stop a learning job at shutdown."""


class LearnPolicy:
    """When to learn in the background: a pending phase has ``min_new_links`` new links and the vault was quiet.

    Phases are learned in their order, so the phase proposed is always the first pending one (learning it
    may be what a later, ready phase waits for). A phase that was just tried is not proposed again until its
    count of new links changes, so a failing learning job does not loop.
    """

    def __init__(self, min_new_links: int, quiet_seconds: float):
        self.min_new_links = max(1, min_new_links)
        self.quiet_seconds = quiet_seconds
        self._tried: dict[str, int] = {}

    def ready_phase(self, status: dict) -> str | None:
        """The phase to learn now given the service's status, or None."""
        pending = status.get("pending_phases") or []
        new = status.get("new_links_by_phase") or {}
        if not any(new.get(p, 0) >= self.min_new_links for p in pending):
            return None
        first = pending[0]
        return None if self._tried.get(first) == new.get(first, 0) else first

    def tried(self, phase: str, status: dict) -> None:
        """Remember the new-link count a phase had when it was learned (or failed to be)."""
        self._tried[phase] = (status.get("new_links_by_phase") or {}).get(phase, 0)


class Writer:
    """The single writer thread: applies watcher batches, runs queued jobs, learns when the policy says so.

    Implements the API's ``DaemonControl``: ``snapshot``, ``learning``, ``request_reindex``, ``request_learn``.
    """

    def __init__(self, service, watcher: VaultWatcher, policy: LearnPolicy, wake: threading.Event, *,
                 recheck_seconds: float = 2.0):
        self.service = service
        self.watcher = watcher
        self.policy = policy
        self.recheck_seconds = recheck_seconds
        self._wake = wake
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._jobs: deque[tuple[str, str | None]] = deque([("reindex", None)])  # startup reconcile first
        self._state = "indexing"
        self._learning: dict = {"running": False, "phase": None, "progress": None, "result": None,
                                "error": None}
        self._applied = 0
        self._policy_checked: int | None = None  # the batch count at the last policy check
        self._last_change: dict | None = None
        self._last_error: str | None = None
        self._model = "loading"
        self._preload_started = False
        self._thread = threading.Thread(target=self._run, name="vaultlearn-writer", daemon=True)

    # --- control (any thread) --------------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def preload_model(self) -> None:
        """Load the model in a background thread (once), so the first saved note does not wait for it."""
        with self._lock:
            if self._preload_started:
                return
            self._preload_started = True
        threading.Thread(target=self._preload_model, name="vaultlearn-model", daemon=True).start()

    def _preload_model(self) -> None:
        try:
            self.service.encoder()
            state = "loaded"
        except Exception as exc:  # the first note to embed loads it again and reports the error
            log.warning("loading the model failed: %s", exc)
            state = f"failed: {type(exc).__name__}: {exc}"
        with self._lock:
            self._model = state

    def stop(self, timeout: float = SHUTDOWN_WAIT_SECONDS) -> bool:
        """Stop after the current job (learning is abandoned at its next progress step); True when stopped."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def request_reindex(self) -> None:
        self._queue(("reindex", None))

    def request_learn(self, phase: str | None) -> None:
        self._queue(("learn", phase))

    def snapshot(self) -> dict:
        with self._lock:
            learning = {k: self._learning[k] for k in ("phase", "progress")} if self._learning["running"] else None
            return {
                "state": self._state,
                "model": self._model,
                "learning": learning,
                "pending_changes": self.watcher.pending,
                "queued_jobs": [kind for kind, _ in self._jobs],
                "applied_batches": self._applied,
                "last_change": self._last_change,
                "last_error": self._last_error,
            }

    def learning(self) -> dict:
        with self._lock:
            return dict(self._learning)

    # --- the writer thread -----------------------------------------------------------------------------
    def _queue(self, job: tuple[str, str | None]) -> None:
        with self._lock:
            if job not in self._jobs:
                self._jobs.append(job)
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                worked = self._step()
            except Exception as exc:  # a failed job must not kill the daemon
                log.exception("job failed")
                with self._lock:
                    self._last_error = f"{type(exc).__name__}: {exc}"
                worked = False
            if not worked:
                due = self.watcher.due_in()
                self._wake.wait(self.recheck_seconds if due is None else min(due, self.recheck_seconds))

    def _step(self) -> bool:
        batch = self.watcher.take()
        if batch is not None:
            self._apply(batch)
            return True
        with self._lock:
            job = self._jobs.popleft() if self._jobs else None
        if job is not None:
            kind, phase = job
            if kind == "reindex":
                self._reconcile()
            else:
                self._learn(phase)
            return True
        phase = self._background_phase()
        if phase is not None:
            log.info("phase %s has enough new links and the vault is quiet: learning it", phase)
            self._learn(phase)
            return True
        return False

    def _apply(self, batch: Batch) -> None:
        try:
            with self._busy("indexing"):
                for old, new in batch.moves:
                    self.service.rename(old, new)
                if batch.rescan:
                    report = self.service.index()
                else:
                    report = self.service.index(batch.paths) if batch.paths else {}
        except Exception:
            self.request_reindex()  # these changes are not applied: a reconcile will pick them up
            raise
        self._record(report, batch)
        if batch.rescan or batch.paths or batch.moves:
            log.info("applied %d move(s), %s: %s", len(batch.moves),
                     "full reconcile" if batch.rescan else f"{len(batch.paths)} path(s)", _summary(report))

    def _reconcile(self) -> None:
        with self._busy("indexing"):
            report = self.service.index()
        self._record(report, Batch(rescan=True))
        log.info("reconciled the vault: %s", _summary(report))

    def _record(self, report: dict, batch: Batch) -> None:
        for line in summarise(report.get("warnings", [])):
            log.warning("%s", line)
        with self._lock:
            self._applied += 1
            self._last_error = None
            self._last_change = {
                "moves": len(batch.moves), "paths": len(batch.paths), "rescan": batch.rescan,
                **{k: report.get(k, 0) for k in ("added", "updated", "deleted", "embedded", "seconds")},
            }

    def _background_phase(self) -> str | None:
        """A phase to learn now; the service is asked only when something was applied since it last was."""
        if self.watcher.quiet_for() < self.policy.quiet_seconds or self.watcher.pending:
            return None
        if self._policy_checked == self._applied:
            return None
        self._policy_checked = self._applied
        return self.policy.ready_phase(self.service.status())

    def _learn(self, phase: str | None) -> None:
        with self._lock:
            self._learning = {"running": True, "phase": phase, "progress": None, "result": None, "error": None}
        result, error = None, None
        try:
            with self._busy("learning"):
                result = self.service.learn(phase, progress=self._progress)
            log.info("learned %s; learned phases now: %s", phase or "the pending phases",
                     ", ".join(result.get("learned_phases", [])))
        except LearningAbandoned:
            error = "abandoned at shutdown; the previous model stays in use"
            log.info("learning abandoned at shutdown")
        except Exception as exc:  # reported over the API; the daemon keeps serving the previous model
            expected = isinstance(exc, VaultlearnError)
            error = str(exc) if expected else f"{type(exc).__name__}: {exc}"
            log.warning("learning %s failed: %s", phase or "the pending phases", error, exc_info=not expected)
        finally:
            if phase is not None:
                self.policy.tried(phase, self.service.status())
            self._policy_checked = None  # other phases may be ready now
            with self._lock:
                self._learning.update(running=False, result=result, error=error)

    def _progress(self, info: dict) -> None:
        """The service's progress callback: ``{"phase": name, "progress": fraction}``."""
        if self._stop.is_set():
            raise LearningAbandoned()
        with self._lock:
            self._learning.update(phase=info.get("phase", self._learning["phase"]), progress=info.get("progress"))

    @contextmanager
    def _busy(self, state: str):
        with self._lock:
            self._state = state
        try:
            yield
        finally:
            with self._lock:
                self._state = "idle"


def _summary(report: dict) -> str:
    return ", ".join(f"{k} {report[k]}" for k in ("added", "updated", "deleted", "embedded", "seconds")
                     if k in report)


# --- process: lock, discovery, binding ---------------------------------------------------------------------
def running_daemon(vault: Path) -> dict | None:
    """The discovery record of the daemon serving ``vault``; None when none runs (a stale file is ignored)."""
    state = Path(vault) / STATE_DIR
    try:
        info = json.loads((state / DAEMON_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    lock = FileLock(state / LOCK_FILE)
    if lock.acquire():  # nobody holds it: the file is left over from a killed daemon
        lock.release()
        return None
    return info


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: a free one)."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


class AfterFirstResponse:
    """ASGI wrapper: calls ``callback`` once, when the first HTTP response has been sent."""

    def __init__(self, app, callback):
        self.app = app
        self._callback = callback
        self._done = False

    async def __call__(self, scope, receive, send) -> None:
        if self._done or scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def sending(message) -> None:
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body") and not self._done:
                self._done = True
                self._callback()

        await self.app(scope, receive, sending)


def start_http(app, sock: socket.socket):
    """Serve ``app`` on ``sock`` from a thread (signals stay with the main thread); returns once listening.

    Returns ``(server, thread)``; ``server.started`` is False when it could not start.
    """
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                                           timeout_graceful_shutdown=2))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="vaultlearn-http", daemon=True)
    thread.start()
    while not server.started and thread.is_alive():
        time.sleep(0.01)
    return server, thread


class Discovery:
    """``daemon.json`` and ``token`` under the state folder: written once serving, removed on clean exit."""

    def __init__(self, state: Path):
        self.info_path = state / DAEMON_FILE
        self.token_path = state / TOKEN_FILE

    def clear_stale(self) -> None:
        """Remove files left by a daemon that died without cleaning up (called with the lock held)."""
        if self.info_path.exists() or self.token_path.exists():
            try:
                pid = json.loads(self.info_path.read_text(encoding="utf-8")).get("pid")
            except (OSError, ValueError):
                pid = None
            log.warning("replacing the discovery files of a daemon that is gone (pid %s)", pid)
            self.remove()

    def write(self, host: str, port: int, token: str) -> None:
        atomic_write_text(self.token_path, token + "\n", mode=0o600)
        info = {"host": host, "port": port, "pid": os.getpid(),
                "started": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        atomic_write_text(self.info_path, json.dumps(info, indent=2) + "\n", mode=0o600)

    def remove(self) -> None:
        self.info_path.unlink(missing_ok=True)
        self.token_path.unlink(missing_ok=True)


# --- run --------------------------------------------------------------------------------------------------
def run_daemon(vault: Path, config: Config, *, host: str | None = None, port: int | None = None,
               allow_remote: bool = False) -> int:
    """Watch ``vault`` and serve the API until SIGINT/SIGTERM. Returns the exit code (0 on clean shutdown)."""
    if not logging.getLogger().handlers:  # concise: our own news, and only warnings from libraries
        logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
        logging.getLogger("vaultlearn").setLevel(logging.INFO)
    host = host or config.host
    port = config.port if port is None else port
    if not allow_remote and not is_loopback(host):
        log.error("refusing to serve on %s: the API would be reachable from other machines "
                  "(pass --allow-remote to do it anyway)", host)
        return 2
    vault = Path(vault).expanduser()
    if not vault.is_dir():
        log.error("%s is not a folder: give the path of an Obsidian vault", vault)
        return 1
    # OpenMP threads (torch, faiss) spin while they wait for each other; beside other busy programs on a
    # 2-core laptop that made one note's re-index 5-8x slower (measured: 0.9-1.5 s against 0.2 s passive).
    # Set before torch and faiss are loaded, which is later, in _serve.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    state = vault.resolve() / STATE_DIR
    state.mkdir(exist_ok=True)
    lock = FileLock(state / LOCK_FILE)
    if not lock.acquire():
        other = running_daemon(vault) or {}
        log.error("another vaultlearn daemon serves %s (pid %s, port %s)", vault, other.get("pid", "?"),
                  other.get("port", "?"))
        return 1
    try:
        discovery = Discovery(state)
        discovery.clear_stale()
        try:
            sock = bind_socket(host, port)
        except OSError as exc:
            log.error("cannot listen on %s:%s: %s", host, port, exc.strerror or exc)
            return 1
        return _serve(vault, config, sock, discovery)
    except VaultlearnError as exc:
        log.error("%s", exc)
        return 1
    finally:
        lock.release()


def _serve(vault: Path, config: Config, sock: socket.socket, discovery: Discovery) -> int:
    from vaultlearn.daemon.api import create_app
    from vaultlearn.service import VaultService

    stop, wake = threading.Event(), threading.Event()
    _install_signal_handlers(stop)
    service = VaultService(vault, config)
    watcher = VaultWatcher(service.vault, ignore_globs=config.ignore, debounce=config.debounce_seconds,
                           on_event=wake.set)
    writer = Writer(service, watcher, LearnPolicy(config.learn_min_new_links, config.learn_quiet_seconds), wake)
    token = secrets.token_urlsafe(32)
    watcher.start()  # before the startup reconcile, so nothing that changes during it is missed
    writer.start()
    # The model's import would slow the first suggestions on a small machine: it starts loading once the API
    # has answered its first request, or PRELOAD_GRACE_SECONDS after it serves.
    server, http = start_http(AfterFirstResponse(create_app(service, writer, token), writer.preload_model), sock)
    host, port = sock.getsockname()[:2]
    code = 0
    if server.started:
        grace = threading.Timer(PRELOAD_GRACE_SECONDS, writer.preload_model)
        grace.daemon = True
        grace.start()
        discovery.write(host, port, token)
        log.info("serving %s on http://%s:%d (pid %d)", service.vault, host, port, os.getpid())
        while not stop.wait(0.5):
            if not http.is_alive():
                log.error("the HTTP server stopped unexpectedly")
                code = 1
                break
    else:
        code = 1
    log.info("shutting down")
    server.should_exit = True
    http.join(5)
    discovery.remove()
    watcher.stop()
    if not writer.stop():
        # Exit now, still holding the lock, rather than let a new daemon in while the job writes: this is
        # a kill, which every state change survives (the previous committed state stays).
        log.warning("the current job did not finish in %.0f s; abandoning it", SHUTDOWN_WAIT_SECONDS)
        logging.shutdown()
        os._exit(code)
    service.close()
    sock.close()
    return code


def _install_signal_handlers(stop: threading.Event) -> None:
    def handle(signum, frame):
        if stop.is_set():
            log.warning("second signal: exiting now")
            os._exit(128 + signum)
        stop.set()

    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGTERM, handle)


def main(argv: list[str] | None = None) -> int:
    """``python -m vaultlearn.daemon.runner VAULT [--port P] [--host H] [--allow-remote]``."""
    parser = argparse.ArgumentParser(prog="vaultlearn watch", description=run_daemon.__doc__)
    parser.add_argument("vault", type=Path)
    parser.add_argument("--port", type=int, default=None, help="TCP port (0: a free one; default: config)")
    parser.add_argument("--host", default=None, help="address to bind (default: config, 127.0.0.1)")
    parser.add_argument("--allow-remote", action="store_true", help="allow a non-loopback --host")
    args = parser.parse_args(argv)
    try:
        config = Config.load(args.vault)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return run_daemon(args.vault, config, host=args.host, port=args.port, allow_remote=args.allow_remote)


if __name__ == "__main__":
    sys.exit(main())
