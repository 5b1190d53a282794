"""Secrets kept in the database (mailbox and relay passwords), encrypted at rest.

A sealed value is a Fernet token (AES-128-CBC with HMAC-SHA256, from the
``cryptography`` package): a copy of the database, a backup or a ``SELECT`` shows
nothing usable without the desk's key. The key is derived (HKDF-SHA256) from
``CONSULTANT_SECRET_KEY``, or from the key the desk generated in its data directory
when that is unset, so there is no second key to keep.

Rotating the key: set the new one as ``CONSULTANT_SECRET_KEY`` and the old one in
``CONSULTANT_SECRET_KEY_PREVIOUS`` (comma separated, newest first); everything still
opens, and ``consultant mailboxes reseal`` re-encrypts every stored secret with the new
key (:func:`consultant.mailbox_settings.reseal_secrets`), after which the old one can
go. A value sealed with a key the desk no longer has raises :class:`SealedError` naming
what it belonged to, never the value itself.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from consultant.config import Settings

_PURPOSE = b"caseconsultant sealed secrets v1"  # a key of its own, apart from signing


class SealedError(Exception):
    """A sealed value cannot be opened with any key the desk has; the message says whose
    it was and what to do."""


def seal(secret: str, *, settings: Settings) -> str:
    """``secret`` encrypted with the current key, as text for a database column."""
    return _keys(settings).encrypt(secret.encode()).decode("ascii")


def unseal(sealed: str, *, settings: Settings, whose: str) -> str:
    """The secret in ``sealed``; ``whose`` ("mailbox support's password") names it in
    the error when no key the desk has opens it."""
    try:
        return _keys(settings).decrypt(sealed.encode("ascii")).decode()
    except (InvalidToken, UnicodeError):
        raise _unknown_key(whose) from None


def reseal(sealed: str, *, settings: Settings, whose: str) -> str:
    """``sealed`` re-encrypted with the current key (opened with any key the desk has)."""
    try:
        return _keys(settings).rotate(sealed.encode("ascii")).decode("ascii")
    except (InvalidToken, UnicodeError):
        raise _unknown_key(whose) from None


def _unknown_key(whose: str) -> SealedError:
    return SealedError(
        f"{whose} was sealed with a key this desk does not have: put that key in "
        "CONSULTANT_SECRET_KEY_PREVIOUS, or enter the secret again"
    )


def _keys(settings: Settings) -> MultiFernet:
    """The current key first (it seals), then the previous ones (they only open)."""
    current = settings.signing_key()
    previous = [key.encode() for key in settings.secret_key_previous]
    return MultiFernet([Fernet(_derived(key)) for key in (current, *previous)])


def _derived(secret: bytes) -> bytes:
    """A Fernet key from the desk's secret: HKDF, so the secret's own form (any length,
    any characters) does not matter and this key is not the one that signs Message-IDs."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_PURPOSE)
    return base64.urlsafe_b64encode(hkdf.derive(secret))
