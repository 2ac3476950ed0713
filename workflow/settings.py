"""One settings object, read from the environment (``COUNCIL_*``) and ``council.toml``.

Nothing reads the environment at import time: build :class:`Settings` once per
process (the CLI does) and pass it on.
"""

from __future__ import annotations

import datetime as dt
import functools
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from workflow.core.calendar import Calendar, DuePolicy

#: An OpenID Connect issuer: https, or plain http on loopback only (a provider in a test).
OIDC_ISSUER = (
    r"^https://[^\s]+$"
    r"|^http://(127\.0\.0\.1|localhost|\[::1\])(:\d+)?(/[^\s]*)?$"
)
#: Where council keeps its embedded database, broker and mail by default.
DEFAULT_VAR = Path("var")


class SmtpSecurity(StrEnum):
    """How the SMTP connection is protected."""

    STARTTLS = "starttls"  # plain connection upgraded with STARTTLS (port 587)
    TLS = "tls"  # TLS from the first byte (port 465)
    NONE = "none"  # only for a relay on localhost or a test catcher


class Settings(BaseSettings):
    """Every setting, with its default; see docs/configuration.md."""

    model_config = SettingsConfigDict(
        env_prefix="COUNCIL_",
        toml_file="council.toml",
        extra="forbid",
        frozen=True,
        # COUNCIL_X= (empty) means unset, as in a compose file's ${X:-}.
        env_ignore_empty=True,
    )

    var_dir: Path = Field(DEFAULT_VAR, description="Directory for embedded state.")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; default: a SQLite file under var_dir."
    )
    definitions: Path = Field(Path("definitions"), description="Definitions directory.")
    actor: str | None = Field(None, description="Who acts when --as is not given.")
    admin_role: str = Field(
        "council-admin",
        pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$",
        description="People holding this role in people.yaml may act on every assignment.",
    )
    timezone: str = Field("Europe/Stockholm", description="Zone for dates shown and --now.")
    extra_days_off: list[dt.date] = Field(
        default_factory=list, description="Closure days on top of Swedish holidays and eves."
    )
    due_policy: DuePolicy = Field(
        DuePolicy.PREVIOUS, description="Where a due date on a day off moves."
    )

    # --- reports ---
    report_notes: Literal["latest", "all"] = Field(
        "latest", description="Progress text in reports: the latest note, or all in order."
    )
    at_risk_days: int = Field(
        5, ge=0, description="Working days before a due date when a point is at risk."
    )
    backlog_age_limit_months: int = Field(
        11, ge=1, description="Open points older than this are flagged in the backlog."
    )

    # --- broker and workers ---
    broker_url: str | None = Field(
        None, description="Celery broker URL; default: an embedded Redis under var_dir."
    )
    redis_server: Path | None = Field(
        None, description="redis-server binary for the embedded broker (default: found)."
    )
    worker_prefetch_multiplier: int = Field(
        1, ge=1, description="Messages a worker process reserves ahead (1: fair, no hoarding)."
    )
    task_soft_time_limit: int = Field(
        60, ge=1, description="Seconds before a task is asked to stop."
    )
    task_time_limit: int = Field(90, ge=2, description="Seconds before a task is killed.")
    visibility_timeout: int = Field(
        3600, ge=10, description="Seconds before Redis redelivers an unacknowledged message."
    )
    max_retries: int = Field(
        8, ge=0, description="Retries of a transient failure before giving up."
    )
    retry_backoff: float = Field(
        15.0, gt=0, description="Seconds before the first retry of an e-mail; doubles each time."
    )
    claim_lease: float = Field(
        30.0,
        ge=2,
        description="Seconds a worker holds an event or an e-mail without renewing "
        "it: a killed worker's work is redone after this (and a reconciler run).",
    )
    relay_interval: float = Field(10.0, gt=0, description="Seconds between outbox relay runs.")
    dispatch_batch: int = Field(
        50,
        ge=1,
        le=500,
        description="Events one dispatch message names at most: a worker handles them in "
        "one transaction and mails their prompts over one connection.",
    )
    beat_lease: float = Field(
        15.0,
        ge=1,
        description="Seconds a beat leads without renewing: when the leader's "
        "host dies, a standby beat takes over within this and a third of it.",
    )
    sweep_interval: float = Field(
        900.0, gt=0, description="Seconds between deadline sweeps (beat)."
    )
    reconcile_interval: float = Field(15.0, gt=0, description="Seconds between reconciler runs.")
    reconcile_after: float = Field(
        300.0,
        gt=0,
        description="Seconds before an event never picked up, or an e-mail never "
        "tried, is redone (a lost message); the wait doubles each time for the same event.",
    )
    reconcile_batch: int = Field(
        100, ge=1, description="Events the reconciler publishes again at most per run."
    )

    # --- the public progress site ---
    site_dir: Path | None = Field(
        None,
        description="Where the public site is built (a symbolic link to the build in force); "
        "unset: no site, and workers do not rebuild one.",
    )
    site_url: str | None = Field(
        None,
        pattern=r"^https?://[^\s/]+(/[^\s]*)?/$",
        description="The site's public address, ending in /; used for the sitemap and feeds.",
    )
    site_contact: str | None = Field(
        None,
        description="Where residents report accessibility problems (an e-mail or web address), "
        "named in the accessibility statement.",
    )
    site_interval: float = Field(
        30.0, gt=0, description="Seconds between the workers' rebuilds of changed pages."
    )

    # --- e-mail ---
    mail_from: str = Field("council@kommun.example", description="Sender of every e-mail.")
    mail_domain: str | None = Field(
        None, description="Domain of Message-IDs; default: the domain of mail_from."
    )
    smtp_host: str | None = Field(None, description="SMTP server; unset: write to a maildir.")
    smtp_port: int = Field(587, ge=1, le=65535)
    smtp_security: SmtpSecurity = Field(SmtpSecurity.STARTTLS)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_timeout: float = Field(30.0, gt=0, description="Seconds to wait for the SMTP server.")
    maildir: Path | None = Field(None, description="Maildir for e-mail; default: var_dir/mail.")

    # --- replies by e-mail ---
    reply_secret: SecretStr | None = Field(
        None,
        description="Key that signs reply addresses (HMAC); unset: e-mails carry no reply "
        "address and `council inbox` refuses to run. At least 32 characters.",
        min_length=32,
    )
    reply_address: str | None = Field(
        None,
        description="Mailbox replies go to, plus-addressed per step (council+TOKEN@...); "
        "default: mail_from.",
    )
    inbox_max_bytes: int = Field(
        5_000_000, ge=10_000, description="Larger replies are refused unread."
    )
    reply_answers_per_hour: int = Field(
        5,
        ge=0,
        description="Answer mails one person receives at most in an hour; replies past it are "
        "still recorded, unanswered (a forged sender cannot make council a spam relay).",
    )
    inbox_maildir: Path | None = Field(
        None, description="Maildir `council inbox` reads; default: var_dir/inbox."
    )
    inbox_listen_host: str = Field(
        "127.0.0.1", description="Where `council inbox --serve` listens for SMTP."
    )
    inbox_listen_port: int = Field(2525, ge=1, le=65535)
    imap_host: str | None = Field(None, description="IMAPS server `council inbox --imap` reads.")
    imap_port: int = Field(993, ge=1, le=65535)
    imap_username: str | None = None
    imap_password: SecretStr | None = None
    imap_folder: str = Field("INBOX", description="Folder whose unseen messages are read.")
    imap_ca_file: Path | None = Field(
        None, description="CA certificates to trust for the IMAP server; default: the system's."
    )

    # --- the web view (`council serve`) ---
    web_host: str = Field(
        "127.0.0.1",
        description="Where `council serve` listens; off loopback it requires a login.",
    )
    web_port: int = Field(8080, ge=1, le=65535, description="The web view's port.")
    web_require_login: bool = Field(
        False,
        description="Require a login on loopback too (a reverse proxy on the same host).",
    )
    web_public_url: str | None = Field(
        None,
        pattern=r"^https?://[^\s/]+(/[^\s]*)?/$",
        description="The web view's address as browsers see it, ending in /; the OpenID "
        "Connect redirect URI is built from it.",
    )
    web_secure_cookies: bool | None = Field(
        None,
        description="Mark the session cookie Secure; default: off loopback, or when "
        "web_public_url is https.",
    )
    web_session_minutes: int = Field(
        60, ge=5, le=720, description="A session ends after this many minutes without a request."
    )
    web_secret_file: Path | None = Field(
        None,
        description="Key that signs the web view's sessions; default: var_dir/web-secret, "
        "made (0600) on first use.",
    )
    web_password_file: Path | None = Field(
        None,
        description="Local logins: one `user:argon2-hash` a line (`council serve "
        "--hash-password`).",
    )
    web_oidc_issuer: str | None = Field(
        None,
        pattern=OIDC_ISSUER,
        description="OpenID Connect provider (its discovery document under "
        "/.well-known/openid-configuration); https, or http on loopback only.",
    )
    web_oidc_client_id: str | None = Field(
        None, description="This web view's client id at the provider."
    )
    web_oidc_client_secret_file: Path | None = Field(
        None, description="A file holding the client secret (kept out of the environment)."
    )
    web_oidc_allowed_emails: list[str] = Field(
        default_factory=list, description="Verified e-mail addresses that may log in."
    )
    web_oidc_allowed_groups: list[str] = Field(
        default_factory=list,
        description="Groups (in the ID token's web_oidc_groups_claim) whose members may log in.",
    )
    web_oidc_groups_claim: str = Field(
        "groups", description="The ID token claim that lists the user's groups."
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Explicit arguments, then the environment, then council.toml.
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))

    @property
    def lease(self) -> dt.timedelta:
        """How long a task may hold a claim: past its hard time limit, it was killed."""
        return dt.timedelta(seconds=self.task_time_limit + 5)

    @property
    def effective_maildir(self) -> Path:
        return self.maildir or self.var_dir / "mail"

    @property
    def message_id_domain(self) -> str:
        return self.mail_domain or self.mail_from.rpartition("@")[2] or "council.invalid"

    @property
    def effective_reply_address(self) -> str:
        return self.reply_address or self.mail_from

    @property
    def embedded(self) -> bool:
        """One machine with nothing configured: SQLite and the Redis under var_dir."""
        return self.database_url is None and self.broker_url is None

    @property
    def reply_secret_file(self) -> Path:
        """Where an embedded installation keeps the reply secret it generated."""
        return self.var_dir / "reply-secret"

    def reply_key(self) -> SecretStr | None:
        """The key that signs reply addresses, or None when replies are off.

        ``reply_secret`` when set. An embedded installation without one generates its
        own on first use, into :attr:`reply_secret_file` (created 0600, never printed or
        logged), so owners can answer by e-mail out of the box; a production installation
        (a database or broker configured) must set one (``council doctor`` says so).
        """
        if self.reply_secret is not None:
            return self.reply_secret
        if not self.embedded:
            return None
        return SecretStr(_read_or_create_secret(self.reply_secret_file))

    @property
    def effective_web_secret_file(self) -> Path:
        return self.web_secret_file or self.var_dir / "web-secret"

    def web_session_key(self) -> str:
        """The key that signs the web view's sessions: made (0600) on first use, and kept."""
        return _read_or_create_secret(self.effective_web_secret_file)

    @property
    def effective_inbox_maildir(self) -> Path:
        return self.inbox_maildir or self.var_dir / "inbox"

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.var_dir / 'council.db'}"

    def calendar(self) -> Calendar:
        from zoneinfo import ZoneInfo

        return Calendar(
            extra_days_off=self.extra_days_off,
            due_policy=self.due_policy,
            timezone=ZoneInfo(self.timezone),
        )


@functools.lru_cache(maxsize=8)
def _read_or_create_secret(path: Path) -> str:
    """The secret in ``path``; made once, atomically, if the file does not exist yet.

    Written to a private temporary file and linked into place, so two processes starting
    at once agree on one secret (the second finds the first's file).
    """
    import contextlib
    import os
    import secrets
    import tempfile

    try:
        return _checked_secret(path, path.read_text(encoding="ascii", errors="replace"))
    except FileNotFoundError:
        pass
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # 0600
    try:
        with os.fdopen(fd, "w", encoding="ascii") as stream:
            stream.write(secrets.token_urlsafe(32) + "\n")
        with contextlib.suppress(FileExistsError):  # another process made it first: theirs
            os.link(temporary, path)
    finally:
        os.unlink(temporary)
    return _checked_secret(path, path.read_text(encoding="ascii", errors="replace"))


#: The shortest reply secret accepted (as for ``reply_secret``).
MIN_SECRET = 32


def _checked_secret(path: Path, text: str) -> str:
    secret = text.strip()
    if len(secret) < MIN_SECRET:
        from workflow.errors import InvalidInput

        raise InvalidInput(
            f"{path} is damaged (under {MIN_SECRET} characters): delete it and council makes "
            "a new one (what it signed stops working: reply addresses already sent, or the "
            "web view's sessions)"
        )
    return secret


# --- where values come from (for `council config show` and error messages) --------

#: Where a value came from.
DEFAULT, ENVIRONMENT, TOML = "default", "environment", "council.toml"


def raw_sources() -> dict[str, dict[str, Any]]:
    """The values each source gives, by field name: the environment, then council.toml."""
    from pydantic_settings import EnvSettingsSource, TomlConfigSettingsSource

    sources: dict[str, dict[str, Any]] = {ENVIRONMENT: dict(EnvSettingsSource(Settings)())}
    try:
        sources[TOML] = dict(TomlConfigSettingsSource(Settings)())
    except (OSError, ValueError):  # unreadable or not TOML: Settings() reports it
        sources[TOML] = {}
    return sources
