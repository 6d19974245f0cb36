"""remove_traces: a hidden link leaves no link, alias or title words in the source note."""

import random
import re

import pytest

from vaultlearn.eval.traces import links_or_words_sub, mention_pattern, remove_traces
from vaultlearn.vault.body import ANY_LINK_RE
from vaultlearn.vault.parse import parse_note

NAMES = ["Physics/Dew Point.md", "Dew Point", "condensation temperature"]


def readable(markdown: str) -> str:
    return parse_note("Source.md", markdown.encode()).text


def test_wikilink_forms_are_removed():
    text = "A [[Dew Point]], [[dew point|the DP]], [[Dew Point#Formula]], ![[Dew Point]], [[Physics/Dew Point]]."
    out = remove_traces(text, NAMES)
    assert "[[" not in out and "DP" not in out and "Formula" not in out


def test_markdown_links_are_removed_with_their_text():
    out = remove_traces("See [the point](Dew%20Point.md) and [x](<Physics/Dew Point.md#H>) here.", NAMES)
    assert out == "See and here."


def test_title_alias_and_display_text_as_plain_words_are_removed():
    out = remove_traces("dew point and Condensation Temperature; the DP matters. [[Dew Point|the DP]]", NAMES)
    assert "dew" not in out.lower() and "condensation" not in out.lower() and "DP" not in out


def test_words_are_bounded():
    assert remove_traces("Dew Pointer and undew point", ["Dew Point"]) == "Dew Pointer and undew point"


def test_other_links_are_kept():
    text = "[[Humidity]] and [[Dew Point]] and [h](Humidity.md) and [[Other/Dew Point Chart]]"
    out = remove_traces(text, NAMES)
    kept = "[[Humidity]] [h](Humidity.md) [[Other/Dew Point Chart]]"
    assert parse_note("S.md", out.encode()).links == parse_note("S.md", kept.encode()).links


def test_a_different_folder_with_the_same_title_is_not_the_target():
    out = remove_traces("[[Garden/Overview]] [[Overview]]", ["Projects/Overview.md", "Overview"])
    assert out.strip() == "[[Garden/Overview]]"


def test_frontmatter_links_are_removed():
    text = "---\nrelated: \"[[Dew Point]]\"\n---\nbody"
    assert "Dew" not in remove_traces(text, NAMES)


def test_readable_text_keeps_the_rest():
    text = "# Weather\nRelative humidity rises until the [[Dew Point]] is reached."
    assert readable(remove_traces(text, NAMES)) == "Source\n# Weather\nRelative humidity rises until the is reached."


def test_names_are_required():
    with pytest.raises(ValueError):
        remove_traces("text", ["", " "])


def test_other_links_shown_text_loses_the_words_but_keeps_its_target():
    out = remove_traces("[[Dew Point Chart|dew point chart]] and [dew point table](Table.md)", NAMES)
    assert out == "[[Dew Point Chart| chart]] and [ table](Table.md)"


def test_the_merged_scan_replaces_what_the_alternation_of_links_and_words_does():
    words = mention_pattern(["Dew Point", "dew", "point]"])
    alternation = re.compile(f"{ANY_LINK_RE.pattern}|{words.pattern}", re.IGNORECASE)

    def mark(match: re.Match) -> str:
        return "<word>" if match.re is words else f"<{match.group(0)}>"

    def mark_alternation(match: re.Match) -> str:
        link = match.group("inner") is not None or match.group("mdest") is not None
        return f"<{match.group(0)}>" if link else "<word>"

    pieces = ["[[", "]]", "[", "]", "](", ")", "(", "!", "Dew", "dew point", " ", "Point", "x", "\n", "|", "a.md"]
    rng = random.Random(0)
    for _ in range(3000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 14)))
        assert links_or_words_sub(words, mark, text) == alternation.sub(mark_alternation, text), text
