"""The routing policy as an admin reads it: the rules, and who they pick right now."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from consultant import desk_settings, sla
from consultant.codes.specialty import SPECIALTIES
from consultant.config import get_settings
from consultant.models import Coder
from consultant.routing.assign import candidate, loads
from consultant.routing.policy import Policy, choose, current_policy, tier_of


def overview(session: Session, *, now: datetime, policy: Policy | None = None) -> dict[str, Any]:
    """The policy (``policy``, else the one in force), and per specialty the coders it
    would pick now, best first: what ``routing show`` and ``/admin/routing`` show."""
    desk = desk_settings.in_force(session)
    policy = policy or current_policy(session)
    coders = session.exec(
        select(Coder).where(col(Coder.active).is_(True)).order_by(col(Coder.id))
    ).all()
    counted = loads(session, [c.id for c in coders])  # type: ignore[misc]
    pool = [candidate(c, counted[c.id], now) for c in coders]  # type: ignore[index]
    emails = {c.id: c.email for c in coders}
    specialties = []
    for specialty in SPECIALTIES:
        ranked = []
        remaining = list(pool)
        while (best := choose(remaining, specialty, policy)) is not None:
            tier = tier_of(best, specialty, policy)
            ranked.append({"email": emails[best.id], "tier": policy.tiers[tier or 0]})
            remaining.remove(best)
        specialties.append({"specialty": specialty, "eligible": ranked})
    return {
        "policy": policy.describe(),
        "tiers": list(policy.tiers),
        "prefer": list(policy.prefer),
        "sources": {
            "tiers": desk.sources["routing_tiers"],
            "prefer": desk.sources["routing_prefer"],
        },
        "business_hours": sla.desk_schedule(session).describe(),
        "claim_minutes": get_settings().claim_minutes,
        "specialties": specialties,
    }
