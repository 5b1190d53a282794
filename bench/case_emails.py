"""Realistic case emails for the benchmarks: what billing staff send to the desk.

Deterministic for a given seed. Bodies are the labelled coding questions of
tests/codes/data/labeled_cases.jsonl wrapped the way people write: a greeting, one to
three questions, a signature, sometimes a quoted earlier message. The mix follows what
a desk's mailbox holds: mostly plain text, a quarter sent as text + HTML
(multipart/alternative), a few with a small PDF or image attached, each sender writing
four times. Every sender's domain is registered on the unlimited plan, so each email
is a new case that gets one acknowledgement.
"""

from __future__ import annotations

import base64
import io
import json
import random
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from functools import cache
from html import escape
from pathlib import Path

from pypdf import PdfWriter

REPO = Path(__file__).resolve().parent.parent
CASES = REPO / "tests" / "codes" / "data" / "labeled_cases.jsonl"
DESK_DOMAIN = "desk.example"
DESK_ADDRESS = f"desk@{DESK_DOMAIN}"
CLINIC_DOMAINS = tuple(f"clinic{n}.example" for n in range(20))
FIRST_NAMES = ("Ana", "Ben", "Chloe", "Dev", "Emma", "Farid", "Grace", "Hugo", "Ines", "Jon")
LAST_NAMES = ("Alvarez", "Brooks", "Chen", "Dubois", "Evans", "Fischer", "Garcia", "Haddad")
GREETINGS = ("Hi,", "Hello team,", "Good morning,", "Hi there,", "Dear coding desk,")
CLOSINGS = ("Thanks!", "Thank you,", "Best regards,", "Thanks in advance,", "Cheers,")


def case_texts() -> list[str]:
    with CASES.open(encoding="utf-8") as lines:
        return [json.loads(line)["text"] for line in lines if line.strip()]


def generate(count: int, *, seed: int = 7) -> list[bytes]:
    """``count`` case emails, each with its own Message-ID."""
    rng = random.Random(seed)
    texts = case_texts()
    # Four cases per biller: under the desk's daily cap of automatic emails to one address.
    senders = [_sender(rng) for _ in range(max(1, count // 4))]
    start = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
    return [
        _case_email(rng, senders[n % len(senders)], texts, sent=start + timedelta(minutes=3 * n))
        for n in range(count)
    ]


def _sender(rng: random.Random) -> tuple[str, str]:
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    domain = rng.choice(CLINIC_DOMAINS)
    return f"{first} {last}", f"{first[0].lower()}{last.lower()}{rng.randrange(100)}@{domain}"


def _case_email(
    rng: random.Random, sender: tuple[str, str], texts: list[str], *, sent: datetime
) -> bytes:
    name, address = sender
    questions = rng.sample(texts, rng.choice((1, 1, 2, 3)))
    lines = [rng.choice(GREETINGS), "", *questions, ""]
    if rng.random() < 0.3:
        lines += ["Documentation excerpt:", *(f"> {q}" for q in rng.sample(texts, 4)), ""]
    lines += [rng.choice(CLOSINGS), name, f"Billing office, {address.split('@')[1]}"]
    domain = address.split("@")[1]
    message = EmailMessage()
    for hop in (f"mx.{DESK_DOMAIN}", f"mail.{domain}"):  # as an MTA leaves them, newest first
        message["Received"] = (
            f"from {hop} ([203.0.113.{rng.randrange(1, 255)}]) by {hop} with ESMTPS "
            f"id {rng.randbytes(8).hex()}; {format_datetime(sent)}"
        )
    message["DKIM-Signature"] = (
        f"v=1; a=rsa-sha256; c=relaxed/relaxed; d={domain}; s=sel1; "
        f"h=from:to:subject:date:message-id; bh={_base64(rng, 32)}; b={_base64(rng, 256)}"
    )
    message["From"] = f"{name} <{address}>"
    message["To"] = f"Coding desk <{DESK_ADDRESS}>"
    message["Subject"] = _subject(rng, questions[0])
    message["Date"] = format_datetime(sent)
    message["Message-ID"] = make_msgid(domain=domain)
    message["X-Mailer"] = rng.choice(
        ("Microsoft Outlook 16.0", "Apple Mail (2.3774)", "Thunderbird")
    )
    body = "\n".join(lines)
    message.set_content(body)
    if rng.random() < 0.25:
        paragraphs = "".join(f"<p>{escape(line)}</p>" for line in lines if line)
        message.add_alternative(f"<html><body>{paragraphs}</body></html>", subtype="html")
    attachment = rng.random()
    if attachment < 0.03:
        message.add_attachment(
            blank_pdf(), maintype="application", subtype="pdf", filename="encounter-note.pdf"
        )
    elif attachment < 0.06:
        message.add_attachment(
            rng.randbytes(rng.randrange(20_000, 80_000)),
            maintype="image",
            subtype="jpeg",
            filename="superbill-scan.jpg",
        )
    return message.as_bytes()


@cache
def blank_pdf() -> bytes:
    """A one-page PDF, as a scanned note with no text layer reads to the desk."""
    writer = PdfWriter()
    writer.add_blank_page(612, 792)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _base64(rng: random.Random, size: int) -> str:
    """Random base64 with folding spaces every 60 characters, as signers write b= values."""
    encoded = base64.b64encode(rng.randbytes(size)).decode()
    return " ".join(encoded[start : start + 60] for start in range(0, len(encoded), 60))


def _subject(rng: random.Random, question: str) -> str:
    words = question.split()
    return rng.choice(("Coding question: ", "Question - ", "", "Help with ")) + " ".join(words[:8])
