"""A throw-away certificate authority and a server certificate it signed, made at test time.

Made with the ``openssl`` command (Debian's Dovecot package depends on it), so the tests
need no Python package for it. The CA is trusted only where a test points
``SSL_CERT_FILE`` at it.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"
SERVER_NAME = "localhost"  # the certificate's only name: 127.0.0.1 must fail the hostname check
DAYS = "2"

# Python's default context checks these extensions strictly (X509_V_FLAG_X509_STRICT
# from 3.13): a CA marked critical, key identifiers on both certificates.
CA_EXTENSIONS = (
    "basicConstraints=critical,CA:TRUE",
    "keyUsage=critical,keyCertSign,cRLSign",
    "subjectKeyIdentifier=hash",
)
SERVER_EXTENSIONS = f"""\
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=DNS:{SERVER_NAME}
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
"""


@dataclass(frozen=True)
class Certificates:
    ca: Path  # the CA's certificate: what a client trusts
    cert: Path  # the server's certificate
    key: Path  # the server's private key


def make_certificates(folder: Path) -> Certificates:
    """A new CA and a certificate for ``localhost`` signed by it, written into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    made = Certificates(ca=folder / "ca.pem", cert=folder / "server.pem", key=folder / "server.key")
    ca_key = folder / "ca.key"
    request = folder / "server.csr"
    extensions = folder / "server.ext"
    extensions.write_text(SERVER_EXTENSIONS)
    new_key = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    ca_extensions = [arg for extension in CA_EXTENSIONS for arg in ("-addext", extension)]
    _openssl(
        "req",
        "-x509",
        *new_key,
        "-keyout",
        ca_key,
        "-out",
        made.ca,
        "-days",
        DAYS,
        "-subj",
        "/CN=CaseConsultant test CA",
        *ca_extensions,
    )
    _openssl("req", *new_key, "-keyout", made.key, "-out", request, "-subj", f"/CN={SERVER_NAME}")
    _openssl(
        "x509",
        "-req",
        "-in",
        request,
        "-CA",
        made.ca,
        "-CAkey",
        ca_key,
        "-CAcreateserial",
        "-out",
        made.cert,
        "-days",
        DAYS,
        "-extfile",
        extensions,
    )
    made.key.chmod(0o600)
    return made


def _openssl(*args: str | Path) -> None:
    subprocess.run([OPENSSL, *map(str, args)], check=True, capture_output=True)
