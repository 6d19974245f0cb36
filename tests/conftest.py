"""Shared fixtures: copies of the repo's sample vault, the real vaults when ../shared is present."""

import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLE_VAULT = REPO / "sample_vault"
SHARED_VAULTS = REPO.parent / "shared" / "vaults"


@pytest.fixture
def sample_vault(tmp_path) -> Path:
    """A fresh copy of sample_vault/ (tests never write into the repository's own vault)."""
    target = tmp_path / "vault"
    shutil.copytree(SAMPLE_VAULT, target, ignore=shutil.ignore_patterns(".vaultlearn"))
    return target


@pytest.fixture(scope="module")
def indexed_sample_vault(tmp_path_factory) -> Path:
    """A copy of sample_vault/ indexed once with the real default model, shared by a module's tests."""
    from vaultlearn.service import VaultService

    target = tmp_path_factory.mktemp("indexed") / "vault"
    shutil.copytree(SAMPLE_VAULT, target, ignore=shutil.ignore_patterns(".vaultlearn"))
    service = VaultService(target)
    service.index()
    service.close()
    return target


def shared_vault(name: str) -> Path:
    """A real development vault under ../shared/vaults, or skip the test when it is absent."""
    path = SHARED_VAULTS / name / "vault"
    if not path.is_dir():
        pytest.skip(f"{path} is not present")
    return path


def pytest_collection_modifyitems(config, items):
    """GPU tests skip cleanly where torch sees no CUDA device."""
    if not any("gpu" in item.keywords for item in items):
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
