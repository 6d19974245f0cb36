"""Finding the daemon that serves a vault, and asking it for a note's suggestions.

The CLI asks a running daemon before ranking on its own: the daemon holds the vault's rank context in memory,
so the answer costs an HTTP round trip instead of reading the whole state (2.3 s at 100k notes). Standard
library HTTP: the CLI does not import the server's libraries for this.
"""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from pathlib import Path

from vaultlearn.index.suggest import Suggestion
from vaultlearn.lock import FileLock
from vaultlearn.paths import StatePaths

ASK_TIMEOUT_SECONDS = 10.0  # a daemon that does not answer by then is passed over: the CLI ranks on its own
WILDCARD_HOSTS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}  # listening everywhere: ask over loopback


def running_daemon(vault: Path) -> dict | None:
    """The discovery record of the daemon serving ``vault``; None when none runs (a stale file is ignored)."""
    paths = StatePaths(Path(vault))
    try:
        info = json.loads(paths.daemon_info.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    lock = FileLock(paths.daemon_lock)
    if lock.acquire():  # nobody holds it: the file is left over from a killed daemon
        lock.release()
        return None
    return info


def daemon_suggestions(vault: Path, path: str, k: int | None) -> list[Suggestion] | None:
    """The running daemon's suggestions for the note at vault path ``path``; None when no daemon serves ``vault``
    or it does not answer them, for any reason: the caller then ranks itself."""
    info = running_daemon(vault)
    if info is None:
        return None
    try:
        token = StatePaths(Path(vault)).token.read_text(encoding="utf-8").strip()
        host = WILDCARD_HOSTS.get(str(info["host"]), str(info["host"]))
        address = f"[{host}]" if ":" in host else host
        query = urllib.parse.urlencode({"note": path, **({"k": k} if k else {})})
        request = urllib.request.Request(f"http://{address}:{int(info['port'])}/suggest?{query}",
                                         headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request, timeout=ASK_TIMEOUT_SECONDS) as response:
            body = json.load(response)
    except (OSError, ValueError, KeyError, TypeError):  # no answer, an error status, or not the expected body
        return None
    if not isinstance(body, dict) or body.get("note") != path or not isinstance(body.get("suggestions"), list):
        return None
    try:
        return [Suggestion(**item) for item in body["suggestions"]]
    except TypeError:  # a daemon of another version: other fields
        return None
