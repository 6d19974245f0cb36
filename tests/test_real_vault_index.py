"""The real development vaults index end to end with the default model (slow: minutes on a CPU)."""

import shutil

import pytest

from tests.conftest import shared_vault
from vaultlearn.service import VaultService

pytestmark = [pytest.mark.slow, pytest.mark.shared]


@pytest.mark.parametrize("name, notes, min_links", [("mathwiki", 928, 2400), ("vaultofknowledge", 2719, 2300)])
def test_real_vault_indexes_and_suggests(tmp_path, name, notes, min_links):
    copy = tmp_path / name
    shutil.copytree(shared_vault(name), copy)
    service = VaultService(copy)
    service.index()
    status = service.status()
    assert status.notes == status.embedded == status.index_size == notes
    assert status.links >= min_links
    assert len(status.phases) >= 2
    some_note = service.store.notes()[0].path
    assert len(service.suggest(some_note, 10)) == 10
    fit = service.store.get_json("rank_fit")
    assert fit["model"] == "linear" and fit["mrr_unseen"] > fit["mrr_cosine_unseen"]  # the reranker was kept
    again = service.index()
    assert again.embedded == 0
    assert again.rank_fit is None  # an unchanged vault is not refitted
