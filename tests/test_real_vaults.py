"""The vault package on the real vaults in ../shared/vaults, against the counts in their SOURCE.md."""

from collections import Counter
from pathlib import Path

import pytest

from vaultlearn.config import Config
from vaultlearn.vault.parse import parse_note
from vaultlearn.vault.phases import assign_phases
from vaultlearn.vault.resolve import LinkResolver
from vaultlearn.vault.scan import read_note_bytes, scan_vault

VAULTS = Path(__file__).parents[2] / "shared" / "vaults"

pytestmark = [
    pytest.mark.shared,
    pytest.mark.skipif(not VAULTS.is_dir(), reason="../shared/vaults is not available"),
]


def load(name):
    root = VAULTS / name / "vault"
    scan = scan_vault(root)
    notes = [parse_note(f.path, read_note_bytes(root, f.path, 5_000_000)) for f in scan.notes]
    resolver = LinkResolver([n.path for n in notes], scan.attachments)
    counts = Counter()
    for note in notes:
        for link in note.links:
            resolution = resolver.resolve(link, note.path)
            outcome = "resolved" if resolution.path else "unresolved"
            if resolution.attachment:
                outcome = "attachment"
            counts[link.kind, link.markdown, outcome] += 1
            counts["self"] += link.target == ""
    return scan, notes, counts


@pytest.fixture(scope="module")
def mathwiki():
    return load("mathwiki")


@pytest.fixture(scope="module")
def vaultofknowledge():
    return load("vaultofknowledge")


def test_mathwiki_links(mathwiki):
    _, notes, counts = mathwiki
    assert len(notes) == 928
    wiki_resolved = counts["link", False, "resolved"]
    wiki = wiki_resolved + counts["link", False, "unresolved"]
    assert wiki == 2299  # all in body lines or admonition fences, none inside code
    assert 0.994 <= wiki_resolved / wiki <= 0.996  # SOURCE.md: 99.5 %
    assert counts["link", True, "resolved"] == 122  # URL-encoded [text](Note%20Name.md), all resolve
    assert counts["embed", False, "attachment"] == 0


def test_mathwiki_dates_and_topic_phases(mathwiki):
    scan, notes, _ = mathwiki
    assert all(note.created is not None for note in notes)  # "Date Created: DD/MM/YYYY" in every body
    mtimes = {f.path: f.mtime for f in scan.notes}
    result = assign_phases(notes, mtimes, Config())
    assert result.source == "tag"
    assert result.order[0] == "Set_Theory"
    with_later = assign_phases(notes, mtimes, Config(phase_tag_prefixes=["Topics/", "Later/"]))
    counts = Counter(with_later.phase_of.values())
    # SOURCE.md's subjects by median creation date, with their note counts
    expected = {
        "Set_Theory": 209,
        "Topology": 113,
        "Category_Theory": 66,
        "Linear_Algebra": 216,
        "Group_Theory": 71,
        "Ring_Theory": 79,
        "Analysis": 164,
        "Module_Theory": 6,
    }
    assert [p for p in with_later.order if p in expected] == list(expected)
    assert {p: counts[p] for p in expected} == expected


def test_vaultofknowledge_links(vaultofknowledge):
    _, notes, counts = vaultofknowledge
    assert len(notes) == 2719
    embeds = counts["embed", False, "attachment"]
    assert embeds == 162  # SOURCE.md counts 161: it does not list .avif as an image type
    notes_links = counts["link", False, "resolved"] + counts["link", False, "unresolved"]
    assert notes_links + embeds == 2726
    assert counts["self"] == 1
    assert 0.925 <= counts["link", False, "resolved"] / notes_links <= 0.935  # SOURCE.md: 93.1 %


def test_vaultofknowledge_phases_by_top_level_folder(vaultofknowledge):
    scan, notes, _ = vaultofknowledge
    result = assign_phases(notes, {f.path: f.mtime for f in scan.notes}, Config())
    assert result.source == "folder"
    counts = Counter(result.phase_of.values())
    assert counts[None] == 298  # notes at the vault root
    assert counts["06. Collected Knowledge"] == 1254
    assert len(result.order) == 9


def test_no_parse_warnings_except_length_caps(mathwiki, vaultofknowledge):
    for _, notes, _ in (mathwiki, vaultofknowledge):
        for note in notes:
            assert all("capped" in w for w in note.warnings), (note.path, note.warnings)
