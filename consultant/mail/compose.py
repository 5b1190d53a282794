"""The desk's own emails as they go on the wire: headers, MIME structure and Message-IDs
that carry the ticket's number, signed so that no one else can forge a reference.

Composed with the email package's classic (compat32) classes and written with CRLF line
ends; what the emails say comes from templates (consultant/replies.py).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence
from email.charset import QP, Charset
from email.header import Header
from email.message import Message as Email
from email.policy import Compat32
from email.utils import format_datetime, formataddr
from typing import Any

from consultant.config import get_settings
from consultant.mail.autoreply import LOOP_HEADER
from consultant.models import utcnow

MAX_REFERENCES = 20  # keep References bounded on very long threads (RFC 5322 3.6.4)
SIGNATURE_CHARS = 16
_OUR_MESSAGE_ID = re.compile(r"^<cc(\d+)\.([0-9a-f]+)\.([0-9a-f]+)@")
UTF8_QP = Charset("utf-8")
UTF8_QP.body_encoding = QP


class _Wire(Compat32):
    """compat32 with CRLF line ends, as on the wire: smtplib sends bytes as they are
    (RFC 5321 2.3.8).

    A header that is short, one line and ASCII — nearly all of ours — is written as it
    is: compat32 would pass it through the Header class's folding machinery, which then
    changes nothing, at about a third of the cost of composing an acknowledgement.

    An internationalised address (``To: jörg@example.de``) is written in UTF-8, as RFC
    6532 section 3.2 has it: an encoded word may not stand in an address (RFC 2047
    section 5), and such an email travels only over SMTPUTF8 anyway.
    """

    def fold_binary(self, name: str, value: Any) -> bytes:
        if isinstance(value, str):
            line = f"{name}: {value}"
            unbroken = "\r" not in line and "\n" not in line
            if len(line) <= self.max_line_length and line.isascii() and unbroken:
                return (line + self.linesep).encode("ascii")
            if name == "To" and unbroken:
                return (line + self.linesep).encode("utf-8")
        return super().fold_binary(name, value)


WIRE = _Wire(linesep="\r\n")


# --- composing ---------------------------------------------------------------------


def compose(
    *,
    ticket_id: int | None,
    recipient: str,
    subject: str,
    text: str,
    html: str,
    in_reply_to: str | None,
    references: Sequence[str],
) -> Email:
    """An email from the desk, threaded under ``in_reply_to`` (RFC 5322 3.6.4).

    Built with the email package's classic (compat32) classes: the modern API re-parses
    every header it is given and again to fold it, which made composing the costliest
    part of acknowledging a case; these headers are ours and need neither.
    """
    settings = get_settings()
    message = Email()
    message["MIME-Version"] = "1.0"
    message["Content-Type"] = f'multipart/alternative; boundary="{_boundary()}"'
    message["From"] = formataddr((settings.desk_name, settings.desk_address))
    message["To"] = recipient
    message["Reply-To"] = settings.desk_address
    message["Subject"] = _encoded(subject, name="Subject")
    message["Date"] = format_datetime(utcnow())
    message["Message-ID"] = new_message_id(ticket_id)
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
    if references:
        message["References"] = " ".join(references[-MAX_REFERENCES:])
    message[LOOP_HEADER] = settings.desk_address
    message.attach(_text_part(text, "plain"))
    message.attach(_text_part(html, "html"))
    return message


def _text_part(body: str, subtype: str) -> Email:
    """A body part in UTF-8 quoted-printable: 7-bit safe for any relay, readable raw.

    Its two headers are written as they are; the MIME classes would add the charset by
    parsing their own Content-Type again, a third of the cost of composing.
    """
    part = Email()
    part["Content-Type"] = f'text/{subtype}; charset="utf-8"'
    part["Content-Transfer-Encoding"] = "quoted-printable"
    part.set_payload(UTF8_QP.body_encode(body))
    return part


def _boundary() -> str:
    """A multipart boundary that cannot occur in the parts, so the generator need not
    search them for it: they are quoted-printable, where ``=`` is always followed by two
    hex digits or a line break (RFC 2045 6.7), so ``=_`` never appears in them."""
    return f"=_cc{secrets.token_hex(12)}"


def _encoded(value: str, *, name: str) -> str | Header:
    """ASCII as it is; anything else as RFC 2047 encoded words, folded to fit after the
    header's name (RFC 5322 2.1.1)."""
    return value if value.isascii() else Header(value, "utf-8", header_name=name)


# --- Message-IDs that carry a signed ticket number ------------------------------------


def new_message_id(ticket_id: int | None) -> str:
    """``<cc7.<random>.<signature>@desk-domain>``: the ticket survives a lost thread."""
    number = str(ticket_id or 0)
    nonce = secrets.token_hex(8)
    return f"<cc{number}.{nonce}.{_signature(number, nonce)}@{get_settings().desk_domain}>"


def ticket_number_in(message_id: str) -> int | None:
    """The ticket number one of our Message-IDs carries, if its signature holds."""
    match = _OUR_MESSAGE_ID.match(message_id)
    if match is None:
        return None
    number, nonce, signature = match.groups()
    if not hmac.compare_digest(signature, _signature(number, nonce)) or number == "0":
        return None
    return int(number)


def _signature(number: str, nonce: str) -> str:
    digest = hmac.new(get_settings().signing_key(), f"{number}.{nonce}".encode(), hashlib.sha256)
    return digest.hexdigest()[:SIGNATURE_CHARS]
