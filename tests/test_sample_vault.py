"""The sample vault parses, resolves and splits into phases as designed.

sample_vault/ is a small PKM vault written for vaultlearn: four projects learned in order, each with a
``phase_id`` (solar-dryer 2023-Q1, rainwater 2023-Q2/Q3, beehive-monitor 2023-Q4, greenhouse 2024-Q1),
with concept notes, project notes (an ``Overview.md`` in every project folder) and dated meeting notes,
plus a few notes with no phase (Home, Inbox, People, Templates). Edge cases it holds on purpose: aliases
(one scalar, ignored), embeds of a note section and of Attachments/diagram.png, a dangling image embed,
links in fenced code, inline code and ``%%`` / ``<!-- -->`` comments (not counted), an admonition with a
link, links in properties, malformed YAML (Install Log), markdown links with ``%20`` and ``<...>``, a
same-note ``[[#Heading]]``, an alias typed as a target (``[[RH]]``), and an unresolved future note. Many
plausible links are left unwritten so that suggestions have something to find.
"""

from collections import Counter
from pathlib import Path

import pytest

from vaultlearn.config import Config
from vaultlearn.vault.note import Link
from vaultlearn.vault.parse import parse_note
from vaultlearn.vault.phases import assign_phases
from vaultlearn.vault.resolve import LinkResolver
from vaultlearn.vault.scan import read_note_bytes, scan_vault

ROOT = Path(__file__).parents[1] / "sample_vault"


@pytest.fixture(scope="module")
def vault():
    scan = scan_vault(ROOT)
    notes = {f.path: parse_note(f.path, read_note_bytes(ROOT, f.path, 1_000_000)) for f in scan.notes}
    resolver = LinkResolver(notes, scan.attachments)
    return scan, notes, resolver


def targets(note, resolver):
    return [resolver.resolve(link, note.path).path for link in note.links]


def test_scan(vault):
    scan, notes, _ = vault
    assert 40 <= len(notes) <= 80
    assert scan.attachments == ["Attachments/diagram.png"]
    assert not any(path.startswith(".obsidian") for path in notes)
    assert scan.warnings == []


def test_only_the_planned_warnings(vault):
    _, notes, _ = vault
    warned = {path: note.warnings for path, note in notes.items() if note.warnings}
    assert sorted(warned) == ["Concepts/Dew Point.md", "Projects/Rainwater/Install Log.md"]
    assert notes["Projects/Rainwater/Install Log.md"].frontmatter == {}
    assert notes["Concepts/Dew Point.md"].aliases == []


def test_four_phases_by_frontmatter_in_time_order(vault):
    scan, notes, _ = vault
    result = assign_phases(list(notes.values()), {f.path: f.mtime for f in scan.notes}, Config())
    assert result.source == "frontmatter"
    assert result.order == ["solar-dryer", "rainwater", "beehive-monitor", "greenhouse"]
    counts = Counter(result.phase_of.values())
    assert all(counts[phase] >= 8 for phase in result.order)
    assert result.phase_of["Home.md"] is None


def test_duplicate_overview_resolves_by_folder(vault):
    _, notes, resolver = vault
    overviews = [path for path in notes if path.endswith("/Overview.md")]
    assert len(overviews) == 4
    for path in ["Projects/Solar Dryer/Build Log.md", "Projects/Beehive Monitor/Firmware.md"]:
        folder = path.rsplit("/", 1)[0]
        assert targets(notes[path], resolver)[0] == f"{folder}/Overview.md"
    home = targets(notes["Home.md"], resolver)
    assert set(overviews) <= set(home)


def test_links_in_code_and_comments_are_not_counted(vault):
    _, notes, resolver = vault
    firmware = notes["Projects/Beehive Monitor/Firmware.md"]
    assert firmware.links == [Link("Overview")]
    assert "[[Load Cell Calibration]]" in firmware.text  # the code is kept as text
    assert "Pin Map" not in firmware.text  # the comment is not
    tank = notes["Projects/Rainwater/Tank Sizing.md"]
    assert [link.target for link in tank.links].count("Rainfall Data") == 1
    assert all(link.target != "Cider Press" for link in notes["Inbox/Ideas.md"].links)


def test_edge_case_links_resolve_as_obsidian_would(vault):
    _, notes, resolver = vault
    bom = notes["Projects/Solar Dryer/Bill of Materials.md"]
    assert targets(bom, resolver) == ["Concepts/Glazing Materials.md", "Concepts/Food Grade Mesh.md"]
    overview = notes["Projects/Solar Dryer/Overview.md"]
    assert resolver.resolve(Link("diagram.png", kind="embed"), overview.path).attachment
    assert overview.path in targets(overview, resolver)  # [[#Glazing decision]]
    review = notes["Meetings/2023-03-02 Dryer design review.md"]
    assert Link("RH") in review.links and None in targets(review, resolver)  # an alias is not a target
    enclosure = notes["Projects/Beehive Monitor/Enclosure.md"]
    assert Link("Hive Scale Enclosure v2") in enclosure.links
    assert resolver.resolve(Link("Hive Scale Enclosure v2"), enclosure.path).path is None
    budget = notes["Concepts/Battery and Solar Power Budget.md"]
    assert [link.kind for link in budget.links].count("frontmatter") == 2
    safety = notes["Concepts/Food Drying Safety.md"]
    assert Link("Water Activity") in safety.links and "food-safety" in safety.tags


def test_most_links_resolve(vault):
    _, notes, resolver = vault
    kinds = Counter()
    for note in notes.values():
        for link in note.links:
            resolution = resolver.resolve(link, note.path)
            kinds["attachment" if resolution.attachment else "note" if resolution.path else "unresolved"] += 1
    assert kinds["note"] >= 90
    assert kinds["attachment"] == 2
    assert kinds["unresolved"] == 2  # [[RH]] and the future [[Hive Scale Enclosure v2]]
