"""The inbound gateway: SMTP (or LMTP behind Postfix) straight into the database.

It only checks and stores. ``250`` is answered after the raw email is committed, so an
accepted email is never lost; while the database is unreachable the answer is ``451`` and
the sending server keeps the email and tries again (RFC 5321 4.2.1). Oversized emails get
aiosmtpd's ``552`` before their bytes are kept.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP, Envelope
from sqlalchemy.exc import SQLAlchemyError

from consultant import dispatch
from consultant.config import Settings
from consultant.db import session_scope
from consultant.inbound import Arrival, store_arrival

log = logging.getLogger(__name__)

ACCEPTED = "250 2.0.0 OK: stored"
TRY_LATER = "451 4.3.0 Temporary failure storing the email, please try again later"


def store_received(raw: bytes, *, mail_from: str, rcpt_tos: list[str]) -> int | None:
    """Commit one received email; its id, or ``None`` when it was already stored."""
    with session_scope() as session:
        return store_arrival(
            session,
            Arrival(
                raw=raw, source="smtp", envelope_from=mail_from, envelope_to=", ".join(rcpt_tos)
            ),
        )


def announce(inbound_id: int | None) -> None:
    if inbound_id is not None:
        dispatch.inbound_stored([inbound_id])


class DeskHandler:
    """aiosmtpd handler: refuse strangers' recipients, store, then answer."""

    def __init__(self, *, desk_addresses: frozenset[str]) -> None:
        self.desk_addresses = desk_addresses

    async def handle_RCPT(
        self, server: SMTP, session: Any, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        # Not an open relay: only the desk's own addresses are accepted (RFC 5321 3.6.2).
        if address.lower() not in self.desk_addresses:
            return f"550 5.1.1 <{address}>: no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Any, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        loop = asyncio.get_running_loop()
        try:
            # The database call blocks; keep the event loop free for other connections.
            inbound_id = await loop.run_in_executor(
                None,
                lambda: store_received(
                    raw, mail_from=envelope.mail_from or "", rcpt_tos=list(envelope.rcpt_tos)
                ),
            )
        except SQLAlchemyError as exc:
            log.error(
                "gateway: cannot store an email (%s bytes): %s", len(raw), exc.__class__.__name__
            )
            return self._reply(server, envelope, TRY_LATER)
        await loop.run_in_executor(None, announce, inbound_id)
        return self._reply(server, envelope, ACCEPTED)

    @staticmethod
    def _reply(server: SMTP, envelope: Envelope, status: str) -> str:
        # LMTP answers DATA once per recipient (RFC 2033 4.2); aiosmtpd sends one line, so
        # the handler supplies them all.
        if isinstance(server, LMTP):
            return "\r\n".join([status] * max(1, len(envelope.rcpt_tos)))
        return status


class LmtpController(Controller):
    def factory(self) -> SMTP:
        return LMTP(self.handler, **self.SMTP_kwargs)


def start_gateway(settings: Settings, *, lmtp: bool = False) -> Controller:
    """Listen on ``CONSULTANT_GATEWAY`` in a background thread; ``stop()`` the result to end."""
    controller_type = LmtpController if lmtp else Controller
    controller = controller_type(
        DeskHandler(desk_addresses=frozenset(settings.desk_addresses)),
        hostname=settings.gateway_host,
        port=settings.gateway_port,
        data_size_limit=settings.max_message_bytes,
        # Named, or aiosmtpd asks DNS for this host's name (getfqdn) on every connection.
        server_hostname=settings.desk_domain,
    )
    controller.start()
    return controller
