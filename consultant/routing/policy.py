"""Who gets a case: the routing policy as data, and the pure function that applies it.

A coder is *eligible* when active, not away and under capacity. Among the eligible, the
policy's **tiers** are tried in order and the first tier with anyone in it is taken:

- ``specialty``: coders who list the case's specialty;
- ``generalist``: coders who list ``generalist``;
- ``family``: coders with a specialty of the same family (``surgery-digestive`` and
  ``surgery-musculoskeletal`` are both ``surgery``);
- ``anyone``: every eligible coder.

Within the tier, the **preferences** order the coders: ``on_shift`` (inside their working
hours now), ``load`` (fewest open cases for their capacity), ``last_assigned`` (longest
since their last case); the coder's id breaks what is left, so the same state always
gives the same choice. Both lists are desk settings (consultant/desk_settings.py: the
admin's, else ``CONSULTANT_ROUTING_TIERS`` and ``CONSULTANT_ROUTING_PREFER``), read
afresh for each routing, so a change applies to the next case; ``consultant routing
show`` prints them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from fractions import Fraction

from sqlmodel import Session

from consultant import desk_settings

GENERALIST = "generalist"

TIER_MEANING = {
    "specialty": "coders who list the case's specialty",
    "generalist": f"coders who list {GENERALIST}",
    "family": "coders with a specialty of the same family (surgery-*, medicine-*)",
    "anyone": "any eligible coder",
}
PREFERENCE_MEANING = {
    "on_shift": "inside their working hours now",
    "load": "fewest open cases for their capacity",
    "last_assigned": "longest since their last case",
}


@dataclass(frozen=True)
class Candidate:
    """A coder as routing sees them at one instant."""

    id: int
    specialties: frozenset[str]
    capacity: int
    load: int  # unfinished cases they own
    on_shift: bool = True
    last_assigned_at: datetime | None = None
    active: bool = True
    away: bool = False

    @property
    def eligible(self) -> bool:
        return self.active and not self.away and self.load < self.capacity


@dataclass(frozen=True)
class Policy:
    tiers: tuple[str, ...]
    prefer: tuple[str, ...]

    def describe(self) -> list[str]:
        lines = ["eligible: active, not away, fewer open cases than capacity"]
        lines += [f"tier {n}: {t} — {TIER_MEANING[t]}" for n, t in enumerate(self.tiers, 1)]
        lines += [f"then prefer: {p} — {PREFERENCE_MEANING[p]}" for p in self.prefer]
        lines.append("ties: the lowest coder id")
        return lines


def current_policy(session: Session) -> Policy:
    """The policy in force now: the admin's, else the environment's."""
    desk = desk_settings.in_force(session)
    return Policy(tiers=desk.routing_tiers, prefer=desk.routing_prefer)


def family(specialty: str) -> str:
    return specialty.split("-", 1)[0]


def tier_of(candidate: Candidate, specialty: str, policy: Policy) -> int | None:
    """The first of the policy's tiers the candidate falls in for this case, if any."""
    for index, tier in enumerate(policy.tiers):
        if _in_tier(candidate, specialty, tier):
            return index
    return None


def _in_tier(candidate: Candidate, specialty: str, tier: str) -> bool:
    if tier == "specialty":
        return specialty in candidate.specialties
    if tier == "generalist":
        return GENERALIST in candidate.specialties
    if tier == "family":
        return any(family(s) == family(specialty) for s in candidate.specialties)
    return tier == "anyone"


def choose(candidates: Iterable[Candidate], specialty: str, policy: Policy) -> Candidate | None:
    """The coder this case goes to, or ``None`` when nobody is eligible."""
    ranked = []
    for candidate in candidates:
        if not candidate.eligible:
            continue
        tier = tier_of(candidate, specialty, policy)
        if tier is not None:
            ranked.append(((tier, *_preferences(candidate, policy), candidate.id), candidate))
    return min(ranked, key=lambda pair: pair[0])[1] if ranked else None


def _preferences(candidate: Candidate, policy: Policy) -> list[object]:
    keys: list[object] = []
    for preference in policy.prefer:
        if preference == "on_shift":
            keys.append(0 if candidate.on_shift else 1)
        elif preference == "load":
            # (load + ½) / capacity, Sainte-Laguë's divisor: loads stay in proportion to
            # capacity within one case, where load / capacity lets big capacities lag.
            keys.append(Fraction(2 * candidate.load + 1, 2 * candidate.capacity))
        else:  # last_assigned: never assigned comes first
            last = candidate.last_assigned_at
            keys.append((last is not None, last.timestamp() if last else 0.0))
    return keys


def route_stream(
    candidates: Sequence[Candidate],
    specialties: Sequence[str],
    policy: Policy,
    *,
    at: datetime,
) -> list[int | None]:
    """Route cases one after another, each seeing the loads the earlier ones left: the
    coder id chosen for each case (``None``: nobody eligible). What routing a batch does."""
    pool = {c.id: c for c in candidates}
    chosen: list[int | None] = []
    for specialty in specialties:
        winner = choose(pool.values(), specialty, policy)
        chosen.append(winner.id if winner else None)
        if winner is not None:
            pool[winner.id] = replace(winner, load=winner.load + 1, last_assigned_at=at)
    return chosen
