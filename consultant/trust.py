"""May the desk act on the From address? Only when our own mail server vouches for it.

RFC 8601: an ``Authentication-Results`` header means something only when it carries our
own server's authserv-id — anyone can write one with another id, or with ours lower in
the message, so only the topmost header with our id counts (our MTA prepends it). It
vouches for the From address when it says ``dmarc=pass``, or ``dkim=pass`` for a signing
domain aligned with the From domain (RFC 7489 3.1.1, relaxed alignment).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import authres


@dataclass(frozen=True)
class Verdict:
    trusted: bool
    reason: str


def judge_from_address(
    auth_results: Sequence[str], *, authserv_id: str, from_domain: str
) -> Verdict:
    """Judge the From domain by the topmost ``Authentication-Results`` from ``authserv_id``.

    ``auth_results`` are the header values in message order, topmost first.
    """
    for value in auth_results:
        try:
            header = authres.AuthenticationResultsHeader.parse_value(value)
        except authres.AuthResError:
            continue  # a header we cannot read vouches for nothing
        if (header.authserv_id or "").lower() != authserv_id.lower():
            continue
        return _judge(header, from_domain.lower())
    return Verdict(False, f"no Authentication-Results from {authserv_id}")


def _judge(header: authres.AuthenticationResultsHeader, from_domain: str) -> Verdict:
    for result in header.results:
        if result.method == "dmarc" and result.result == "pass":
            return Verdict(True, "dmarc=pass")
    for result in header.results:
        if result.method != "dkim" or result.result != "pass":
            continue
        signer = next((p.value.lower() for p in result.properties if p.name == "d"), "")
        if signer and (from_domain == signer or from_domain.endswith("." + signer)):
            return Verdict(True, f"dkim=pass aligned ({signer})")
    return Verdict(False, "neither dmarc=pass nor an aligned dkim=pass")
