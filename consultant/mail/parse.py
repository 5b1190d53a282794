"""Raw email bytes → the fields the desk works with, by mail-parser.

Two readers live here. :func:`identify` is cheap (headers only) and runs at the edge,
before anything is committed: it yields the Message-ID and the fingerprint that keeps an
email from being stored twice. :func:`parse_email` is the full parse a worker does later.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import getaddresses

import mailparser
import nh3

_MSGID = re.compile(r"<[^<>\s]+>")


class ParseError(Exception):
    """The email cannot be read at all; it is kept and marked failed, never dropped."""


@dataclass(frozen=True)
class Identity:
    message_id: str
    fingerprint: str


@dataclass(frozen=True)
class ParsedAttachment:
    filename: str
    content_type: str
    content: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


@dataclass(frozen=True)
class ParsedEmail:
    message_id: str
    sender: str  # bare address, lower-case; "" when the email names none
    sender_name: str
    subject: str
    text: str
    html: str | None
    in_reply_to: str | None
    references: tuple[str, ...]
    headers: dict[str, str] = field(default_factory=dict)
    attachments: tuple[ParsedAttachment, ...] = ()


def identify(raw: bytes) -> Identity:
    """The email's Message-ID and fingerprint, from its headers and body bytes.

    Message-IDs repeat in the wild, and some mail has none, so the fingerprint hashes the
    Message-ID with the body. Trace headers that relays add (Received, Return-Path,
    Delivered-To) sit in the header block, so the same email reaching us by IMAP and by
    the gateway gets the same fingerprint. Line endings are normalised for the same reason.
    """
    headers = BytesHeaderParser(policy=compat32).parsebytes(raw, headersonly=True)
    body = _body_bytes(raw).replace(b"\r\n", b"\n")
    body_hash = hashlib.sha256(body).hexdigest()
    message_id = _first_message_id(str(headers.get("Message-ID", "")))
    if not message_id:
        message_id = f"<{body_hash[:32]}@fingerprint.invalid>"
    fingerprint = hashlib.sha256(f"{message_id}\0{body_hash}".encode()).hexdigest()
    return Identity(message_id=message_id, fingerprint=fingerprint)


def _body_bytes(raw: bytes) -> bytes:
    """Everything after the first empty line (CRLF on the wire, LF in files)."""
    match = re.search(rb"\r?\n\r?\n", raw)
    return raw[match.end() :] if match else b""


def _first_message_id(value: str) -> str:
    match = _MSGID.search(value)
    return match.group(0) if match else ""


def parse_email(raw: bytes) -> ParsedEmail:
    try:
        mail = mailparser.parse_from_bytes(raw)
    except Exception as exc:  # mail-parser raises many types; all mean "unreadable"
        raise ParseError(f"cannot parse: {exc}") from exc
    sender_name, sender = _sender(mail.headers.get("From", ""))
    html_body = "\n".join(mail.text_html) or None
    text = "\n".join(mail.text_plain) or (html_to_text(html_body) if html_body else "")
    return ParsedEmail(
        message_id=identify(raw).message_id,
        sender=sender,
        sender_name=sender_name,
        subject=(mail.subject or "").strip(),
        text=text,
        html=sanitise_html(html_body) if html_body else None,
        in_reply_to=_first_message_id(str(mail.headers.get("In-Reply-To", ""))) or None,
        references=tuple(_MSGID.findall(str(mail.headers.get("References", "")))),
        headers={name: str(value) for name, value in mail.headers.items()},
        attachments=tuple(_attachment(part) for part in mail.attachments),
    )


def _sender(from_header: object) -> tuple[str, str]:
    """(name, address) of the first From address; mail-parser gives a list of pairs."""
    pairs = from_header if isinstance(from_header, list) else getaddresses([str(from_header)])
    for name, address in pairs:
        if "@" in address:
            return name.strip(), address.strip().lower()
    return "", ""


def _attachment(part: dict[str, object]) -> ParsedAttachment:
    payload = str(part.get("payload", ""))
    content = base64.b64decode(payload) if part.get("binary") else payload.encode()
    return ParsedAttachment(
        filename=str(part.get("filename") or "attachment"),
        content_type=str(part.get("mail_content_type") or "application/octet-stream"),
        content=content,
    )


def sanitise_html(markup: str) -> str:
    """HTML safe to show a coder: nh3's allowlist, no scripts, no remote fetches."""
    return nh3.clean(markup, url_schemes={"cid", "mailto"}, link_rel="noopener noreferrer")


def html_to_text(markup: str) -> str:
    """Readable text of an HTML-only email: block ends become line breaks, tags go."""
    with_breaks = re.sub(r"(?i)<\s*(br|/p|/div|/li|/tr|/h\d)\b[^>]*>", "\n", markup)
    stripped = nh3.clean(with_breaks, tags=set(), clean_content_tags={"script", "style"})
    lines = (line.strip() for line in html.unescape(stripped).splitlines())
    return "\n".join(line for line in lines if line)
