"""The sample company's exports (include/sample_company) dropped into a test's lake."""

from __future__ import annotations

import sys
from datetime import datetime

from environment import ROOT


def drop_exports(lake, starts: list[str]) -> None:
    """Every batch's exports at once, before any batch runs: the first batch takes them all
    (a files source's batch takes what is in its inbox), however the batches are run."""
    sys.path.append(str(ROOT / "include"))
    from sample_company import generate

    for start in starts:
        generate.drop_batch(lake, datetime.fromisoformat(start))
