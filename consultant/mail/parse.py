"""Raw email bytes → the fields the desk works with, by mail-parser.

Two readers live here. :func:`identify` is cheap (headers only) and runs at the edge,
before anything is committed: it yields the Message-ID and the fingerprint that keeps an
email from being stored twice. :func:`parse_email` is the full parse a worker does later.
"""

from __future__ import annotations

import base64
import binascii
import email
import hashlib
import html
import mimetypes
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.errors import HeaderParseError
from email.header import decode_header
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import getaddresses

import mailparser
import nh3

_MSGID = re.compile(r"<[^<>\s\x00]+>")  # PostgreSQL text cannot hold NUL
# Trace fields that every relay adds (RFC 5321 4.4): mail-parser reads each one into hops,
# dates and addresses, a sixth of the cost of processing an email, and the desk reads none.
_UNREAD_TRACE_FIELDS = ("Received",)


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
    returned_message_ids: tuple[str, ...] = ()  # of emails enclosed, as a bounce encloses ours


def identify(raw: bytes) -> Identity:
    """The email's Message-ID and fingerprint, from its headers and body bytes.

    The fingerprint is what makes two arrivals the same email, so that only a real
    repeat is refused: the same bytes, a mailbox fetched again, a relay delivering twice
    or the same email reaching us by IMAP and by the gateway. It hashes the fields the
    author's program wrote (:data:`_ORIGINATOR_FIELDS`) with the body. Message-IDs
    repeat in the wild and some mail has none, so they alone cannot tell two emails
    apart, and neither can a body: "see attached", sent by two people, is two cases.
    Trace fields that relays add on the way (Received, Return-Path, Delivered-To,
    Authentication-Results, ARC-*) are left out, and so are line endings, the empty
    lines at the very end and folding, which transports may change.
    """
    return _identity(_header_block(raw), raw)


# What the author's program wrote (RFC 5322 sections 3.6.1-3.6.5, and RFC 2045's MIME
# fields, which say how the body reads); none of them is added or changed in transit.
_ORIGINATOR_FIELDS = (
    "from",
    "sender",
    "reply-to",
    "to",
    "cc",
    "subject",
    "date",
    "message-id",
    "in-reply-to",
    "references",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
)
_FOLDING_WHITESPACE = re.compile(r"\s+")


def _identity(headers: Message, raw: bytes) -> Identity:
    # A hop may hand LF-only mail on with a CRLF added at the end (smtplib does), so the
    # line ends at the end of the body are not part of the email either.
    body = _body_bytes(raw).replace(b"\r\n", b"\n").rstrip(b"\r\n")
    digest = hashlib.sha256()
    for name in _ORIGINATOR_FIELDS:
        for value in headers.get_all(name, []):
            unfolded = _FOLDING_WHITESPACE.sub(" ", str(value)).strip()
            digest.update(f"{name}:{unfolded}\n".encode(errors="surrogateescape"))
    digest.update(b"\n")
    digest.update(body)
    fingerprint = digest.hexdigest()
    message_id = _first_message_id(str(headers.get("Message-ID", "")))
    if not message_id:  # stable for the same email, distinct for every other
        message_id = f"<{fingerprint[:32]}@fingerprint.invalid>"
    return Identity(message_id=message_id, fingerprint=fingerprint)


def _header_block(raw: bytes) -> Message:
    return BytesHeaderParser(policy=compat32).parsebytes(raw, headersonly=True)


def _body_bytes(raw: bytes) -> bytes:
    """Everything after the first empty line (CRLF on the wire, LF in files)."""
    match = re.search(rb"\r?\n\r?\n", raw)
    return raw[match.end() :] if match else b""


def _first_message_id(value: str) -> str:
    match = _MSGID.search(value)
    return match.group(0) if match else ""


def parse_email(raw: bytes, *, headers_only: bool = False) -> ParsedEmail:
    """The email's fields, decoded the way a person would read them.

    The email package finds the structure and mail-parser the attachments. Text is
    decoded here, part by part and header by header, because mail-parser decodes 8-bit
    text that declares no charset (or the wrong one) as UTF-8 with replacement
    characters, and drops a subject whose encoded words are damaged. ``headers_only``
    skips the body: for an email the desk will not take, parsing megabytes would be
    wasted.
    """
    if headers_only:
        return _email(raw, _header_block(raw))
    message = _message(raw)
    plain, html_parts = _body_parts(message)
    html_body = "\n".join(html_parts) or None
    text = "\n".join(plain) or (html_to_text(html_body) if html_body else "")
    return _email(
        raw,
        message,
        text=text,
        html=sanitise_html(html_body) if html_body else None,
        attachments=_attachments(message, raw),
        returned_message_ids=_enclosed_message_ids(message) + _quoted_message_ids(text),
    )


def _message(raw: bytes) -> Message:
    """The email's structure, without the trace fields nothing here reads."""
    with _unreadable_as_parse_error():
        message = email.message_from_bytes(raw)
    for name in _UNREAD_TRACE_FIELDS:
        del message[name]
    return message


def _attachments(message: Message, raw: bytes) -> tuple[ParsedAttachment, ...]:
    """The attachments, as mail-parser finds them.

    An email made only of text bodies has none by mail-parser's rules, and most case
    emails are such: it is not handed to mail-parser, which took a fifth of the CPU of
    processing one (bench/worker_bench.py).
    """
    if _holds_only_text(message):
        return ()
    with _unreadable_as_parse_error():
        found = mailparser.MailParser(message).attachments
    return tuple(_attachment(part, raw) for part in found)


@contextmanager
def _unreadable_as_parse_error() -> Iterator[None]:
    """What the parsers raise means an unreadable email, not a crash.

    The email package recurses once per level of multipart nesting, so a crafted email
    can exhaust the stack; mail-parser raises many types of its own.
    """
    try:
        yield
    except RecursionError as exc:
        raise ParseError("cannot parse: multipart nesting too deep") from exc
    except Exception as exc:
        raise ParseError(f"cannot parse: {exc}") from exc


def _holds_only_text(message: Message) -> bool:
    """Whether no part could be an attachment: each is a container or a text/plain or
    text/html body, none named or disposed as an attachment (RFC 2183), and the email
    package found no defect (from a damaged multipart, mail-parser recovers parts)."""
    for part in message.walk():
        if part.defects or part.get_filename():
            return False
        if part.get_content_disposition() not in (None, "inline"):
            return False
        if part.get_content_maintype() != "multipart" and part.get_content_type() not in (
            "text/plain",
            "text/html",
        ):
            return False
    return True


def _email(
    raw: bytes,
    message: Message,
    *,
    text: str = "",
    html: str | None = None,
    attachments: tuple[ParsedAttachment, ...] = (),
    returned_message_ids: tuple[str, ...] = (),
) -> ParsedEmail:
    """The fields read from the headers of ``message`` (parsed from ``raw``), with the
    body's, which the caller read."""
    headers = _first_values(message)
    if not headers:
        raise ParseError("no header fields: this is not an email (RFC 5322 section 2.1)")
    sender_name, sender = _sender(header_text(headers.get("from", "")))
    return ParsedEmail(
        message_id=_identity(message, raw).message_id,
        sender=sender,
        sender_name=sender_name,
        subject=header_text(headers.get("subject", "")),
        text=text,
        html=html,
        in_reply_to=_first_message_id(headers.get("in-reply-to", "")) or None,
        references=tuple(_MSGID.findall(headers.get("references", ""))),
        headers={name: header_text(value) for name, value in headers.items()},
        attachments=attachments,
        returned_message_ids=returned_message_ids,
    )


def _first_values(message: Message) -> dict[str, str]:
    """Header names (lower-case) → their first value, undecoded.

    ``raw_items`` keeps undeclared 8-bit bytes as surrogate escapes, where ``get`` would
    already have replaced them with U+FFFD.
    """
    headers: dict[str, str] = {}
    for name, value in message.raw_items():
        headers.setdefault(name.lower(), str(value))
    return headers


def _sender(from_header: str) -> tuple[str, str]:
    """(name, address) of the first From address that has an ``@``."""
    for name, address in getaddresses([from_header]):
        if "@" in address:
            return name.strip(), address.strip().lower()
    return "", ""


def _body_parts(message: Message) -> tuple[list[str], list[str]]:
    """The decoded text/plain and text/html parts that are not attachments.

    A multipart without a boundary parameter cannot be split (RFC 2046 section 5.1.1
    makes the parameter mandatory); the stdlib leaves its body as one string, which is
    read as plain text rather than lost.
    """
    plain: list[str] = []
    html_parts: list[str] = []
    for part in message.walk():
        if part.is_multipart() or part.get_content_maintype() not in ("text", "multipart"):
            continue
        disposition = str(part.get("Content-Disposition", "")).lower()
        if part.get_filename() or disposition.startswith("attachment"):
            continue
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            continue
        text = decode_text(payload, part.get_content_charset())
        (html_parts if part.get_content_subtype() == "html" else plain).append(text)
    return plain, html_parts


def _enclosed_message_ids(message: Message) -> tuple[str, ...]:
    """Message-IDs of the emails enclosed whole (message/rfc822) or by their headers
    (text/rfc822-headers), which is how a DSN returns the email it reports (RFC 3464)."""
    found: list[str] = []
    for part in message.walk():
        content_type = part.get_content_type()
        if content_type == "message/rfc822" and isinstance(part.get_payload(), list):
            enclosed = part.get_payload()[0]
            found.append(_first_message_id(str(enclosed.get("Message-ID", ""))))
        elif content_type == "text/rfc822-headers":
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                found.append(identify(payload + b"\r\n\r\n").message_id)
    return tuple(
        message_id for message_id in found if message_id and "@fingerprint." not in message_id
    )


_QUOTED_MESSAGE_ID = re.compile(r"(?im)^message-id:[ \t]*(<[^<>\s\x00]+>)")


def _quoted_message_ids(text: str) -> tuple[str, ...]:
    """Message-IDs of header blocks copied into the text, as bounces that predate
    RFC 3464 (Exim's "This is a copy of the message", qmail, old sendmail) return ours."""
    return tuple(_QUOTED_MESSAGE_ID.findall(text))


def decode_text(data: bytes, declared: str | None) -> str:
    """Bytes → text without losing what a reader needs.

    The declared charset when it decodes cleanly; else UTF-8 when that does; else
    Windows-1252, which is what undeclared 8-bit mail from Western mail clients almost
    always is (a superset of Latin-1 for printable text), with Latin-1 as the last
    resort because it maps every byte. NUL characters are removed: they carry nothing a
    person reads and PostgreSQL text cannot hold them.
    """
    for charset in (declared, "utf-8", "cp1252"):
        if not charset:
            continue
        try:
            return data.decode(charset).replace("\x00", "")
        except (LookupError, UnicodeDecodeError):
            continue
    return data.decode("latin-1").replace("\x00", "")


def header_text(value: str) -> str:
    """A header as a person reads it: RFC 2047 words decoded, raw 8-bit bytes guessed.

    Each encoded word is decoded on its own terms, so one damaged word (bad base64, an
    unknown charset) costs that word, not the whole header. Line folding is undone.
    """
    if value.isascii() and "=?" not in value:  # most headers: nothing to decode
        decoded = value
    elif any("\udc80" <= char <= "\udcff" for char in value):  # 8-bit bytes, undeclared
        decoded = decode_text(value.encode("utf-8", "surrogateescape"), None)
    else:
        try:
            chunks = decode_header(value)
        except HeaderParseError:
            chunks = [(value, None)]
        decoded = "".join(
            chunk if isinstance(chunk, str) else decode_text(chunk, charset)
            for chunk, charset in chunks
        )
    return " ".join(decoded.replace("\x00", "").split())


def _attachment(part: dict[str, object], raw: bytes) -> ParsedAttachment:
    payload = str(part.get("payload", ""))
    content = lenient_base64(payload) if part.get("binary") else payload.encode()
    content_type = str(part.get("mail_content_type") or "application/octet-stream")
    return ParsedAttachment(
        filename=_stable_filename(str(part.get("filename") or ""), content_type, raw),
        content_type=content_type,
        content=content,
    )


_INVENTED_NAME = re.compile(r"[a-z]{10}\.(txt|rtf)")


def _stable_filename(filename: str, content_type: str, raw: bytes) -> str:
    """The attachment's own name, or ``attachment.<ext>`` when it has none.

    mail-parser names a nameless attachment with ten random letters, so the same email
    would get a different name on every parse; such a name appears nowhere in the email.
    """
    invented = _INVENTED_NAME.fullmatch(filename) and filename.encode() not in raw
    if filename and not invented:
        return filename
    return "attachment" + (mimetypes.guess_extension(content_type) or ".bin")


def lenient_base64(payload: str) -> bytes:
    """Base64 as a mail reader decodes it: characters outside the alphabet are skipped
    (RFC 2045 section 6.8) and a truncated final group is dropped, so a damaged
    attachment is kept as far as it goes instead of failing the whole email.

    mail-parser hands over a damaged part's transfer-encoded text unchanged.
    """
    try:
        return base64.b64decode(payload)
    except binascii.Error:
        alphabet = re.sub(r"[^A-Za-z0-9+/]", "", payload)
        return base64.b64decode(alphabet[: len(alphabet) - len(alphabet) % 4])


def sanitise_html(markup: str) -> str:
    """HTML safe to show a coder: nh3's allowlist, no scripts, no remote fetches.

    Links to web pages stay clickable (opened without a referrer); images only show
    when they come with the email (``cid:``, RFC 2392), so displaying a message never
    tells a tracker that it was read.
    """
    return nh3.clean(
        markup,
        url_schemes={"cid", "mailto", "https", "http"},
        link_rel="noopener noreferrer",
        attribute_filter=_only_embedded_images,
    )


def _only_embedded_images(element: str, attribute: str, value: str) -> str | None:
    if element == "img" and attribute == "src" and not value.lower().startswith("cid:"):
        return None
    return value


def html_to_text(markup: str) -> str:
    """Readable text of an HTML-only email: block ends become line breaks, tags go."""
    with_breaks = re.sub(r"(?i)<\s*(br|/p|/div|/li|/tr|/h\d)\b[^>]*>", "\n", markup)
    stripped = nh3.clean(with_breaks, tags=set(), clean_content_tags={"script", "style"})
    lines = (line.strip() for line in html.unescape(stripped).splitlines())
    return "\n".join(line for line in lines if line)
