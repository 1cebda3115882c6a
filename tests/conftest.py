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


@pytest.fixture
def no_unit_tests(tmp_path: Path) -> tuple[str, str]:
    """`gpuops lint` arguments that leave out the promtool unit tests (a folder with none): they take seconds
    each and the tests of the rules run them; a test taking this checks the rest of the lint."""
    empty = tmp_path / "no-unit-tests"
    empty.mkdir()
    return ("--tests", str(empty))
