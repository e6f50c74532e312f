"""One cluster (three replicas behind HAProxy) for the whole module, and the figures the proofs
measure: printed at the end, and written as JSON when `SLIPWAY_SCALE_REPORT` names a file (the
by-hand run, `bash scripts/scale.sh`, turns it into a report)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.scale.cluster import Cluster


@pytest.fixture(scope="session")
def figures() -> Iterator[dict[str, Any]]:
    found: dict[str, Any] = {}
    yield found
    print("\nscale figures:\n" + json.dumps(found, indent=2))
    target = os.environ.get("SLIPWAY_SCALE_REPORT")
    if target:
        path = Path(target)
        previous = json.loads(path.read_text()) if path.exists() else {}
        path.write_text(json.dumps({**previous, **found}, indent=2))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with Cluster(tmp_path_factory.mktemp("scale"), replicas=3) as running:
        yield running
