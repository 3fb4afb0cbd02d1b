"""Fixtures shared by the adapter tests: the loopback fake providers and a fresh store."""

from __future__ import annotations

import pytest

from tests.fakes import FakeProviders
from tokenomics.store import Store


@pytest.fixture
def fake():
    with FakeProviders() as f:
        yield f


@pytest.fixture
def store(tmp_path):
    st = Store.open(tmp_path / "s.db")
    yield st
    st.close()
