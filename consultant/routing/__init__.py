"""Every case an owner: the routing policy, assignments, claims.

``policy`` decides (pure, and property-tested); ``assign`` writes owners with the locks
that make concurrent routing safe; ``claims`` holds a case for the coder working on it.
The command line and the dashboard call these, never the tables directly.
"""

from consultant.routing.assign import Routed, hand_back, route_tickets, unassign
from consultant.routing.claims import ClaimError, ClaimRefused, claim, reassign, release
from consultant.routing.policy import Policy, current_policy

__all__ = [
    "ClaimError",
    "ClaimRefused",
    "Policy",
    "Routed",
    "claim",
    "current_policy",
    "hand_back",
    "reassign",
    "release",
    "route_tickets",
    "unassign",
]
