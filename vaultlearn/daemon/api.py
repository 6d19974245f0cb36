"""The daemon's local HTTP API (FastAPI): status, suggestions, search, reindex and learning, behind a bearer token.

Every route, the OpenAPI description included, needs ``Authorization: Bearer <token>``. Note paths are checked
before the service sees them (no absolute path, no ``..``, no NUL, bounded length) and the resolved note must
lie inside the vault once symlinks are followed; nothing outside is ever read. Request bodies are capped.
"""

from __future__ import annotations

import hmac
import re
from pathlib import Path
from typing import Protocol, get_type_hints

from fastapi import APIRouter, Body, Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field, create_model

from vaultlearn.errors import NoteNotFoundError, NotIndexedError, StateError, VaultlearnError
from vaultlearn.index.suggest import Suggestion  # a dataclass: the response schema and `suggest --json` are one
from vaultlearn.reports import LearnReport, Status  # dataclasses: so are those of /status, /learn and --json

MAX_BODY_BYTES = 64 * 1024
MAX_TEXT_CHARS = 10_000
MAX_PATH_CHARS = 1024
MAX_K = 100
_DRIVE = re.compile(r"^[A-Za-z]:")


class DaemonControl(Protocol):
    """What the API needs from the running daemon besides the service."""

    def snapshot(self) -> dict:
        """``{"state": "idle"|"indexing"|"learning", "model": "loading"|"loaded"|"failed: …", "learning": {...}, ...}``."""

    def learning(self) -> dict:
        """Progress of the current (or last) learning job."""

    def request_reindex(self) -> None:
        """Queue a full reconcile of the vault."""

    def request_learn(self, phase: str | None) -> None:
        """Queue learning of one phase (None: every pending phase)."""


class SuggestResponse(BaseModel):
    note: str
    suggestions: list[Suggestion]


class SearchRequest(BaseModel):
    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARS)
    k: int = Field(10, ge=1, le=MAX_K)


class SearchResponse(BaseModel):
    suggestions: list[Suggestion]


class LearnRequest(BaseModel):
    phase: str | None = Field(None, max_length=200)


class Queued(BaseModel):
    queued: bool


class DaemonState(BaseModel):
    """What the daemon is doing now (``Writer.snapshot``)."""

    state: str
    model: str
    learning: dict | None
    pending_changes: int
    queued_jobs: list[str]
    applied_batches: int
    last_change: dict | None
    last_error: str | None


# /status: the daemon's state and the service's Status (the schema of `status --json`), whose keys the JSON lists first
StatusResponse = create_model("StatusResponse", __base__=DaemonState,
                              **{name: (hint, ...) for name, hint in get_type_hints(Status).items()})


class LearningResponse(BaseModel):
    """The current or last learning job: its phase and progress while it runs, then its report or error."""

    running: bool
    phase: str | None
    progress: float | None
    result: LearnReport | None = None
    error: str | None = None


def check_note_param(note: str) -> str:
    """Reject a note parameter that could name something outside the vault; 400 with the reason."""
    if not note or len(note) > MAX_PATH_CHARS:
        raise HTTPException(400, f"note must be 1..{MAX_PATH_CHARS} characters")
    if "\x00" in note:
        raise HTTPException(400, "note contains a NUL character")
    if note.startswith(("/", "\\")) or _DRIVE.match(note):
        raise HTTPException(400, "note must be a vault-relative path or a note name, not an absolute path")
    if ".." in re.split(r"[/\\]", note):
        raise HTTPException(400, "note must not contain '..'")
    return note


def bearer_check(token: str):
    """The dependency every route takes: ``Authorization: Bearer <token>``, compared in constant time; else 401."""
    bearer = HTTPBearer(auto_error=False, description="the token in VAULT/.vaultlearn/token")
    expected = token.encode()

    def authorized(credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
        given = credentials.credentials.encode() if credentials else b""
        if not (credentials and hmac.compare_digest(given, expected)):
            raise HTTPException(401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})

    return authorized


def create_app(service, state: DaemonControl, token: str) -> FastAPI:
    """The API over ``service`` (a VaultService) and ``state`` (the daemon), guarded by ``token``."""
    app = FastAPI(
        title="vaultlearn",
        description="Local link suggestions for an Obsidian vault.",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.add_middleware(BodyLimit, max_bytes=MAX_BODY_BYTES)
    _add_error_handlers(app)
    router = APIRouter(dependencies=[Depends(bearer_check(token))])

    @router.get("/openapi.json", include_in_schema=False)
    def openapi() -> dict:
        return app.openapi()

    _add_reading_routes(router, service, state)
    _add_job_routes(router, service, state)
    app.include_router(router)
    return app


def _add_reading_routes(router: APIRouter, service, state: DaemonControl) -> None:
    """``/status``, ``/suggest`` and ``/search``: answered from the last committed state."""
    vault = Path(service.vault).resolve()

    @router.get("/status", response_model=StatusResponse)
    def status() -> JSONResponse:
        """Index and learning figures plus what the daemon is doing now."""
        return JSONResponse({**service.status().to_json(), **state.snapshot()})

    @router.get("/suggest", response_model=SuggestResponse)
    def suggest(
        note: str = Query(..., description="vault-relative path or link-style note name"),
        k: int = Query(min(max(service.config.suggest_k, 1), MAX_K), ge=1, le=MAX_K),
    ) -> dict:
        """Notes that ``note`` should link to and does not yet."""
        path = service.resolve_note(check_note_param(note))
        if not (vault / path).resolve().is_relative_to(vault):
            raise NoteNotFoundError(f"{note}: not a note of this vault")
        return {"note": path, "suggestions": [s.to_json() for s in service.suggest(path, k=k)]}

    @router.post("/search", response_model=SearchResponse)
    def search(request: SearchRequest) -> dict:
        """Notes nearest to a free text."""
        return {"suggestions": [s.to_json() for s in service.search(request.text, k=request.k)]}


def _add_job_routes(router: APIRouter, service, state: DaemonControl) -> None:
    """``/reindex`` and ``/learn``: jobs queued for the daemon's writer, and learning's progress."""

    @router.post("/reindex", response_model=Queued)
    def reindex() -> dict:
        """Queue a full reconcile of the vault with the stored state."""
        state.request_reindex()
        return {"queued": True}

    @router.post("/learn", response_model=Queued)
    def learn(request: LearnRequest | None = Body(None)) -> dict:
        """Queue learning of a phase (or every pending phase); 404 for a phase the vault does not have."""
        phase = request.phase if request else None
        if phase is not None and phase not in service.phases():
            raise HTTPException(404, f"no phase {phase!r}; the phases are: {', '.join(service.phases()) or 'none'}")
        state.request_learn(phase)
        return {"queued": True}

    @router.get("/learn", response_model=LearningResponse)
    def learning() -> JSONResponse:
        """Progress of the current or last learning job."""
        return JSONResponse(state.learning())


def _add_error_handlers(app: FastAPI) -> None:
    statuses = ((NoteNotFoundError, 404), (NotIndexedError, 404), (StateError, 503), (VaultlearnError, 400))
    for error, code in statuses:

        async def handler(request: Request, exc: Exception, code: int = code) -> JSONResponse:
            return JSONResponse({"detail": str(exc)}, status_code=code)

        app.add_exception_handler(error, handler)


class BodyLimit:
    """ASGI middleware: a request body over ``max_bytes`` (declared or streamed) gets 413 and is not read on."""

    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"0")
        if not declared.isdigit() or int(declared) > self.max_bytes:
            await self._too_large(scope, receive, send)
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        await self.app(scope, replay, send)

    async def _too_large(self, scope, receive, send) -> None:
        response = JSONResponse({"detail": f"request body over {self.max_bytes} bytes"}, status_code=413)
        await response(scope, receive, send)
