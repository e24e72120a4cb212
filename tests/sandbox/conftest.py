from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.sandbox.helpers import SandboxBureau, sandbox_bureau

LATENCY_MS = (50, 250)


@pytest.fixture(scope="module")
def bureau_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxBureau]:
    """One sandbox bureau process per test module (started in about a second)."""
    with sandbox_bureau(tmp_path_factory.mktemp("bureau"), latency_ms=LATENCY_MS) as bureau:
        yield bureau


@pytest.fixture
def bureau(bureau_process: SandboxBureau) -> Iterator[SandboxBureau]:
    """The module's bureau with no fault injected at the start and end of each test."""
    bureau_process.set_faults("none")
    yield bureau_process
    bureau_process.set_faults("none")
