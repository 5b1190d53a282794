"""Coders' passwords: argon2id hashes, and what a password must be.

argon2-cffi's defaults are RFC 9106's second recommended parameter set (argon2id, 64 MiB,
3 passes). A hash made with older parameters is replaced at the next good sign-in.
"""

from __future__ import annotations

import hashlib

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_LENGTH = 12  # NIST SP 800-63B asks for at least 8; a desk holding PHI asks more
MAX_LENGTH = 1024  # hashing a megabyte per attempt is a way to tie up a worker

_HASHER = PasswordHasher()


class PasswordError(ValueError):
    """A password the desk will not take; the message says why."""


def check_strength(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise PasswordError(f"a password needs at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise PasswordError(f"a password may have at most {MAX_LENGTH} characters")
    if not password.strip():
        raise PasswordError("a password cannot be only spaces")


def hash_password(password: str) -> str:
    check_strength(password)
    return _HASHER.hash(password)


def matches(stored: str | None, password: str) -> bool:
    """Whether ``password`` is the one ``stored`` was made from (no hash: never)."""
    if not stored or len(password) > MAX_LENGTH:
        return False
    try:
        return _HASHER.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    return _HASHER.check_needs_rehash(stored)


def token_hash(token: str) -> str:
    """What is kept of a random token given to a browser (a session, a sign-in link):
    its SHA-256, so a copy of the database opens nothing."""
    return hashlib.sha256(token.encode()).hexdigest()
