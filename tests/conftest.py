from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"


def pytest_configure(config: pytest.Config) -> None:
    # `./dev test` runs these e2e tests last, one at a time: a trace replay's scrapes or a history's backfill
    # take a core, and beside them the other modules' clocked checks (a drill's time to detect at 20x, a
    # runbook's deadline) measured the machine's load rather than the product.
    config.addinivalue_line("markers", "heavy: an e2e test whose servers load the machine; run alone, after the rest")


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def catalog():
    from console.catalog import load_catalog

    return load_catalog(ROOT / "fleet.yaml")
