"""Serving the dashboard with uvicorn: on its own (``consultant web``) or in a thread
beside the gateway and the worker (``consultant run``)."""

from __future__ import annotations

import threading
import time

import uvicorn

from consultant.config import Settings
from consultant.web.app import create_app


class WebServer:
    """uvicorn in a thread; :meth:`stop` asks it to finish its requests and return."""

    def __init__(self, settings: Settings) -> None:
        config = uvicorn.Config(
            create_app(),
            host=settings.web_host,
            port=settings.web_port,
            log_level="warning",
            access_log=False,  # an access log names cases and people; the audit log does that
            proxy_headers=True,  # the address a proxy on this machine forwarded
            server_header=False,
            timeout_graceful_shutdown=3,  # open live streams end rather than hold a stop
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="web", daemon=True)

    def start(self, *, timeout: float = 15.0) -> None:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the dashboard did not start (is the port in use?)")
            time.sleep(0.05)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


def serve(settings: Settings) -> None:
    """Serve in the foreground until interrupted: ``consultant web``."""
    WebServer(settings)._server.run()
