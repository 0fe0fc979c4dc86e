"""The one retry loop behind every ref and tag write: compare-and-swap, bounded, jittered.

Every writer of a ref (the runs ref, a remote-tracking runs ref, a registry claim) or a tag
reads what is there, builds its change on it and swaps it in only if nothing moved meanwhile
(:meth:`gitml.core.gitrepo.GitRepo.set_ref_if_equals`, ``add_ref_if_new``, ``create_tag``). A
lost race is retried here, on the newest value, after a random pause that grows with each
attempt, so that many writers spread out instead of colliding in step::

    for attempt in attempts("update refs/gitml/runs"):
        tip = repo.ref(RUNS_REF)
        new = build_on(tip)
        if repo.set_ref_if_equals(RUNS_REF, tip, new):
            return new

When the bound is reached the loop raises :class:`~gitml.core.errors.ConcurrencyError` (exit 1).
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator

from gitml.core.errors import ConcurrencyError

#: Attempts for a write to this repository: losing 400 races in a row means something is wrong.
LOCAL_ATTEMPTS = 400
#: Attempts for a push to a git remote, where each attempt is a fetch, a merge and a push.
REMOTE_ATTEMPTS = 10
#: Longest pause between two local attempts, in seconds.
MAX_BACKOFF = 0.25


def backoff(attempt: int, base: float = 0.002, cap: float = MAX_BACKOFF) -> float:
    """The longest pause after losing ``attempt`` (0-based) races: ``base`` x 1.5^attempt, capped.

    The pause actually taken is uniform in ``[0, backoff]`` ("full jitter").

    Args:
        attempt: how many races were lost so far, counting from 0.
        base: the bound of the first pause, in seconds.
        cap: the largest bound, in seconds.

    Returns:
        The bound of the pause, in seconds.
    """
    return min(cap, base * (1.5 ** min(attempt, 40)))


def attempts(what: str, limit: int = LOCAL_ATTEMPTS, base: float = 0.002, cap: float = MAX_BACKOFF,
             hint: str = "another process keeps it busy; try again") -> Iterator[int]:
    """Yield attempt numbers 0, 1, … for a compare-and-swap loop, pausing between them.

    The caller returns (or breaks) when its swap succeeds; asking for another attempt sleeps a
    random time in ``[0, backoff(attempt)]`` first.

    Args:
        what: what is being written, for the error (``"update refs/gitml/runs"``).
        limit: how many attempts in all.
        base: the first pause's bound, in seconds.
        cap: the longest pause's bound, in seconds.
        hint: what the user can do when the bound is reached.

    Yields:
        The attempt number, from 0 to ``limit - 1``.

    Raises:
        ConcurrencyError: every attempt was lost.
    """
    for attempt in range(limit):
        yield attempt
        time.sleep(random.uniform(0, backoff(attempt, base, cap)))
    raise ConcurrencyError(f"could not {what} after {limit} attempts", hint=hint)
