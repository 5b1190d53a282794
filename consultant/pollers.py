"""One follower per mailbox, kept in step with the mailboxes' settings while the desk runs.

Mailboxes are set up in the environment and in the database (consultant/mailbox_settings.py);
the database's change while the desk runs. Every ``poll_interval`` the pollers look at
the mailboxes again: a new or re-enabled one gets a follower
(:func:`consultant.mail.imap.watch`), a removed or disabled one's follower is stopped,
and a changed one's is stopped and started afresh with the new settings. So an admin's
change on the mailboxes page needs no restart.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from consultant.config import MailboxURL, Settings
from consultant.mail.imap import watch
from consultant.mailbox_settings import mailboxes_to_poll

log = logging.getLogger(__name__)

HANDOVER_SECONDS = 5.0  # how long a changed mailbox's old follower gets to let go


@dataclass
class _Follower:
    mailbox: MailboxURL
    thread: threading.Thread
    stop: threading.Event


class Pollers:
    """The followers of this process, started and stopped by :meth:`refresh`."""

    def __init__(self, *, settings: Settings) -> None:
        self.settings = settings
        self.followers: dict[str, _Follower] = {}

    def run(self, stop: threading.Event) -> None:
        """Keep the followers in step with the settings until ``stop`` is set."""
        while not stop.is_set():
            self.refresh()
            stop.wait(self.settings.poll_interval)
        self.stop_all()

    def refresh(self) -> None:
        """Start, stop and restart followers so that each mailbox to poll has one."""
        try:
            wanted = {m.name: m for m in mailboxes_to_poll(settings=self.settings)}
        except Exception:  # the database may be down: the followers keep going meanwhile
            log.exception("could not read the mailboxes' settings")
            return
        for name, follower in list(self.followers.items()):
            if wanted.get(name) != follower.mailbox or not follower.thread.is_alive():
                self._stop(name)
        for name, mailbox in wanted.items():
            if name not in self.followers:
                self._start(mailbox)

    def names(self) -> list[str]:
        return sorted(self.followers)

    def stop_all(self) -> None:
        for name in list(self.followers):
            self._stop(name)

    def _start(self, mailbox: MailboxURL) -> None:
        stop = threading.Event()
        thread = threading.Thread(
            target=watch,
            kwargs={"mailbox": mailbox, "settings": self.settings, "stop": stop},
            name=f"poller {mailbox.name}",
            daemon=True,
        )
        self.followers[mailbox.name] = _Follower(mailbox, thread, stop)
        thread.start()
        log.info("%s: following", mailbox.name)

    def _stop(self, name: str) -> None:
        follower = self.followers.pop(name)
        follower.stop.set()
        follower.thread.join(HANDOVER_SECONDS)  # off the mailbox before a new one starts
        log.info("%s: no longer followed", name)
