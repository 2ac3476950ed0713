"""Who may see the web view: nobody needs to log in on loopback; anywhere else, a login.

Two methods, either or both: OpenID Connect (Authlib's Flask client: discovery, PKCE with
S256, state and nonce, the ID token's signature, issuer, audience, expiry and nonce
checked), and local passwords (a file of ``user:argon2-hash`` lines). A login is kept in
Flask's signed session cookie (HttpOnly, SameSite=Lax, Secure off loopback), which ends
after ``web_session_minutes`` without a request and :data:`MAX_SESSION` after the login.
Every form carries a CSRF token bound to the session.
"""

from __future__ import annotations

import collections
import hmac
import ipaddress
import secrets
import socket
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from workflow.errors import InvalidInput
from workflow.settings import Settings

#: A session ends this long after its login, however active.
MAX_SESSION = 10 * 3600
#: Failed logins allowed per user name, and per client address, in :data:`WINDOW` seconds.
FAILURES_PER_NAME, FAILURES_PER_ADDRESS, WINDOW = 5, 20, 15 * 60
#: The scopes asked of the OpenID Connect provider.
SCOPES = "openid email profile"
#: Seconds to wait for the provider (discovery, keys, token).
PROVIDER_TIMEOUT = 10


def is_loopback(host: str) -> bool:
    """The address a server binds to reaches this machine only (127.0.0.0/8, ::1,
    ``localhost``). ``0.0.0.0``, ``::`` and every other address do not."""
    name = host.strip("[]")
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        pass
    try:
        found = socket.getaddrinfo(name, None)
    except OSError:
        return False
    return bool(found) and all(ipaddress.ip_address(f[4][0]).is_loopback for f in found)


# --- local passwords -------------------------------------------------------------------

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    """An argon2id hash for a line of the password file."""
    return _hasher.hash(password)


def read_password_file(path: Path) -> dict[str, str]:
    """``{user: hash}`` from ``user:hash`` lines; blank lines and ``#`` comments skipped.
    A line that is neither is one clear error naming the file and line (never its text)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(
            f"cannot read the web view's password file {path}: {exc.strerror}"
        ) from None
    users: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        user, _, hashed = line.partition(":")
        if not user or not hashed.startswith("$argon2"):
            raise InvalidInput(
                f"{path}:{number}: expected user:$argon2id$... "
                "(make one with `council serve --hash-password USER`)"
            )
        users[user] = hashed
    return users


@dataclass
class Throttle:
    """Failed logins counted per key (a user name, an address) in a sliding window."""

    limit: int
    window: float = WINDOW
    _failures: dict[str, collections.deque[float]] = field(
        default_factory=lambda: collections.defaultdict(collections.deque)
    )
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _recent(self, key: str, now: float) -> collections.deque[float]:
        failures = self._failures[key]
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        return failures

    def blocked(self, key: str) -> bool:
        with self._lock:
            return len(self._recent(key, time.monotonic())) >= self.limit

    def failed(self, key: str) -> None:
        with self._lock:
            self._recent(key, time.monotonic()).append(time.monotonic())


@dataclass
class Passwords:
    """Checks a user name and password against the file, in constant time for unknown
    names too (an unknown name is verified against a hash of its own)."""

    path: Path
    names: Throttle = field(default_factory=lambda: Throttle(FAILURES_PER_NAME))
    addresses: Throttle = field(default_factory=lambda: Throttle(FAILURES_PER_ADDRESS))
    _dummy: str = field(default_factory=lambda: _hasher.hash(secrets.token_urlsafe(16)))

    def throttled(self, user: str, address: str) -> bool:
        return self.names.blocked(user) or self.addresses.blocked(address)

    def verify(self, user: str, password: str, address: str) -> bool:
        users = read_password_file(self.path)  # read each time: adding a user needs no restart
        hashed = users.get(user)
        try:
            ok = _hasher.verify(hashed or self._dummy, password) and hashed is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            ok = False
        if not ok:
            self.names.failed(user)
            self.addresses.failed(address)
        return ok


# --- OpenID Connect --------------------------------------------------------------------


@dataclass(frozen=True)
class OidcConfig:
    issuer: str
    client_id: str
    client_secret: str
    allowed_emails: frozenset[str]
    allowed_groups: frozenset[str]
    groups_claim: str

    def admits(self, claims: dict[str, Any]) -> bool:
        """The ID token's user is one the settings allow: a listed verified e-mail, or a
        member of a listed group."""
        email = claims.get("email")
        verified = claims.get("email_verified", True) is not False
        if isinstance(email, str) and verified and email.lower() in self.allowed_emails:
            return True
        groups = claims.get(self.groups_claim)
        if isinstance(groups, str):
            groups = [groups]
        return isinstance(groups, list) and bool(self.allowed_groups & set(map(str, groups)))

    def claims_options(self) -> dict[str, Any]:
        """What the ID token must say: this issuer, this client as its audience."""
        return {
            "iss": {"essential": True, "value": self.issuer},
            "aud": {"essential": True, "value": self.client_id},
        }


def oidc_config(settings: Settings) -> OidcConfig | None:
    if settings.web_oidc_issuer is None:
        return None
    missing = [
        name
        for name in ("web_oidc_client_id", "web_oidc_client_secret_file")
        if getattr(settings, name) is None
    ]
    if missing:
        names = ", ".join(f"COUNCIL_{n.upper()}" for n in missing)
        raise InvalidInput(f"COUNCIL_WEB_OIDC_ISSUER is set: set {names} too (docs/web.md)")
    if not settings.web_oidc_allowed_emails and not settings.web_oidc_allowed_groups:
        raise InvalidInput(
            "COUNCIL_WEB_OIDC_ISSUER is set: say who may log in with "
            "COUNCIL_WEB_OIDC_ALLOWED_EMAILS or COUNCIL_WEB_OIDC_ALLOWED_GROUPS (docs/web.md)"
        )
    secret_file = settings.web_oidc_client_secret_file
    assert secret_file is not None
    assert settings.web_oidc_client_id is not None
    try:
        secret = secret_file.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise InvalidInput(
            f"cannot read the OIDC client secret file {secret_file}: {exc.strerror}"
        ) from None
    if not secret:
        raise InvalidInput(f"the OIDC client secret file {secret_file} is empty")
    return OidcConfig(
        issuer=settings.web_oidc_issuer,
        client_id=settings.web_oidc_client_id,
        client_secret=secret,
        allowed_emails=frozenset(e.lower() for e in settings.web_oidc_allowed_emails),
        allowed_groups=frozenset(settings.web_oidc_allowed_groups),
        groups_claim=settings.web_oidc_groups_claim,
    )


def discovery_url(issuer: str) -> str:
    return issuer.rstrip("/") + "/.well-known/openid-configuration"


# --- the session -----------------------------------------------------------------------


def same_token(given: str | None, expected: str | None) -> bool:
    """A CSRF token matches, compared in constant time."""
    return bool(given and expected) and hmac.compare_digest(str(given), str(expected))


def local_path(target: str | None, default: str) -> str:
    """Where to go after a login: a path on this site only (never ``//host`` or a URL)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target


def methods(passwords: Passwords | None, oidc: OidcConfig | None) -> Iterable[str]:
    if oidc is not None:
        yield "oidc"
    if passwords is not None:
        yield "password"
