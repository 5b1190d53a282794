"""The one TLS policy for every connection the desk opens to a mail server.

Certificates are verified (chain and hostname): ``smtplib`` and ``imaplib`` verify
nothing unless given a context. The context trusts the system's certificate
authorities; a private one is added with OpenSSL's own ``SSL_CERT_FILE`` variable (a
PEM bundle, read when the context is built), so no setting of ours is needed for it.
"""

from __future__ import annotations

import ssl
from functools import lru_cache


@lru_cache(maxsize=1)
def tls_context() -> ssl.SSLContext:
    """Certificate-verifying TLS, built once: loading the CA certificates takes tens of
    milliseconds, too long to repeat for every connection."""
    return ssl.create_default_context()
