"""assign_phases: each source, the vault-level choice of one source, and the order of phases."""

from datetime import datetime

import pytest

from vaultlearn.config import Config, ConfigError
from vaultlearn.vault.note import Note
from vaultlearn.vault.phases import assign_phases


def note(path, frontmatter=None, tags=(), created=None):
    title = path.rsplit("/", 1)[-1][:-3]
    return Note(path, title, title, tags=list(tags), frontmatter=frontmatter or {}, created=created)


def day(month, d=1, year=2023):
    return datetime(year, month, d)


def test_frontmatter_source_with_the_first_key_present():
    notes = [
        note("a.md", {"phase_id": "dryer", "project": "ignored"}, created=day(1)),
        note("b.md", {"project": "tanks"}, created=day(6)),
        note("c.md", {"phase_id": 7}, created=day(9)),
        note("d.md", created=day(2)),
    ]
    result = assign_phases(notes, {}, Config())
    assert result.source == "frontmatter"
    assert result.phase_of == {"a.md": "dryer", "b.md": "tanks", "c.md": "7", "d.md": None}
    assert result.order == ["dryer", "tanks", "7"]


def test_tag_source_takes_the_component_after_the_prefix():
    notes = [
        note("a.md", tags=["Definition", "Topics/Set_Theory"], created=day(1)),
        note("b.md", tags=["topics/Topology/Metric"], created=day(2)),
        note("c.md", tags=["Topics/set_theory"], created=day(3)),
        note("d.md", tags=["Later/Analysis"], created=day(4)),
    ]
    result = assign_phases(notes, {}, Config(phase_sources=["tag"]))
    assert result.source == "tag"
    # tags are case-insensitive: the first spelling names the phase
    assert result.phase_of == {"a.md": "Set_Theory", "b.md": "Topology", "c.md": "Set_Theory", "d.md": None}
    assert result.order == ["Set_Theory", "Topology"]


def test_folder_source_leaves_root_notes_without_a_phase():
    notes = [note("P1/a.md"), note("P1/sub/b.md"), note("P2/c.md"), note("root.md")]
    mtimes = {"P1/a.md": 100.0, "P1/sub/b.md": 300.0, "P2/c.md": 150.0, "root.md": 50.0}
    result = assign_phases(notes, mtimes, Config(phase_sources=["folder"]))
    assert result.phase_of == {"P1/a.md": "P1", "P1/sub/b.md": "P1", "P2/c.md": "P2", "root.md": None}
    assert result.order == ["P2", "P1"]  # medians 150 < 200


@pytest.mark.parametrize(
    "bucket, expected",
    [("quarter", ["2022-Q4", "2023-Q1"]), ("month", ["2022-12", "2023-02"]), ("year", ["2022", "2023"])],
)
def test_date_source_buckets_created_else_mtime(bucket, expected):
    notes = [note("a.md", created=day(2, 10)), note("b.md")]
    mtimes = {"b.md": datetime(2022, 12, 24, 12).timestamp()}
    result = assign_phases(notes, mtimes, Config(phase_sources=["date"], phase_date_bucket=bucket))
    assert result.phase_of == {"a.md": expected[1], "b.md": expected[0]}
    assert result.order == expected


def test_one_folder_is_not_a_split():
    notes = [note(f"Notes/{i}.md") for i in range(5)]
    mtimes = {n.path: (day(1) if i < 2 else day(7)).timestamp() for i, n in enumerate(notes)}
    result = assign_phases(notes, mtimes, Config(phase_sources=["folder", "date"]))
    assert result.source == "date"
    assert result.order == ["2023-Q1", "2023-Q3"]


def test_a_stray_phase_key_does_not_decide():
    notes = [note("A/x.md", {"phase_id": "lonely"})] + [note(f"{f}/{i}.md") for f in "AB" for i in range(3)]
    result = assign_phases(notes, {n.path: 0.0 for n in notes}, Config())
    assert result.source == "folder"
    assert result.phase_of["A/x.md"] == "A"


def test_at_least_half_must_be_covered():
    notes = [note("a.md", {"project": "p"}), note("b.md", {"project": "q"})]
    notes += [note(f"{i}.md") for i in range(3)]
    assert assign_phases(notes, {}, Config(phase_sources=["frontmatter"])).source == "none"
    notes.pop()
    assert assign_phases(notes, {}, Config(phase_sources=["frontmatter"])).source == "frontmatter"


def test_nothing_qualifies():
    notes = [note("a.md"), note("b.md")]
    result = assign_phases(notes, {}, Config(phase_sources=["frontmatter", "tag", "folder"]))
    assert (result.source, result.phase_of, result.order) == ("none", {"a.md": None, "b.md": None}, [])
    assert assign_phases([], {}, Config()).source == "none"


def test_order_ties_break_by_name():
    notes = [note("b/x.md"), note("a/y.md"), note("c/z.md")]
    result = assign_phases(notes, {n.path: 10.0 for n in notes}, Config(phase_sources=["folder"]))
    assert result.order == ["a", "b", "c"]


def test_bad_configuration_is_reported():
    with pytest.raises(ConfigError, match="unknown phase source"):
        assign_phases([note("a.md")], {}, Config(phase_sources=["moon"]))
    with pytest.raises(ConfigError, match="phase_date_bucket"):
        assign_phases([note("a.md")], {}, Config(phase_sources=["date"], phase_date_bucket="week"))
