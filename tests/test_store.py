"""The sqlite state: ids survive updates and renames, links resolve by id, postings find affected notes."""


from datetime import datetime, timezone

import numpy as np
import pytest

from vaultlearn.errors import StateError
from vaultlearn.store import Store
from vaultlearn.vault.names import name_key


def _note(store, path):
    return store.upsert_note(path, path[:-3], "h-" + path, 10, 1.0, {}, [], [], [])


def test_ids_are_stable_across_updates_and_renames(tmp_path):
    store = Store(tmp_path)
    with store.transaction():
        a = _note(store, "a.md")
        again = store.upsert_note("a.md", "a", "new-hash", 11, 2.0, {}, ["A"], ["t"], [])
        store.rename_note(a, "folder/b.md", "b")
    assert again == a
    row = store.note_by_path("folder/b.md")
    assert (row.id, row.hash, row.aliases, row.tags) == (a, "new-hash", ["A"], ["t"])
    assert store.note_by_path("a.md") is None


def test_transaction_rolls_back_on_error(tmp_path):
    store = Store(tmp_path)
    with pytest.raises(RuntimeError):
        with store.transaction():
            _note(store, "a.md")
            raise RuntimeError("killed mid-write")
    assert store.notes() == []


def test_links_edges_and_counts(tmp_path):
    store = Store(tmp_path)
    with store.transaction():
        a, b = _note(store, "a.md"), _note(store, "b.md")
        store.replace_links(a, [("b", "link", False), ("Future Note", "link", False), ("img.png", "embed", False),
                                ("", "link", False)])
        rows = dict(store.links_from([a]))
        resolution = {"b": b, "": a}
        store.set_resolutions((rowid, resolution.get(link.target), link.target == "img.png")
                              for rowid, link in rows.items())
    assert store.edges() == [(a, b, "link")]  # self link and unresolved/attachment links are not edges
    assert store.link_counts() == (1, 1)  # one note link; one unresolved (the attachment is neither)
    assert store.outgoing(a) == {a, b}
    assert {link.target for _, link in store.links_with_keys([name_key("Folder/B.md")])} == {"b"}


def test_deleting_a_note_cascades_and_unresolves_links_to_it(tmp_path):
    store = Store(tmp_path)
    with store.transaction():
        a, b = _note(store, "a.md"), _note(store, "b.md")
        store.replace_links(a, [("b", "link", False)])
        store.set_resolutions([(rowid, b, False) for rowid, _ in store.links_from([a])])
        store.put_embeddings([b], np.ones((1, 4), np.float32))
        store.put_postings([b], [np.array([3, 7])])
        store.delete_notes([b])
    assert store.edges() == []
    assert store.link_counts() == (0, 1)
    assert store.embedding(b) is None
    assert store.notes_touching([3, 7]) == set()


def test_unlinked_mentions_are_replaced_whole_and_go_with_their_notes(tmp_path):
    store = Store(tmp_path)
    with store.transaction():
        a, b, c = (_note(store, f"{n}.md") for n in "abc")
        store.replace_mentions([(a, b), (a, c), (c, b), (a, b)])
    assert sorted(store.mentions()) == [(a, b), (a, c), (c, b)] and store.mentions_version == 1
    with store.transaction():
        store.delete_notes([c])
    assert store.mentions() == [(a, b)]
    with store.transaction():
        store.replace_mentions([(b, a)])
    assert store.mentions() == [(b, a)] and store.mentions_version == 2


def test_embeddings_and_postings_round_trip(tmp_path):
    store = Store(tmp_path)
    vectors = np.arange(12, dtype=np.float32).reshape(3, 4)
    with store.transaction():
        ids = [_note(store, f"n{i}.md") for i in range(3)]
        store.put_embeddings(ids, vectors)
        store.put_postings(ids, [np.array([1, 2]), np.array([2, 900]), np.array([], dtype=np.int64)])
    got_ids, got = store.all_embeddings()
    assert got_ids.tolist() == ids and np.array_equal(got, vectors)
    assert store.notes_touching([2]) == {ids[0], ids[1]}
    assert store.notes_touching([900, 5]) == {ids[1]}
    assert store.notes_without_postings() == {ids[2]}


def test_generation_and_schema_guard(tmp_path):
    store = Store(tmp_path)
    assert store.generation == 0
    assert store.bump_generation() == 1 and store.generation == 1
    store.set_meta("schema_version", "999")
    store.close()
    with pytest.raises(StateError, match="schema"):
        Store(tmp_path)


def test_unreadable_database_is_a_clear_error(tmp_path):
    (tmp_path / ".vaultlearn").mkdir()
    (tmp_path / ".vaultlearn" / "state.sqlite").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StateError, match="unreadable"):
        Store(tmp_path)


def test_missing_state_without_create(tmp_path):
    with pytest.raises(StateError, match="not been indexed"):
        Store(tmp_path, create=False)
    assert not (tmp_path / ".vaultlearn").exists()


def test_links_keep_display_text_and_schema_1_state_is_migrated(tmp_path):
    store = Store(tmp_path)
    with store.transaction():
        a, b = _note(store, "a.md"), _note(store, "b.md")
        store.replace_links(a, [("b", "link", False, "bee"), ("b", "link", False)])
        store.set_resolutions((rowid, b, False) for rowid, _ in store.links_from([a]))
    assert store.link_texts() == [(a, b, "bee")]
    with store.transaction():  # state as schema 1 wrote it: no display column
        store._execute("ALTER TABLE links DROP COLUMN display")
        store.set_meta("schema_version", "1")
    store.close()
    store = Store(tmp_path)
    assert store.get_meta("schema_version") == "2" and store.get_meta("relink") == "1"
    assert store.link_texts() == [] and len(store.edges()) == 2


def test_light_reads_agree_with_full_rows(tmp_path):
    """The aggregate reads a re-index and ``status`` use equal what the full note rows say."""
    store = Store(tmp_path)
    with store.transaction():
        a, b, c = _note(store, "a.md"), _note(store, "b.md"), _note(store, "c.md")
        store.upsert_note("c.md", "c", "h-c", 5, 3.0, {}, [], [], ["c.md: too big"])
        store.set_phases({a: "p1", b: "p1", c: "p2"})
        store.replace_links(a, [("b", "link", False), ("c", "link", False), ("a", "link", False)])
        store.replace_links(c, [("a", "link", False), ("nowhere", "link", False)])
        store.set_resolutions([(rowid, {"b": b, "c": c, "a": a}.get(link.target), False)
                               for rowid, link in store.links_from([a, c])])
    rows = store.notes()
    assert store.note_stats() == [(r.id, r.path, r.hash, r.size, r.mtime) for r in sorted(rows, key=lambda r: r.id)]
    assert store.paths_by_ids([a, c, 999]) == {a: "a.md", c: "c.md"}
    assert store.ids_by_paths(["b.md", "nowhere.md"]) == {"b.md": b}
    assert store.phase_counts() == {"p1": 2, "p2": 1}
    assert store.warned_count() == sum(bool(r.warnings) for r in rows) == 1
    phase_of = {r.id: r.phase for r in rows}
    expected: dict[str, int] = {}
    for src, _, _ in store.edges():
        expected[phase_of[src]] = expected.get(phase_of[src], 0) + 1
    assert store.edge_counts_by_phase() == expected == {"p1": 2, "p2": 1}


def test_state_keyed_by_the_old_casefold_rule_is_rekeyed_and_still_finds_its_links(tmp_path):
    """Links stored by a version that keyed targets with ``casefold`` (no NFC) are found by the keys of the notes
    that appear later, as the resolver compares names (``lookup_key``)."""
    decomposed = "Cafe\u0301"  # "Café" as NFD, as some file systems hand names over
    store = Store(tmp_path)
    with store.transaction():
        a = _note(store, "a.md")
        store.replace_links(a, [("Straße", "link", False), (decomposed, "link", False), ("Folder/B.MD", "link", False)])
        for rowid, link in store.links_from([a]):  # the keys as the old rule wrote them
            old = link.target.rsplit("/", 1)[-1].casefold()
            store._execute("UPDATE links SET target_key = ? WHERE rowid = ?", (old.removesuffix(".md"), rowid))
        store._execute("DELETE FROM meta WHERE key = 'link_key_rule'")
    assert store.links_with_keys([name_key("Straße.md")]) == []  # "strasse" stored: the old rule misses it
    store.close()
    store = Store(tmp_path)
    found = {link.target for _, link in store.links_with_keys([name_key(p) for p in ("Straße.md", "Café.md", "b.md")])}
    assert found == {"Straße", decomposed, "Folder/B.MD"}


def test_arrays_are_stored_as_float32_with_their_shape(tmp_path):
    store = Store(tmp_path)
    try:
        assert store.get_array("w") is None
        w = np.arange(12, dtype=np.float64).reshape(3, 4) / 7
        store.set_array("w", w)
        got = store.get_array("w")
        assert got.dtype == np.float32 and got.shape == (3, 4) and np.allclose(got, w)
        store.set_array("w", np.ones(2))
        assert store.get_array("w").tolist() == [1.0, 1.0]
    finally:
        store.close()


def test_ranking_rows_read_the_stated_creation_date_in_days(tmp_path):
    """A zoned date counts in its own zone, one without a zone as UTC; none, or an unreadable one, is None."""
    store = Store(tmp_path)
    stated = {"aware.md": "2024-01-02T12:00:00+02:00", "naive.md": "2024-01-02T10:00:00", "none.md": None,
              "bad.md": "the day after"}
    with store.transaction():
        ids = {path: store.upsert_note(path, path[:-3], f"h-{path}", 1, 1.0, {"created": when}, [], [], [])
               for path, when in stated.items()}
    created = {path: store.ranking_rows()[i][5] for path, i in ids.items()}
    day = datetime(2024, 1, 2, 10, tzinfo=timezone.utc).timestamp() / 86400
    assert created["aware.md"] == pytest.approx(day) and created["naive.md"] == pytest.approx(day)
    assert created["none.md"] is None and created["bad.md"] is None
    assert store.ranking_rows([ids["naive.md"]]) == {ids["naive.md"]: store.ranking_rows()[ids["naive.md"]]}
