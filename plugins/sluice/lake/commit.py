"""Optimistic Delta commits: prepare from the table as it is, commit, and start again when
another writer came first.

Every writer of a lake table (bronze commits, the subject index, erasure rewrites, the
incident table) goes through :func:`commit_with_retry`, so what counts as a lost race and
how long writers wait before trying again is decided here once.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

#: Attempts of one commit when concurrent writers of the table keep coming first.
COMMIT_ATTEMPTS = 5

T = TypeVar("T")
log = logging.getLogger(__name__)


class TryAgain(Exception):
    """Raised by an attempt that found the table changed under it (a guard matched no row,
    another commit came between): the attempt is prepared again."""


def lost_race(error: BaseException) -> bool:
    """Whether a failed commit lost to another writer (who created the table or committed
    first): worth preparing again from the table as it now is."""
    from deltalake.exceptions import CommitFailedError

    return isinstance(error, TryAgain | CommitFailedError) or "already exists" in str(error)


def commit_with_retry(attempt: Callable[[int], T], what: str, attempts: int = COMMIT_ATTEMPTS) -> T:
    """``attempt(n)`` for n = 0, 1, ... until it returns; a lost race starts it again after a
    short random wait (writers that collided try again at different moments).

    :raises: the last attempt's error, or any error that is not a lost race
    """
    for number in range(attempts):
        try:
            return attempt(number)
        except Exception as error:
            if not lost_race(error) or number == attempts - 1:
                raise
            log.info("%s: a concurrent commit came first (%s); trying again", what, error)
            time.sleep(random.uniform(0.01, 0.05) * 2**number)
    raise AssertionError("unreachable")
