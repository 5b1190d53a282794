"""Is this email written by a machine? Then the desk must never answer it automatically.

The rules are RFC 3834's (section 2, "When to send automatic responses") plus the
headers other mail systems use for the same purpose, so that an out-of-office reply, a
bounce or a mailing list never starts a loop with the desk's acknowledgements.
"""

from __future__ import annotations

from collections.abc import Mapping

LOOP_HEADER = "X-CaseConsultant-Loop"

_BULK_PRECEDENCE = {"bulk", "junk", "list"}
_DAEMON_LOCAL_PARTS = {"mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon"}
_MARKER_HEADERS = ("X-Autoreply", "X-Autorespond", "X-Failed-Recipients", LOOP_HEADER)


def automatic_reason(
    headers: Mapping[str, str], *, sender: str, envelope_from: str | None
) -> str | None:
    """Why this email counts as automatic, or ``None`` for a person's email.

    ``envelope_from`` is the SMTP return path when known: ``""`` is the null path of a
    bounce (RFC 5321 4.5.5), ``None`` means the source did not say.
    """
    lowered = {name.lower(): str(value).strip() for name, value in headers.items()}
    auto_submitted = lowered.get("auto-submitted", "").split(";")[0].strip().lower()
    if auto_submitted and auto_submitted != "no":
        return f"Auto-Submitted: {auto_submitted}"
    if lowered.get("precedence", "").lower() in _BULK_PRECEDENCE:
        return f"Precedence: {lowered['precedence'].lower()}"
    if any(name.startswith("list-") for name in lowered):
        return "mailing list (List-* headers)"
    for marker in _MARKER_HEADERS:
        if marker.lower() in lowered:
            return f"{marker} header"
    if "report-type=delivery-status" in lowered.get("content-type", "").lower():
        return "delivery status notification"
    return_path = lowered.get("return-path")
    if envelope_from == "" or return_path == "<>":
        return "empty return path"
    if sender.split("@")[0].lower() in _DAEMON_LOCAL_PARTS:
        return f"sent by {sender.split('@')[0].lower()}"
    return None
