"""The HTTP API over real sockets (uvicorn on a free port), with a small in-memory service and daemon."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

from vaultlearn.config import Config
from vaultlearn.daemon.api import MAX_BODY_BYTES, create_app
from vaultlearn.daemon.process import bind_socket, start_http
from vaultlearn.errors import NoteNotFoundError, NotIndexedError
from vaultlearn.index.suggest import Suggestion
from vaultlearn.reports import Status

TOKEN = "test-token-0123456789"


class MemoryService:
    """Notes are the vault's files; every other note is suggested; ``unindexed.md`` is not indexed."""

    def __init__(self, vault: Path):
        self.vault = vault
        self.config = Config()
        self.asked: list[str] = []

    def resolve_note(self, note: str) -> str:
        path = note if note.endswith(".md") else f"{note}.md"
        if not (self.vault / path).exists():
            raise NoteNotFoundError(f"no note named {note!r}")
        return path

    def suggest(self, note: str, k: int = 10) -> list[Suggestion]:
        self.asked.append(note)
        if note == "unindexed.md":
            raise NotIndexedError(f"{note} is not indexed yet")
        others = sorted(p.name for p in self.vault.glob("*.md") if p.name != note)
        return [_suggestion(name) for name in others[:k]]

    def search(self, text: str, k: int = 10) -> list[Suggestion]:
        return [_suggestion(p.name) for p in sorted(self.vault.glob("*.md")) if text in p.read_text()][:k]

    def status(self) -> Status:
        return Status(str(self.vault), len(list(self.vault.glob("*.md"))), 0, 0, [], None, {}, 0, 0, [], [], {}, {},
                      {}, {"cosine": 1.0}, 0, False, "linkmap")

    def phases(self) -> list[str]:
        return ["P1", "P2"]


def _suggestion(path: str) -> Suggestion:
    return Suggestion(path, path[:-3], 0.5, "similar text (0.50)", 0.5, 0, False, None)


class Control:
    """Records what the API asks of the daemon."""

    def __init__(self):
        self.requests: list[tuple[str, str | None]] = []

    def snapshot(self) -> dict:
        return {"state": "idle", "learning": None}

    def learning(self) -> dict:
        return {"running": False, "phase": None, "progress": None}

    def request_reindex(self) -> None:
        self.requests.append(("reindex", None))

    def request_learn(self, phase: str | None) -> None:
        self.requests.append(("learn", phase))


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    root = tmp_path_factory.mktemp("api")
    vault = root / "vault"
    vault.mkdir()
    for name, text in {"alpha.md": "about alpha", "beta.md": "about beta", "unindexed.md": "new"}.items():
        (vault / name).write_text(text)
    (root / "secret.md").write_text("outside the vault")
    os.symlink(root / "secret.md", vault / "escape.md")
    service, control = MemoryService(vault), Control()
    server, thread = start_http(create_app(service, control, TOKEN), bind_socket("127.0.0.1", 0))
    assert server.started
    host, port = server.servers[0].sockets[0].getsockname()[:2]
    url = f"http://{host}:{port}"
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10) as client:
        yield SimpleNamespace(url=url, client=client, service=service, control=control)
    server.should_exit = True
    thread.join(5)


ROUTES = [("GET", "/status"), ("GET", "/suggest?note=alpha"), ("POST", "/search"), ("POST", "/reindex"),
          ("POST", "/learn"), ("GET", "/learn"), ("GET", "/openapi.json")]


@pytest.mark.parametrize("method,route", ROUTES)
@pytest.mark.parametrize("auth", [None, "Bearer wrong", f"Basic {TOKEN}", f"Bearer {TOKEN}x"])
def test_every_route_needs_the_token(api, method, route, auth):
    headers = {"Authorization": auth} if auth else {}
    response = httpx.request(method, api.url + route, headers=headers, json={"text": "alpha"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


def test_status(api):
    body = api.client.get("/status").json()
    assert body["state"] == "idle" and body["notes"] == 4


def test_suggest(api):
    body = api.client.get("/suggest", params={"note": "alpha", "k": 2}).json()
    assert body["note"] == "alpha.md"
    assert [s["path"] for s in body["suggestions"]] == ["beta.md", "escape.md"]
    assert set(body["suggestions"][0]) >= {"path", "title", "score", "reason"}


@pytest.mark.parametrize("note", ["../secret.md", "a/../../secret.md", "/etc/passwd", "..\\secret.md",
                                  "C:\\Windows\\win.ini", "alpha\x00.md", "x" * 2000, ""])
def test_paths_that_could_leave_the_vault_are_refused(api, note):
    response = api.client.get("/suggest", params={"note": note})
    assert response.status_code in (400, 422)
    assert api.service.asked[-1:] != [note]


def test_a_symlink_out_of_the_vault_is_not_a_note(api):
    response = api.client.get("/suggest", params={"note": "escape.md"})
    assert response.status_code == 404
    assert "escape.md" not in api.service.asked


def test_unknown_and_unindexed_notes_are_404(api):
    assert api.client.get("/suggest", params={"note": "nope"}).status_code == 404
    response = api.client.get("/suggest", params={"note": "unindexed"})
    assert response.status_code == 404 and "not indexed" in response.json()["detail"]


@pytest.mark.parametrize("k", [0, -1, 101, "many"])
def test_k_is_bounded(api, k):
    assert api.client.get("/suggest", params={"note": "alpha", "k": k}).status_code == 422
    assert api.client.post("/search", json={"text": "alpha", "k": k}).status_code == 422


def test_search(api):
    body = api.client.post("/search", json={"text": "beta", "k": 5}).json()
    assert [s["path"] for s in body["suggestions"]] == ["beta.md"]


def test_search_text_and_body_are_bounded(api):
    assert api.client.post("/search", json={"text": "a" * 10_001}).status_code == 422
    assert api.client.post("/search", json={"text": ""}).status_code == 422
    big = b'{"text": "' + b"a" * MAX_BODY_BYTES + b'"}'
    assert api.client.post("/search", content=big).status_code == 413

    def chunks():  # no Content-Length: the limit holds on the streamed body too
        for _ in range(20):
            yield b"a" * 8192

    assert api.client.post("/search", content=chunks()).status_code == 413


def test_reindex_and_learn_queue_jobs(api):
    api.control.requests.clear()
    assert api.client.post("/reindex").json() == {"queued": True}
    assert api.client.post("/learn").json() == {"queued": True}
    assert api.client.post("/learn", json={"phase": "P2"}).json() == {"queued": True}
    assert api.control.requests == [("reindex", None), ("learn", None), ("learn", "P2")]
    assert api.client.get("/learn").json()["running"] is False


def test_learning_an_unknown_phase_is_404_and_queues_nothing(api):
    api.control.requests.clear()
    response = api.client.post("/learn", json={"phase": "nope"})
    assert response.status_code == 404 and "no phase 'nope'" in response.json()["detail"]
    assert "P1, P2" in response.json()["detail"] and api.control.requests == []


def test_openapi_description(api):
    spec = api.client.get("/openapi.json").json()
    assert {"/status", "/suggest", "/search", "/reindex", "/learn"} <= set(spec["paths"])
    assert "HTTPBearer" in spec["components"]["securitySchemes"]
