"""The rank context saved for fresh processes: hashed phrases, the snapshot round trip, its key, a broken one."""

import math
from datetime import datetime, timezone

import numpy as np
import pytest

from vaultlearn.index.mentions import EVIDENCE, MentionMatcher, fold, folded_names, learned_names
from vaultlearn.index.phrases import HashedPhrases
from vaultlearn.index.snapshot import load_snapshot, snapshot_key
from vaultlearn.paths import StatePaths, rank_snapshot_folder, rank_snapshot_folders
from vaultlearn.service import VaultService
from vaultlearn.store import Store

NAMES = [["Query"], ["Solar Dryer", "dryer box"], ["Gluons"], ["Display Serial Interface"], ["Box"],
         ["Solar"], ["History of Ethereum", "ethereum"], ["Dew Point"], ["Dew Point"]]
TEXTS = ["gluons and a solar dryer; the Solar Dryer again, in a dryer box", "DSI and the ethereum history",
         "the dew point", "nothing here", "a box of solar", "", "solar"]


def test_hashed_phrases_answer_as_the_phrase_index():
    folded = folded_names(NAMES)
    learned = learned_names(folded, np.array([[0, 4], [3, 2]]), ["the big box", "colour charge"])
    in_memory = MentionMatcher(NAMES, learned, folded)
    hashed = MentionMatcher(NAMES, phrases=HashedPhrases.of(in_memory.phrases))
    everyone = np.arange(len(NAMES))
    texts = TEXTS + ["the big box holds colour charge"]
    for text in texts:
        assert hashed.named_in(text).tolist() == in_memory.named_in(text).tolist()
        for query in (None, 0, 1):
            np.testing.assert_array_equal(hashed.evidence(text, everyone, query),
                                          in_memory.evidence(text, everyone, query))
    evidence = in_memory.evidence("the big box holds colour charge", everyone)
    assert evidence[:, EVIDENCE.index("learned_alias")].tolist() == [0, 0, 1, 0, 1, 0, 0, 0, 0]
    for matcher in (in_memory, hashed):  # the vault-wide scan, all texts at once, finds what one at a time does
        assert [found.tolist() for found in matcher.named_in_texts(texts)] == \
            [in_memory.named_in(text).tolist() for text in texts]
    assert in_memory.named_in_texts(texts)[0].tolist() == [1, 2, 4, 5]  # dryer, gluons, box, solar


def test_the_vault_wide_scan_keeps_texts_apart_and_splits_them_into_chunks():
    matcher = MentionMatcher([["Solar Dryer"], ["Dew Point"], ["Gluons"]])
    texts = ["the solar", "dryer and dew", "point", "", "gluon solar dryer"]  # a phrase across two texts is none
    expected = [matcher.named_in(text).tolist() for text in texts]
    assert expected == [[], [], [], [], [0, 2]]
    for chunk_words in (1, 2, 3, 100):
        found = matcher.phrases.named_in_texts([fold(text).split() for text in texts], chunk_words=chunk_words)
        assert [sorted(f) for f in found] == expected


def test_a_phrase_cut_by_the_end_of_the_text_is_not_a_shorter_name():
    matcher = MentionMatcher([["Solar Dryer"], ["Solar"]])
    counts = matcher.evidence("and then solar", np.arange(2))[:, EVIDENCE.index("mention_count")]
    assert counts.tolist() == pytest.approx([0, np.log1p(1)])  # once: not again as a "solar dryer" cut short


def _suggestions(service: VaultService, paths: list[str]) -> dict[str, list[dict]]:
    return {p: [s.to_json() for s in service.suggest(p, 10)] for p in paths}


def test_a_full_index_saves_the_context_and_a_fresh_process_suggests_the_same_from_it(sample_vault, monkeypatch):
    service = VaultService(sample_vault)
    service.index()
    built = service.rank_context()
    paths = [n.path for n in built.notes]
    expected = _suggestions(service, paths)
    service.close()
    root = StatePaths(sample_vault).rank_snapshots
    store = Store(sample_vault, create=False)
    assert rank_snapshot_folders(root) == [rank_snapshot_folder(root, snapshot_key(store))]
    loaded = load_snapshot(root, snapshot_key(store), store)
    for name in ("ids", "vectors", "folder", "phase", "created", "shown_links", "fitted_adapter"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(built, name))
    created = dict(zip(paths, built.created.tolist()))  # the date a note states, in days; NaN: none stated
    firmware = datetime(2023, 11, 11, tzinfo=timezone.utc).timestamp() / 86400  # "created: 2023-11-11"
    assert created["Projects/Beehive Monitor/Firmware.md"] == firmware
    assert math.isnan(created["People/Priya Nair.md"])
    for name in ("tags", "unlinked"):
        assert (getattr(loaded, name) != getattr(built, name)).nnz == 0
    assert (loaded.graph.out != built.graph.out).nnz == 0 and loaded.shown_texts == built.shown_texts
    assert list(loaded.notes) == list(built.notes) and loaded.unlinked.nnz > 0 and len(loaded.shown_texts) > 0
    store.close()

    fresh = VaultService(sample_vault)
    try:
        assert not isinstance(fresh.rank_context().notes, list)  # read from the snapshot, not built
        assert _suggestions(fresh, paths) == expected
    finally:
        fresh.close()


def test_a_changed_state_does_not_read_an_older_snapshot(sample_vault):
    service = VaultService(sample_vault)
    try:
        service.index()
        root = StatePaths(sample_vault).rank_snapshots
        before = rank_snapshot_folders(root)
        note = sample_vault / "Inbox" / "Fresh idea.md"
        note.parent.mkdir(exist_ok=True)
        note.write_text("# Fresh idea\n\nA solar dryer with a fan, see [[Dew Point]].\n")
        service.index(["Inbox/Fresh idea.md"])  # one path: a daemon's change, the snapshot is not rewritten
        key = snapshot_key(service.store)
        assert rank_snapshot_folders(root) == before and load_snapshot(root, key, service.store) is None
        assert any(s.path == "Inbox/Fresh idea.md" for s in service.suggest("Dew Point", 50))
        service.index()  # a full index saves the new state's and removes the old
        assert rank_snapshot_folders(root) == [rank_snapshot_folder(root, key)]
    finally:
        service.close()


def test_a_broken_snapshot_is_not_read_and_the_context_is_built(sample_vault):
    service = VaultService(sample_vault)
    service.index()
    path = service.rank_context().notes[0].path
    expected = _suggestions(service, [path])
    service.close()
    folder, = rank_snapshot_folders(StatePaths(sample_vault).rank_snapshots)
    (folder / "links_indices.npy").write_bytes(b"\x93NUMPY broken")
    fresh = VaultService(sample_vault)
    try:
        assert isinstance(fresh.rank_context().notes, list)  # built from the store
        assert _suggestions(fresh, [path]) == expected
    finally:
        fresh.close()


def test_a_state_rebuilt_from_scratch_has_another_key(sample_vault):
    service = VaultService(sample_vault)
    service.index()
    store = service.store
    old = snapshot_key(store)
    with store.transaction():
        store.delete_notes([store.notes()[0].id])
    assert snapshot_key(store) != old  # same generation and mentions version, fewer notes
    service.close()


def test_a_note_gone_while_the_saved_context_is_read_makes_the_process_build_it(sample_vault, monkeypatch):
    from vaultlearn.index import snapshot

    service = VaultService(sample_vault)
    service.index()
    path = service.rank_context().notes[0].path
    expected = _suggestions(service, [path])
    service.close()

    def gone(self, positions):  # another process deleted a candidate after this one loaded the context
        raise snapshot.StaleSnapshotError("gone")

    monkeypatch.setattr(snapshot.StoredNotes, "prefetch", gone)
    fresh = VaultService(sample_vault)
    try:
        assert _suggestions(fresh, [path]) == expected
        assert isinstance(fresh.rank_context().notes, list) and not fresh.ranking.read_snapshot
    finally:
        fresh.close()


def test_a_long_lived_service_builds_its_context(sample_vault):
    writer = VaultService(sample_vault)
    writer.index()
    writer.close()
    daemon = VaultService(sample_vault, long_lived=True)
    try:
        assert rank_snapshot_folders(StatePaths(sample_vault).rank_snapshots)
        assert isinstance(daemon.rank_context().notes, list)
    finally:
        daemon.close()


def test_a_fit_in_a_process_that_read_the_saved_context_matches_names_as_the_builder(sample_vault):
    writer = VaultService(sample_vault)
    writer.index()
    stored_mentions = sorted(writer.store.mentions())
    writer.close()
    fresh = VaultService(sample_vault)
    try:
        assert not isinstance(fresh.rank_context().notes, list)  # the saved context
        report = fresh.fit_ranker()
        assert report["unlinked_mentions"] == len(stored_mentions) > 0
        assert sorted(fresh.store.mentions()) == stored_mentions
    finally:
        fresh.close()


def test_the_matcher_keeps_few_readings_and_answers_the_same_without_them(monkeypatch):
    import vaultlearn.index.mentions as mentions_module

    expected = [MentionMatcher(NAMES).named_in(text).tolist() for text in TEXTS]
    monkeypatch.setattr(mentions_module, "KEPT_WORDS", 5)
    monkeypatch.setattr(mentions_module, "KEPT_READINGS", 2)
    matcher = MentionMatcher(NAMES)
    for _ in range(2):
        assert [matcher.named_in(text).tolist() for text in TEXTS] == expected
        assert len(matcher._readings) <= 2 and matcher._kept_words <= 5
        assert matcher._kept_words == sum(len(r.words) for r in matcher._readings.values())
