"""parse_note: one test per Obsidian rule the parser follows."""

import random
from datetime import datetime

import pytest

from vaultlearn.vault.note import Link
from vaultlearn.vault.parse import parse_note


def parse(text: str, path: str = "folder/Source.md", **kwargs):
    return parse_note(path, text.encode("utf-8"), **kwargs)


def links(text: str) -> list[Link]:
    return parse(text).links


# --- wikilinks -------------------------------------------------------------------------------------


def test_plain_wikilink():
    assert links("See [[Note]].") == [Link("Note")]


def test_display_text_after_bar():
    assert links("[[Note|the note]]") == [Link("Note", display="the note")]


def test_heading_subpath():
    assert links("[[Note#Heading]]") == [Link("Note", subpath="Heading")]


def test_nested_heading_subpath_keeps_the_chain():
    assert links("[[Note#H1#H2]]") == [Link("Note", subpath="H1#H2")]


def test_block_reference():
    assert links("[[Note#^block-1]]") == [Link("Note", subpath="^block-1")]


def test_subpath_and_display_together():
    assert links("[[Note#H|shown]]") == [Link("Note", subpath="H", display="shown")]


def test_same_note_heading_link_has_empty_target():
    assert links("Jump to [[#Open questions]].") == [Link("", subpath="Open questions")]


def test_embed():
    assert links("![[Other Note]]") == [Link("Other Note", kind="embed")]


def test_folder_path_and_md_suffix_are_kept_as_typed():
    assert links("[[folder/Note]] and [[Note.md]]") == [Link("folder/Note"), Link("Note.md")]


def test_single_closing_bracket_does_not_end_the_target():
    assert links("[[a]b]]") == [Link("a]b")]


def test_escaped_bar_inside_table():
    text = "| a | b |\n|---|---|\n| [[Glazing Materials\\|glass]] | x |"
    assert links(text) == [Link("Glazing Materials", display="glass")]


def test_empty_wikilink_is_not_a_link():
    assert links("[[|x]] and [[]]") == []


# --- markdown links --------------------------------------------------------------------------------


def test_markdown_link_to_a_note():
    assert links("[the note](Note.md)") == [Link("Note.md", display="the note", markdown=True)]


def test_markdown_link_is_percent_decoded():
    assert links("[x](My%20Note.md)") == [Link("My Note.md", display="x", markdown=True)]


def test_markdown_link_in_angle_brackets():
    assert links("[x](<My Note.md>)") == [Link("My Note.md", display="x", markdown=True)]


def test_markdown_link_with_parentheses_in_the_name():
    assert links("[kernel](Kernel%20(Group%20Theory).md)")[0].target == "Kernel (Group Theory).md"


def test_markdown_link_with_heading():
    assert links("[x](Note.md#Some%20Heading)") == [
        Link("Note.md", subpath="Some Heading", display="x", markdown=True)
    ]


def test_markdown_image_is_an_embed():
    assert links("![diagram](img/diagram.png)") == [
        Link("img/diagram.png", kind="embed", display="diagram", markdown=True)
    ]


@pytest.mark.parametrize(
    "url", ["https://example.org/a.md", "http://x.y", "mailto:me@example.org", "obsidian://open?file=TODO"]
)
def test_external_urls_are_not_note_links(url):
    assert links(f"[x]({url})") == []


# --- tags ------------------------------------------------------------------------------------------


def test_inline_and_nested_tags():
    assert parse("Tags: #Definition #Topics/Set_Theory").tags == ["Definition", "Topics/Set_Theory"]


def test_unicode_tags_keep_letters_and_marks():
    assert parse("#café #മലയാളം #日本語").tags == ["café", "മലയാളം", "日本語"]


def test_tag_needs_a_non_digit():
    assert parse("issue #1984 and #y1984").tags == ["y1984"]


def test_hash_inside_a_word_or_url_is_not_a_tag():
    assert parse("a#b and https://example.org/page#section").tags == []


def test_heading_marker_is_not_a_tag():
    assert parse("# Heading\n## Sub heading").tags == []


def test_tag_stops_at_punctuation():
    assert parse("Done: #todo, then #next.").tags == ["todo", "next"]


def test_tags_are_deduplicated_case_insensitively():
    assert parse("---\ntags: [Idea]\n---\n#idea #other").tags == ["Idea", "other"]


# --- exclusions ------------------------------------------------------------------------------------


def test_nothing_counts_inside_backtick_fences():
    note = parse("```python\n# [[Hidden]] #hidden\n```\n[[Shown]]")
    assert note.links == [Link("Shown")]
    assert note.tags == []


def test_nothing_counts_inside_tilde_fences():
    assert links("~~~\n[[Hidden]]\n~~~\n[[Shown]]") == [Link("Shown")]


def test_unclosed_fence_runs_to_the_end():
    assert links("[[Before]]\n```\n[[Hidden]]") == [Link("Before")]


def test_longer_fence_is_not_closed_by_a_shorter_one():
    assert links("````\n```\n[[Hidden]]\n```\n````\n[[Shown]]") == [Link("Shown")]


def test_nothing_counts_inside_inline_code():
    note = parse("Use `[[Hidden]]` and ``a ` [[Also hidden]]`` but [[Shown]] #tag `#not`")
    assert note.links == [Link("Shown")]
    assert note.tags == ["tag"]


def test_unmatched_backtick_is_literal():
    assert links("a ` b [[Shown]]") == [Link("Shown")]


def test_inline_percent_comment_hides_links():
    assert links("a %% [[Hidden]] #x %% b [[Shown]]") == [Link("Shown")]


def test_block_percent_comment_hides_links_across_lines_and_fences():
    text = "%%\n[[Hidden]]\n```\ncode\n```\n[[Hidden too]]\n%%\n[[Shown]]"
    note = parse(text)
    assert note.links == [Link("Shown")]
    assert "code" not in note.text


def test_unclosed_comment_hides_the_rest():
    assert links("[[Shown]] %% [[Hidden]]\n\n[[Hidden too]]") == [Link("Shown")]


def test_html_comment_hides_links():
    assert links("<!-- [[Hidden]]\n#hidden -->[[Shown]]") == [Link("Shown")]


def test_admonition_fence_content_counts():
    text = "``` ad-Definition\ntitle: Definition.\nA [[Group]] is a #monoid with inverses.\n```"
    note = parse(text)
    assert note.links == [Link("Group")]
    assert note.tags == ["monoid"]
    assert "A Group is a #monoid with inverses." in note.text


def test_code_fence_nested_in_an_admonition_is_still_code():
    text = "````ad-note\n[[Shown]]\n```python\n[[Hidden]]\n```\n[[Shown too]]\n````"
    assert links(text) == [Link("Shown"), Link("Shown too")]


# --- frontmatter -----------------------------------------------------------------------------------


def test_frontmatter_aliases_tags_and_links():
    text = (
        "---\naliases: [RH, humidity]\ntags: [physics, '#concept']\n"
        'related: "[[Dew Point]]"\nsee:\n  - "[[A|shown]]"\n  - nested: ["![[B#H]]"]\n---\nBody [[C]]'
    )
    note = parse(text)
    assert note.aliases == ["RH", "humidity"]
    assert note.tags == ["physics", "concept"]
    assert note.links == [
        Link("Dew Point", kind="frontmatter"),
        Link("A", kind="frontmatter", display="shown"),
        Link("B", kind="frontmatter", subpath="H"),
        Link("C"),
    ]
    assert note.frontmatter["aliases"] == ["RH", "humidity"]


def test_tags_property_as_a_string():
    assert parse("---\ntags: '#a, b c'\n---\n").tags == ["a", "b", "c"]


def test_scalar_alias_is_ignored_with_a_warning():
    note = parse("---\naliases: Dew point temperature\n---\nText")
    assert note.aliases == []
    assert any("aliases" in w for w in note.warnings)


def test_malformed_yaml_is_dropped_and_the_body_still_parsed():
    note = parse("---\ntags: [log\nphase_id: x\n---\nBody with [[Link]] #tag")
    assert note.frontmatter == {}
    assert note.links == [Link("Link")]
    assert note.tags == ["tag"]
    assert "phase_id" not in note.text
    assert any("YAML" in w for w in note.warnings)


def test_impossible_yaml_date_is_a_warning_not_an_error():
    note = parse("---\ncreated: 2023-02-30\n---\n[[Link]]")
    assert note.frontmatter == {}
    assert note.links == [Link("Link")]
    assert any("day is out of range" in w for w in note.warnings)


def test_frontmatter_that_is_not_a_mapping():
    note = parse("---\n- a\n- b\n---\nBody")
    assert note.frontmatter == {}
    assert note.text == "Source\nBody"
    assert note.warnings


def test_unclosed_frontmatter_is_body_text():
    note = parse("---\nnot closed [[Link]]")
    assert note.frontmatter == {}
    assert note.links == [Link("Link")]


def test_frontmatter_dates_become_iso_strings():
    note = parse("---\ncreated: 2023-01-08\n---\n")
    assert note.frontmatter == {"created": "2023-01-08"}
    assert note.created == datetime(2023, 1, 8)


# --- created ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "front, expected",
    [
        ("created: 2022-01-31T12:34:56", datetime(2022, 1, 31, 12, 34, 56)),
        ("date: 2022-01-31", datetime(2022, 1, 31)),
        ("created: '2022-01-31 08:00'", datetime(2022, 1, 31, 8, 0)),
        ("created: 2022-01-31T12:00:00+02:00", datetime(2022, 1, 31, 10, 0)),
    ],
)
def test_created_from_frontmatter(front, expected):
    assert parse(f"---\n{front}\n---\n").created == expected


def test_created_from_a_day_first_body_line():
    note = parse("<div></div>\n\nDate Created: 04/05/2022 13:08:40\nTags: #Definition")
    assert note.created == datetime(2022, 5, 4, 13, 8, 40)


def test_created_is_none_without_a_date():
    assert parse("---\ncreated: someday\n---\nNo date here.").created is None


# --- decoding --------------------------------------------------------------------------------------


def test_invalid_utf8_is_replaced_with_a_warning():
    note = parse_note("n.md", b"caf\xe9 [[Link]]")
    assert note.links == [Link("Link")]
    assert "caf\ufffd" in note.text
    assert any("UTF-8" in w for w in note.warnings)


def test_bom_is_stripped_before_frontmatter():
    note = parse_note("n.md", b"\xef\xbb\xbf---\nphase_id: p1\n---\nBody")
    assert note.frontmatter == {"phase_id": "p1"}
    assert note.warnings == []


def test_crlf_line_endings():
    note = parse_note("n.md", b"---\r\naliases: [A]\r\n---\r\n```\r\n[[Hidden]]\r\n```\r\n[[Shown]]\r\n")
    assert note.aliases == ["A"]
    assert note.links == [Link("Shown")]


# --- readable text ---------------------------------------------------------------------------------


def test_text_is_title_and_what_a_reader_sees():
    text = (
        "---\nphase_id: p\n---\n# Heading\n\nSee [[folder/Other Note]], [[Note|shown text]], "
        "[[Note#Part]] and [a link](Target.md).\n![[diagram.png]]\n%% hidden remark %%\n"
        "<!-- hidden html -->\n```js\nconst kept = 1;\n```\n"
    )
    note = parse(text, path="a/My Title.md")
    assert note.title == "My Title"
    assert note.text == (
        "My Title\n# Heading\n\nSee Other Note, shown text, Note > Part and a link.\n\nconst kept = 1;"
    )


def test_blank_line_runs_collapse():
    assert parse("a\n\n\n\n\nb\n   \n\t\nc").text == "Source\na\n\nb\n\nc"


def test_huge_note_is_capped_with_a_warning():
    note = parse("word " * 10_000, max_embed_chars=500)
    assert len(note.text) == 500
    assert note.truncated
    assert any("capped" in w for w in note.warnings)


def test_short_note_is_not_truncated():
    note = parse("short")
    assert not note.truncated and note.warnings == []


def test_random_markdown_never_raises():
    rng = random.Random(0)
    pieces = "---\n [[ ]] ![ ]( ) %% <!-- --> ` ``` ~~~ # | \\ \n \r\n a é ad-x <b> %20 ^ title:[".split(" ")
    pieces.append(" ")
    for _ in range(500):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 40)))
        note = parse_note("f.md", text.encode("utf-8") + bytes([rng.randint(128, 255)]))
        assert note.text.startswith("f")


def test_empty_note():
    note = parse_note("Empty.MD", b"")
    assert (note.title, note.text, note.links, note.tags, note.created) == ("Empty", "Empty", [], [], None)
