"""OAuth 2.0 access tokens for XOAUTH2 logins, fetched afresh for every connection.

Access tokens from Google and Microsoft live about an hour, and the desk does not
refresh them: another program keeps a current one in a file, or prints one when run.
Asking at every connect means a rotated token is used from the next connection on. No
message here ever contains a token.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from consultant.config import TokenSource

# RFC 6750 2.1: a bearer token is a "b64token". Anything else (JSON, two lines, a
# prompt) means the source printed something other than a token.
_BEARER_TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
_STDERR_SHOWN = 200  # characters of a failing command's last stderr line


class TokenError(Exception):
    """No usable access token; the message says which source failed and how."""


def access_token(source: TokenSource, *, timeout: float) -> str:
    """The current token from the file or the command the mailbox URL names."""
    if source.file is not None:
        token = _read_token_file(source.file)
        where = f"the token file {source.file}"
    else:
        token = _run_token_command(source.command, timeout=timeout)
        where = f"the token command {source.command[0]}"
    if not token:
        raise TokenError(f"{where} gave no token")
    if not _BEARER_TOKEN.fullmatch(token):
        raise TokenError(f"{where} gave something that is not a bearer token (RFC 6750)")
    return token


def _read_token_file(path: Path) -> str:
    try:
        return path.read_text().strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise TokenError(f"cannot read the token file {path}: {exc}") from exc


def _run_token_command(command: tuple[str, ...], *, timeout: float) -> str:
    """The command's standard output, stripped. Only the program's name appears in
    errors: its arguments may hold a client secret."""
    program = command[0]
    try:
        done = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            encoding="utf-8",
            errors="replace",  # a garbled token then fails the b64token check
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise TokenError(f"the token command {program} did not finish in {timeout:g} s") from None
    except OSError as exc:
        raise TokenError(f"cannot run the token command {program}: {exc.strerror}") from exc
    if done.returncode != 0:
        raise TokenError(
            f"the token command {program} failed with exit status {done.returncode}"
            f"{_last_line(done.stderr)}"
        )
    return done.stdout.strip()


def _last_line(stderr: str) -> str:
    """The command's own last word on why it failed, if it said anything."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    return f": {lines[-1][:_STDERR_SHOWN]}" if lines else ""
