"""Is this email written by a machine? Then the desk must never answer it automatically.

The rules are RFC 3834's (section 2, "When to send automatic responses") plus the
headers other mail systems use for the same purpose, so that an out-of-office reply, a
bounce or a mailing list never starts a loop with the desk's acknowledgements. What kind
of machine matters too: a bounce says one of our emails did not arrive.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

LOOP_HEADER = "X-CaseConsultant-Loop"

_BULK_PRECEDENCE = {"bulk", "junk", "list"}
_DAEMON_LOCAL_PARTS = {"mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon"}

Kind = Literal["normal", "bounce", "loop", "auto-reply", "list"]


@dataclass(frozen=True)
class Classification:
    """Who wrote the email: a person (``normal``) or which kind of machine, and why."""

    kind: Kind
    reason: str

    @property
    def is_automatic(self) -> bool:
        return self.kind != "normal"

    def __str__(self) -> str:
        return self.reason


NORMAL = Classification("normal", "written by a person")


def classify(
    headers: Mapping[str, str], *, sender: str, envelope_from: str | None, own_domain: str
) -> Classification:
    """What kind of machine wrote this email, or :data:`NORMAL` for a person's email.

    ``envelope_from`` is the SMTP return path when known: ``""`` is the null path of a
    bounce (RFC 5321 4.5.5), ``None`` means the source did not say. Bounces are checked
    first, since many also say ``Auto-Submitted``. ``X-Auto-Response-Suppress`` is not a
    sign of a machine: Outlook puts it on people's mail to ask *us* not to auto-reply.
    """
    lowered = {name.lower(): str(value).strip() for name, value in headers.items()}
    return (
        _bounce(lowered, sender=sender, envelope_from=envelope_from)
        or _loop(lowered, own_domain=own_domain)
        or _auto_reply(lowered)
        or _bulk(lowered)
        or NORMAL
    )


def _bounce(
    headers: dict[str, str], *, sender: str, envelope_from: str | None
) -> Classification | None:
    # RFC 6522 allows the parameter quoted: report-type="delivery-status".
    content_type = headers.get("content-type", "").lower().replace('"', "").replace(" ", "")
    if content_type.startswith("multipart/report") and "report-type=delivery-status" in (
        content_type
    ):
        return Classification("bounce", "delivery status notification (RFC 3464)")
    if "x-failed-recipients" in headers:
        return Classification("bounce", "X-Failed-Recipients header")
    if envelope_from == "" or headers.get("return-path", "").replace(" ", "") == "<>":
        return Classification("bounce", "empty return path (RFC 5321 4.5.5)")
    local_part = sender.split("@")[0].lower()
    if local_part in _DAEMON_LOCAL_PARTS:
        return Classification("bounce", f"sent by {local_part}")
    return None


def _loop(headers: dict[str, str], *, own_domain: str) -> Classification | None:
    if LOOP_HEADER.lower() in headers:
        return Classification("loop", f"{LOOP_HEADER} header: our own email came back")
    if headers.get("message-id", "").lower().endswith(f"@{own_domain.lower()}>"):
        return Classification("loop", "Message-ID on the desk's own domain")
    return None


def _auto_reply(headers: dict[str, str]) -> Classification | None:
    # RFC 3834 section 5: any Auto-Submitted value but "no", parameters after ";" aside.
    auto_submitted = headers.get("auto-submitted", "").split(";")[0].strip().lower()
    if auto_submitted and auto_submitted != "no":
        return Classification("auto-reply", f"Auto-Submitted: {auto_submitted}")
    for marker in ("X-Autoreply", "X-Autorespond"):
        if marker.lower() in headers:
            return Classification("auto-reply", f"{marker} header")
    return None


def _bulk(headers: dict[str, str]) -> Classification | None:
    # RFC 3834 section 2 and RFC 2369 (List-*); Precedence is not standard but common.
    precedence = headers.get("precedence", "").lower()
    if precedence in _BULK_PRECEDENCE:
        return Classification("list", f"Precedence: {precedence}")
    if any(name.startswith("list-") for name in headers):
        return Classification("list", "mailing list (List-* headers)")
    return None
