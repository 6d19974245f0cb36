"""LinkResolver: Obsidian's link resolution rules (research/obsidian.md §3)."""

import pytest

from vaultlearn.vault.note import Link
from vaultlearn.vault.resolve import LinkResolver, Resolution

NOTES = [
    "Home.md",
    "Log.md",
    "Concepts/Thermal Mass.md",
    "Concepts/My Note.md",
    "Projects/Solar/Overview.md",
    "Projects/Solar/Plan.md",
    "Projects/Water/Overview.md",
    "Projects/Water/Plan.md",
    "Archive/Old Projects/Overview.md",
    "Archive/Plan.md",
    "Inbox/Dr. Who.md",
]
ATTACHMENTS = ["Attachments/diagram.png", "Attachments/model.stl"]


@pytest.fixture
def resolver():
    return LinkResolver(NOTES, ATTACHMENTS)


def resolve(resolver, target, source="Home.md", **kwargs):
    return resolver.resolve(Link(target, **kwargs), source).path


def test_basename_link(resolver):
    assert resolve(resolver, "Thermal Mass") == "Concepts/Thermal Mass.md"


def test_md_suffix_is_equivalent(resolver):
    assert resolve(resolver, "Thermal Mass.md") == "Concepts/Thermal Mass.md"


def test_matching_ignores_case(resolver):
    assert resolve(resolver, "thermal MASS") == "Concepts/Thermal Mass.md"
    assert resolve(resolver, "log.MD") == "Log.md"


def test_exact_vault_path(resolver):
    assert resolve(resolver, "Projects/Water/Overview", source="Projects/Solar/Plan.md") == (
        "Projects/Water/Overview.md"
    )


def test_partial_path_matches_the_end_of_a_path(resolver):
    assert resolve(resolver, "Water/Overview") == "Projects/Water/Overview.md"
    assert resolve(resolver, "ater/Overview") is None


def test_duplicate_basename_prefers_the_source_folder(resolver):
    assert resolve(resolver, "Overview", source="Projects/Solar/Plan.md") == "Projects/Solar/Overview.md"
    assert resolve(resolver, "Overview", source="Projects/Water/Plan.md") == "Projects/Water/Overview.md"


def test_parent_folders_do_not_count_as_the_source_folder(resolver):
    # Archive/Plan.md sits above Archive/Old Projects/Overview.md: not its folder, so the shortest wins.
    assert resolve(resolver, "Overview", source="Archive/Plan.md") == "Projects/Solar/Overview.md"


def test_duplicate_basename_elsewhere_takes_the_shortest_path_then_lexicographic(resolver):
    assert resolve(resolver, "Plan", source="Home.md") == "Archive/Plan.md"
    assert resolve(resolver, "Overview", source="Home.md") == "Projects/Solar/Overview.md"


def test_exact_path_beats_the_source_folder():
    resolver = LinkResolver(["Plan.md", "Sub/Plan.md", "Sub/Note.md"])
    assert resolve(resolver, "Plan", source="Sub/Note.md") == "Plan.md"


def test_empty_target_is_the_source_itself(resolver):
    assert resolver.resolve(Link("", subpath="Heading"), "Log.md") == Resolution("Log.md")


def test_alias_is_not_a_target(resolver):
    assert resolve(resolver, "Heat storage") is None


def test_unresolved(resolver):
    assert resolver.resolve(Link("Future Note"), "Home.md") == Resolution(None)


@pytest.mark.parametrize("target", ["diagram.png", "Attachments/diagram.png", "missing.PDF", "model.stl"])
def test_attachments(resolver, target):
    assert resolver.resolve(Link(target, kind="embed"), "Home.md") == Resolution(None, attachment=True)


def test_dots_in_a_note_name_are_not_an_extension(resolver):
    assert resolve(resolver, "Dr. Who") == "Inbox/Dr. Who.md"


def test_markdown_link_relative_to_the_source_folder(resolver):
    link = Link("../Water/Plan.md", markdown=True)
    assert resolver.resolve(link, "Projects/Solar/Overview.md").path == "Projects/Water/Plan.md"


def test_markdown_link_falls_back_to_vault_wide(resolver):
    link = Link("My Note.md", markdown=True)  # the parser already decoded "My%20Note.md"
    assert resolver.resolve(link, "Projects/Solar/Overview.md").path == "Concepts/My Note.md"


def test_markdown_link_leaving_the_vault_does_not_resolve(resolver):
    assert resolver.resolve(Link("../../../Home.md", markdown=True), "Projects/Solar/Plan.md").path is None


def test_add_and_remove_are_incremental(resolver):
    resolver.add("Concepts/Future Note.md")
    assert resolve(resolver, "Future Note") == "Concepts/Future Note.md"
    resolver.remove("Concepts/Future Note.md")
    assert resolve(resolver, "Future Note") is None
    resolver.remove("Projects/Solar/Overview.md")
    assert resolve(resolver, "Overview", source="Projects/Solar/Plan.md") == "Projects/Water/Overview.md"
    resolver.remove("never/added.md")


def test_removed_attachment_with_unknown_extension_is_no_longer_an_attachment(resolver):
    resolver.remove("Attachments/model.stl")
    assert resolver.resolve(Link("model.stl"), "Home.md") == Resolution(None)


@pytest.mark.parametrize(
    "name, expected",
    [
        ("Concepts/Thermal Mass.md", "Concepts/Thermal Mass.md"),
        ("Concepts/Thermal Mass", "Concepts/Thermal Mass.md"),
        ("thermal mass", "Concepts/Thermal Mass.md"),
        ("Water/Overview", "Projects/Water/Overview.md"),
        ("Projects\\Water\\Plan.md", "Projects/Water/Plan.md"),
        ("Heat storage", None),
        ("diagram.png", None),
        ("", None),
    ],
)
def test_resolve_name(resolver, name, expected):
    assert resolver.resolve_name(name) == expected


def test_resolve_name_uses_the_source_folder(resolver):
    assert resolver.resolve_name("Plan", source="Projects/Water/Overview.md") == "Projects/Water/Plan.md"
