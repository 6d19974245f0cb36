"""suggest and the reranker's fit through VaultService on the sample vault."""

import numpy as np

from vaultlearn.config import Config
from vaultlearn.index.adapter import fit_adapter
from vaultlearn.index.features import BASE_FEATURES
from vaultlearn.ranking import ADAPTER
from vaultlearn.service import VaultService
from vaultlearn.store import Store


def test_notes_sharing_a_title_are_not_mentioned(indexed_sample_vault):
    service = VaultService(indexed_sample_vault)
    try:
        out = service.suggest("Projects/Solar Dryer/Overview", k=60)
    finally:
        service.close()
    overviews = [s for s in out if s.title == "Overview"]
    assert overviews and not any(s.mentioned for s in overviews)
    assert not any("mentioned" in s.reason for s in overviews)


def test_a_written_name_is_still_a_mention(indexed_sample_vault):
    service = VaultService(indexed_sample_vault)
    try:
        out = {s.title: s for s in service.suggest("Projects/Solar Dryer/Test Results", k=60)}
    finally:
        service.close()
    assert out["Dew Point"].mentioned  # "cooled below the dew point", not linked


def test_refit_only_when_links_moved(sample_vault):
    service = VaultService(sample_vault)
    try:
        first = service.index()
        assert first.rank_fit is not None
        links = Store(sample_vault, create=False).link_counts()[0]
        assert first.rank_fit["links"] == links
        assert service.index().rank_fit is None  # nothing changed
        note = sample_vault / "Inbox" / "Ideas.md"
        added = int(0.03 * links) + 1
        targets = ["Dew Point", "Shade Cloth", "Relative Humidity", "Greenhouse Ventilation", "Food Drying Safety"]
        note.write_text(note.read_text(encoding="utf-8") + "\n" + " ".join(f"[[{t}]]" for t in targets[:added]) + "\n",
                        encoding="utf-8")
        moved = service.index()
        assert moved.rank_fit is not None and moved.rank_fit["links"] > links
    finally:
        service.close()


def test_state_without_link_texts_is_relinked_without_re_embedding(sample_vault):
    service = VaultService(sample_vault)
    try:
        service.index()
        texts = service.store.link_texts()
        assert texts  # the sample vault writes [[Target|display]] links
        with service.store.transaction():  # as schema 1 left it: no display texts, a relink pending
            service.store._execute("UPDATE links SET display = NULL")
            service.store.set_meta("relink", "1")
        assert service.store.link_texts() == []
        report = service.index()
        assert report.embedded == 0 and not service.store.get_meta("relink")
        assert sorted(service.store.link_texts()) == sorted(texts)
    finally:
        service.close()


def test_the_fit_stores_which_notes_name_which_without_linking(sample_vault):
    service = VaultService(sample_vault)
    try:
        fit = service.index().rank_fit
        store = service.store
        by_path = {row.id: row.path for row in store.notes()}
        named = {(by_path[a], by_path[b]) for a, b in store.mentions()}
        test_results, dew_point = "Projects/Solar Dryer/Test Results.md", "Concepts/Dew Point.md"
        assert (test_results, dew_point) in named  # "cooled below the dew point", not linked
        assert dew_point not in {by_path[b] for a, b, _ in store.edges() if by_path[a] == test_results}
        assert fit["unlinked_mentions"] == len(named) and not any(a == b for a, b in named)
        ctx = service.rank_context()
        assert ctx.unlinked.nnz == len(named)
        fit["features"] = [f for f in BASE_FEATURES if f != "link_rate"]  # as a version without it fitted
        store.set_json("rank_fit", fit)
        assert service.index().rank_fit is not None  # refitted with this version's features
        assert service.index().rank_fit is None
    finally:
        service.close()


def test_the_adapter_is_fitted_with_the_reranker_and_read_by_suggestions(sample_vault):
    service = VaultService(sample_vault)
    try:
        service.index()
        stored = service.store.get_array(ADAPTER)
        ctx = service.rank_context()
        assert stored.shape == (ctx.vectors.shape[1],) * 2 and np.isfinite(stored).all()
        assert np.allclose(stored, fit_adapter(ctx.vectors, ctx.graph), atol=1e-5)  # fitted on the visible links
        service.ranking._rank_context = None  # a fresh process: the context reads the stored adapter
        assert service.rank_context().fitted_adapter is not None
        assert np.array_equal(service.rank_context().adapter, stored)
        hidden = ctx.with_graph(ctx.graph.without(ctx.graph.links()[:5]))
        assert hidden.fitted_adapter is None  # fitted without the hidden links when a fit case needs it
        assert not np.allclose(hidden.adapter, stored)
        assert service.index().rank_fit is None
        fit = service.store.get_json("rank_fit")
        service.store.set_json("rank_fit", {**fit, "model": "another-model|256"})
        assert service.index().rank_fit is not None  # embeddings of another model: weights and adapter refitted
        service.store._execute("DELETE FROM arrays")
        assert service.index().rank_fit is not None  # state fitted before the adapter was stored
        assert service.store.get_array(ADAPTER) is not None
    finally:
        service.close()


def test_a_vault_above_the_approximate_size_suggests_from_its_index_what_comparing_every_note_gives(sample_vault):
    """With an IVF index that reads every list, the index's shortlist is exact: the suggestions must be those of
    the path that compares the note with every note, although the pool is smaller than the vault."""
    config = Config(approximate_index_above=20, approximate_probe_share=1.0, candidate_pool=8)
    service = VaultService(sample_vault, config)
    try:
        service.index()
        assert service.vectors().approximate and len(service.vectors()) > 20 + config.candidate_pool
        ctx = service.rank_context()
        assert service.ranking.approximate_search(ctx) is not None
        paths = [ctx.notes[p].path.removesuffix(".md") for p in range(0, len(ctx.ids), 4)]
        searched = {p: service.suggest(p, 10) for p in paths}
        service.ranking.approximate_search = lambda ctx: None  # every note compared
        for path in paths:
            every = service.suggest(path, 10)
            assert [s.path for s in searched[path]] == [s.path for s in every], path
            assert all(abs(a.score - b.score) < 1e-5 for a, b in zip(searched[path], every))
    finally:
        service.close()


def test_a_small_vault_compares_every_note(indexed_sample_vault):
    service = VaultService(indexed_sample_vault)
    try:
        assert not service.vectors().approximate
        assert service.ranking.approximate_search(service.rank_context()) is None
    finally:
        service.close()


def test_concurrent_readers_share_one_rank_context_build(indexed_sample_vault, monkeypatch):
    import threading

    from vaultlearn.index.context import RankContext

    builds = []
    real_build = RankContext.build.__func__

    def counted(cls, *args, **kwargs):
        builds.append(1)
        return real_build(cls, *args, **kwargs)

    monkeypatch.setattr(RankContext, "build", classmethod(counted))
    monkeypatch.setattr("vaultlearn.ranking.load_snapshot", lambda *args: None)  # no saved context: a build
    service = VaultService(indexed_sample_vault)
    try:
        got = []
        threads = [threading.Thread(target=lambda: got.append(service.rank_context())) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(builds) == 1 and len(got) == 4 and all(c is got[0] for c in got)
    finally:
        service.close()
