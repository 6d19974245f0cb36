"""The ``vaultlearn watch`` process: lock, discovery files, the HTTP server, signals and the run loop.

One process per vault (``flock`` on ``VAULT/.vaultlearn/daemon.lock``; the kernel drops it when the process
dies, so a killed daemon never blocks the next). Threads: the watchdog observer feeds the watcher; ONE writer
thread (:mod:`vaultlearn.daemon.writer`) runs every state change in order; uvicorn serves the API from its own
thread and reads the last consistent state concurrently. The main thread only waits for SIGINT/SIGTERM.
"""

from __future__ import annotations

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
from datetime import datetime, timezone
from pathlib import Path

from vaultlearn.atomic import atomic_write_text
from vaultlearn.config import Config
from vaultlearn.daemon.client import running_daemon
from vaultlearn.daemon.watcher import VaultWatcher
from vaultlearn.daemon.writer import SHUTDOWN_WAIT_SECONDS, LearnPolicy, Writer
from vaultlearn.errors import VaultlearnError
from vaultlearn.lock import FileLock
from vaultlearn.paths import StatePaths

log = logging.getLogger("vaultlearn.daemon")

PRELOAD_GRACE_SECONDS = 2.0  # the model starts loading this long after the API serves, if no request came


# --- lock, discovery, binding ------------------------------------------------------------------------------
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

    def __init__(self, paths: StatePaths):
        self.info_path = paths.daemon_info
        self.token_path = paths.token

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
    paths = StatePaths(vault.resolve())
    paths.root.mkdir(exist_ok=True)
    lock = FileLock(paths.daemon_lock)
    if not lock.acquire():
        other = running_daemon(vault) or {}
        log.error("another vaultlearn daemon serves %s (pid %s, port %s)", vault, other.get("pid", "?"),
                  other.get("port", "?"))
        return 1
    try:
        discovery = Discovery(paths)
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
    service = VaultService(vault, config, long_lived=True)
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
