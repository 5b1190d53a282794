"""Private real servers (Dovecot, Redis, an SMTP sink) for the test suite."""
