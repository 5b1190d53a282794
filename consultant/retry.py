"""When to try again: one backoff rule for every retry the desk makes."""

from __future__ import annotations

import random
from datetime import timedelta


def backoff(attempts: int, *, base: float, cap: float) -> timedelta:
    """``base * 2**(attempts-1)`` seconds, at most ``cap``, with 25% jitter either way.

    The jitter keeps many failed items (or many pollers) from retrying in lockstep.
    """
    delay = min(base * 2 ** max(0, attempts - 1), cap)
    return timedelta(seconds=delay * random.uniform(0.75, 1.25))
