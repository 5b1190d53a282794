"""What the desk writes to stderr while it runs: its own events for a person, libraries quiet.

One handler on the root logger, on stderr, so every logger of the process ends up there
in one format:

- ``text`` (the default): ``2025-05-01 09:30:12 INFO consultant.intake: received …``,
  a line a person reads in a terminal.
- ``json``: one JSON object per line for a log shipper, with the keys ``time`` (ISO 8601,
  UTC), ``level``, ``logger`` and ``message``, an exception's traceback under
  ``exc_info``, and whatever ids a line names (``inbound_id``, ``ticket``, ``outbox_id``…).

Levels:

- the desk's own loggers (``consultant.*``, ``workers.*``): ``CONSULTANT_LOG_LEVEL``,
  INFO by default — one line per received email and per sent email, plus what went
  wrong. ``--verbose`` makes them DEBUG.
- every library (aiosmtpd's ``mail.log``, sqlalchemy, alembic, celery, kombu, amqp,
  imapclient, asyncio …): WARNING; ``--verbose`` raises them to INFO, never further:
  at DEBUG aiosmtpd logs each line of an email's DATA and imapclient the messages it
  fetches. At INFO aiosmtpd logs the SMTP commands, so ``--verbose`` shows senders'
  addresses (never a subject, body or attachment).
- ``sqlalchemy.engine`` stays at WARNING even with ``--verbose``: at INFO it logs each
  statement's parameters, which are the cases themselves.

What the desk's own lines say (PHI): ids (inbound email, ticket reference, outbox row),
sizes, counts and kinds — never a subject, a body, an attachment's name or text, and not
a sender's address at INFO or DEBUG. A relay's refusal, logged at WARNING or ERROR, is
quoted as the relay wrote it and may name the recipient's address.
"""

from __future__ import annotations

import logging
import sys

from pythonjsonlogger.json import JsonFormatter

from consultant.config import LogFormat, LogLevel

OWN_LOGGERS = ("consultant", "workers")
# Loggers whose records carry the cases themselves at INFO: kept at WARNING whatever the level.
CONTENT_LOGGERS = ("sqlalchemy.engine",)
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
TEXT_DATE_FORMAT = "%Y-%m-%d %H:%M:%S"


def configure(*, level: LogLevel = "INFO", fmt: LogFormat = "text", verbose: bool = False) -> None:
    """Send every log record of the process to stderr, the desk's own at ``level``
    (DEBUG with ``verbose``), libraries' at WARNING (INFO with ``verbose``).

    Called again, it replaces what it set before (a process configures logging once, but
    tests and ``--verbose`` may call it more than once).
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_formatter(fmt))
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.INFO if verbose else logging.WARNING)
    for name in OWN_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG if verbose else level)
    for name in CONTENT_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.captureWarnings(True)


def _formatter(fmt: LogFormat) -> logging.Formatter:
    """Plain lines for a terminal, or JSON objects (python-json-logger) for a shipper."""
    if fmt == "json":
        return JsonFormatter(
            "{levelname}{name}{message}",
            style="{",
            rename_fields={"levelname": "level", "name": "logger"},
            timestamp="time",
        )
    return logging.Formatter(TEXT_FORMAT, datefmt=TEXT_DATE_FORMAT)
