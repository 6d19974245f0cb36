"""The learned state's manifest: the small JSON whose atomic swap commits a learned phase (no torch needed)."""

from __future__ import annotations

import json
from pathlib import Path

STATE_FORMAT = 1
MANIFEST = "manifest.json"


def read_manifest(state_dir: Path) -> dict | None:
    """The committed state's manifest, or None when nothing was saved (format checked)."""
    path = Path(state_dir) / MANIFEST
    if not path.exists():
        return None
    manifest = json.loads(path.read_text(encoding="utf-8"))
    if manifest.get("format") != STATE_FORMAT:
        raise ValueError(f"{path}: state format {manifest.get('format')!r}, expected {STATE_FORMAT}")
    return manifest
