"""Shared test set-up: a private cache directory and deterministic, quiet torch."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Every test session gets its own cache, so tests never read or write the user's cache."""
    monkeypatch.setenv("SCFLOW_CACHE", str(tmp_path_factory.getbasetemp() / "scflow-cache"))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture
def one_thread():
    """One intra-op thread: tiny nets run ~10x faster than with 2 threads on a busy 2-core box."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
