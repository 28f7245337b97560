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
