"""A private Dovecot IMAP server for tests that need a real mailbox.

Everything the server keeps (config, sockets, pid file, state, logs, mail) lives in
one short base directory, so an instance can be thrown away and several can run at
once on different ports.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType
from urllib.parse import quote

from imapclient import IMAPClient

from .ports import free_port
from .tls import Certificates

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
# Dovecot refuses uid 0 for mail access, so mail runs as Debian's `mail` user.
MAIL_UID = 8
MAIL_GID = 8
START_TIMEOUT = 10.0

CONFIG = """\
# Generated for a throw-away test server; every path stays inside {base}.
protocols = imap
listen = 127.0.0.1
base_dir = {base}/run
state_dir = {base}/state
instance_name = dc-{port}
log_path = {base}/dovecot.log
info_log_path = {base}/dovecot.log
disable_plaintext_auth = no
mail_uid = {uid}
mail_gid = {gid}
first_valid_uid = {uid}
mail_location = maildir:{base}/mail/%u/Maildir
namespace inbox {{
  inbox = yes
}}
passdb {{
  driver = passwd-file
  mechanisms = plain login
  args = scheme=PLAIN username_format=%u {base}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={base}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    port = {port}
  }}
  inet_listener imaps {{
    port = {imaps_port}
  }}
}}
"""

NO_TLS = """\
ssl = no
"""

# ssl = yes: STARTTLS on the imap port, implicit TLS on the imaps one; plaintext logins
# stay allowed on the imap port so the helpers below work unchanged.
TLS = """\
ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
"""

PASSWORD_ONLY = """\
auth_mechanisms = plain login
"""

# XOAUTH2 tokens are checked by POSTing them to an introspection endpoint (RFC 7662),
# which answers {{"active": true, "username": ...}} for a valid one.
XOAUTH2 = """\
auth_mechanisms = plain login xoauth2
# Tests refuse tokens on purpose: no delay after a failed login, and no penalty that
# would slow the next logins from 127.0.0.1 (a closed anvil-auth-penalty socket).
auth_failure_delay = 0
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
passdb {{
  driver = oauth2
  mechanisms = xoauth2
  args = {base}/oauth2.conf.ext
}}
"""

OAUTH2_EXT = """\
introspection_mode = post
introspection_url = {url}
force_introspection = yes
username_attribute = username
active_attribute = active
active_value = true
"""


class DovecotServer:
    """Runs `dovecot -c <base_dir>/dovecot.conf` with fixed users and plain passwords.

    With ``tls``, it also offers STARTTLS and listens for implicit TLS on ``imaps_port``.
    With ``introspection_url``, it also accepts XOAUTH2 logins whose tokens that URL
    vouches for.
    """

    host = "127.0.0.1"

    def __init__(
        self,
        base_dir: Path,
        *,
        users: dict[str, str],
        tls: Certificates | None = None,
        introspection_url: str | None = None,
    ) -> None:
        # Unix socket paths are limited to 108 bytes: callers should pass something
        # short such as tempfile.mkdtemp(prefix="dc"), not pytest's deep tmp_path.
        self.base_dir = Path(base_dir).absolute()
        self.users = dict(users)
        self.tls = tls
        self.introspection_url = introspection_url
        self.port = 0
        self.imaps_port = 0
        self._started = False

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> DovecotServer:
        """Write the config, start the master and wait until a LOGIN succeeds."""
        self.port = free_port()
        self.imaps_port = free_port() if self.tls else 0
        self._prepare_dirs()
        self._write_passwd()
        self.conf_path.write_text(self._config())
        # The master daemonises and keeps its inherited stdout/stderr open: capturing them
        # would block until it exits. It logs to log_path instead.
        subprocess.run(
            [DOVECOT, "-c", str(self.conf_path)],
            check=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._started = True
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the master by the pid it wrote and wait for it to exit."""
        if not self._started:
            return
        self._started = False
        pid = self._master_pid()
        if pid is None:
            return
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + START_TIMEOUT
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)

    def __enter__(self) -> DovecotServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- addresses -----------------------------------------------------------------

    @property
    def conf_path(self) -> Path:
        return self.base_dir / "dovecot.conf"

    @property
    def log_path(self) -> Path:
        return self.base_dir / "dovecot.log"

    def url(self, user: str, folder: str = "INBOX") -> str:
        """`imap://user:password@host:port/FOLDER`, credentials percent-encoded."""
        creds = f"{quote(user, safe='')}:{quote(self.users[user], safe='')}"
        return f"imap://{creds}@{self.host}:{self.port}/{quote(folder, safe='')}"

    def log_offset(self) -> int:
        """Where the log ends now: pass it to :meth:`wait_for_log` as ``since``."""
        return self.log_path.stat().st_size

    def wait_for_log(self, text: str, *, since: int, timeout: float = 15.0) -> str:
        """The log written after ``since``, once it mentions ``text``.

        Dovecot's processes write through its log process, a moment after the fact (on
        a busy machine, seconds after: a login process logs its disconnect only once the
        client's TLS alert has been read).
        """
        deadline = time.monotonic() + timeout
        while True:
            with self.log_path.open("rb") as log:
                log.seek(since)
                written = log.read().decode(errors="replace")
            if text in written or time.monotonic() > deadline:
                return written
            time.sleep(0.05)

    # -- mail helpers ----------------------------------------------------------------

    def client(self, user: str) -> IMAPClient:
        """A logged-in IMAPClient; the caller logs out (use it as a context manager)."""
        imap = IMAPClient(self.host, port=self.port, ssl=False, timeout=10)
        imap.login(user, self.users[user])
        return imap

    def append(self, user: str, raw: bytes, folder: str = "INBOX") -> None:
        """Deliver one raw message into a folder, as a real MTA/LDA would leave it."""
        self.append_many(user, [raw], folder)

    def append_many(self, user: str, raws: list[bytes], folder: str = "INBOX") -> None:
        """Deliver several raw messages in one MULTIAPPEND (RFC 3502) command."""
        if not raws:
            return
        with self.client(user) as imap:
            if imap.has_capability("MULTIAPPEND"):
                imap.multiappend(folder, raws)
            else:
                for raw in raws:
                    imap.append(folder, raw)

    def recreate_folder(self, user: str, folder: str) -> None:
        """Delete and recreate a folder so it gets a new UIDVALIDITY (and no mail).

        INBOX cannot be deleted over IMAP, so for it the messages are expunged and
        doveadm bumps the UIDVALIDITY instead, which is what a client observes.
        """
        if folder.upper() == "INBOX":
            self._reset_inbox(user)
            return
        with self.client(user) as imap:
            if imap.folder_exists(folder):
                imap.delete_folder(folder)
            imap.create_folder(folder)

    # -- internals -------------------------------------------------------------------

    def _prepare_dirs(self) -> None:
        # The auth process runs as `dovecot` and must traverse every folder above the
        # passwd file; mkdtemp/tmp_path make 0700 folders ("auth service reported
        # temporary failure"), hence 0755.
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.base_dir.chmod(0o755)
        for name in ("run", "state"):
            (self.base_dir / name).mkdir(exist_ok=True)
        mail = self.base_dir / "mail"
        mail.mkdir(exist_ok=True)
        # Mail is accessed as uid/gid 8, which must be able to create Maildirs here.
        os.chown(mail, MAIL_UID, MAIL_GID)

    def _write_passwd(self) -> None:
        lines = []
        for user, password in self.users.items():
            if any(c in user + password for c in ":\n"):
                raise ValueError(f"user/password for {user!r} may not contain ':' or newline")
            lines.append(f"{user}:{{PLAIN}}{password}\n")
        passwd = self.base_dir / "passwd"
        passwd.write_text("".join(lines))
        passwd.chmod(0o644)  # read by the auth process running as `dovecot`

    def _config(self) -> str:
        config = CONFIG.format(
            base=self.base_dir,
            port=self.port,
            imaps_port=self.imaps_port,
            uid=MAIL_UID,
            gid=MAIL_GID,
        )
        if self.tls:
            config += TLS.format(cert=self.tls.cert, key=self.tls.key)
        else:
            config += NO_TLS
        if self.introspection_url:
            (self.base_dir / "oauth2.conf.ext").write_text(
                OAUTH2_EXT.format(url=self.introspection_url)
            )
            config += XOAUTH2.format(base=self.base_dir)
        else:
            config += PASSWORD_ONLY
        return config

    def _master_pid(self) -> int | None:
        try:
            return int((self.base_dir / "run" / "master.pid").read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    def _wait_ready(self) -> None:
        """Wait for the listener and a working LOGIN (auth starts after the socket)."""
        user = next(iter(self.users), None)
        deadline = time.monotonic() + START_TIMEOUT
        error: Exception | None = None
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((self.host, self.port), timeout=1):
                    pass
                if user is not None:
                    self.client(user).logout()
                return
            except Exception as exc:  # not up yet, or auth still starting
                error = exc
                time.sleep(0.1)
        raise RuntimeError(
            f"Dovecot on port {self.port} not ready after {START_TIMEOUT:.0f}s "
            f"({error!r}); log tail:\n{self._log_tail()}"
        )

    def _log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log written)"

    def _reset_inbox(self, user: str) -> None:
        with self.client(user) as imap:
            imap.select_folder("INBOX")
            old = int(imap.folder_status("INBOX", ["UIDVALIDITY"])[b"UIDVALIDITY"])
            messages = imap.search("ALL")
            if messages:
                imap.delete_messages(messages)
                imap.expunge()
        doveadm = shutil.which("doveadm") or "/usr/bin/doveadm"
        subprocess.run(
            [
                doveadm,
                "-c",
                str(self.conf_path),
                "mailbox",
                "update",
                "-u",
                user,
                "--uid-validity",
                str(max(old + 1, int(time.time()))),
                "INBOX",
            ],
            check=True,
            capture_output=True,
        )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
