"""The OAuth 2.0 providers a mailbox can be connected with: Microsoft 365 and Google.

Each is the desk's app as registered there (client id and secret from the settings),
its two endpoints, the scopes that let IMAP and SMTP log in with XOAUTH2, and where its
mailboxes are reached. The endpoints can be replaced in the settings, which is how the
tests point the desk at a local authorization server.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from consultant.config import Settings

CALLBACK_PATH = "/oauth/callback"  # register the desk's web address + this at the provider


class ProviderError(Exception):
    """An unknown provider, or one the desk has no client id for."""


@dataclass(frozen=True)
class Provider:
    key: str  # stored on the mailbox: "microsoft" or "google"
    title: str  # what the admin reads: "Microsoft 365"
    authorize_url: str
    token_url: str
    scope: str
    client_id: str
    client_secret: str = field(repr=False)
    imap_host: str = ""  # filled in on the connect form
    extra: tuple[tuple[str, str], ...] = ()  # more parameters of the authorize request

    @property
    def configured(self) -> bool:
        return bool(self.client_id and self.client_secret)


def providers(settings: Settings) -> tuple[Provider, ...]:
    """Both providers, with the desk's registration at each (possibly none)."""
    tenant = settings.oauth_microsoft_tenant or "common"
    microsoft_base = f"https://login.microsoftonline.com/{tenant}/oauth2/v2.0"
    return (
        Provider(
            key="microsoft",
            title="Microsoft 365",
            authorize_url=settings.oauth_microsoft_authorize_url or f"{microsoft_base}/authorize",
            token_url=settings.oauth_microsoft_token_url or f"{microsoft_base}/token",
            # offline_access: a refresh token, so the desk keeps access after the hour.
            scope="https://outlook.office.com/IMAP.AccessAsUser.All "
            "https://outlook.office.com/SMTP.Send offline_access",
            client_id=settings.oauth_microsoft_client_id,
            client_secret=settings.oauth_microsoft_client_secret,
            imap_host="outlook.office365.com",
        ),
        Provider(
            key="google",
            title="Google",
            authorize_url=settings.oauth_google_authorize_url
            or "https://accounts.google.com/o/oauth2/v2/auth",
            token_url=settings.oauth_google_token_url or "https://oauth2.googleapis.com/token",
            scope="https://mail.google.com/",
            client_id=settings.oauth_google_client_id,
            client_secret=settings.oauth_google_client_secret,
            imap_host="imap.gmail.com",
            # Google gives a refresh token only with access_type=offline, and a second
            # time (a reconnect) only when consent is asked again.
            extra=(("access_type", "offline"), ("prompt", "consent")),
        ),
    )


def provider_named(key: str, *, settings: Settings) -> Provider:
    """The provider ``key``, ready to use; :class:`ProviderError` says what is missing."""
    for provider in providers(settings):
        if provider.key == key:
            if not provider.configured:
                prefix = f"CONSULTANT_OAUTH_{key.upper()}"
                raise ProviderError(
                    f"{provider.title} is not set up: register the desk there and set "
                    f"{prefix}_CLIENT_ID and {prefix}_CLIENT_SECRET"
                )
            return provider
    known = ", ".join(p.key for p in providers(settings))
    raise ProviderError(f"unknown provider {key[:40]!r} (known: {known})")


def redirect_uri(settings: Settings) -> str:
    """Where the provider sends the admin back: exactly what is registered there."""
    return f"{settings.web_url}{CALLBACK_PATH}"
