"""The Flask application: pages, login, headers, errors (:func:`create_app`).

Every page is under its language (``/sv/...``, ``/en/...``) and links to the same page in
the other one. Only GET and HEAD are answered (and POST to log in and out); every
response carries a strict Content-Security-Policy, no page is cached, and a mistake in an
address (an unknown assignment, a bad date or page) is a page in the reader's language
with its status code, never a traceback.
"""

from __future__ import annotations

import datetime as dt
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import (
    Flask,
    Response,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from jinja2 import StrictUndefined
from markupsafe import Markup, escape
from werkzeug.exceptions import HTTPException

from web.auth import (
    MAX_SESSION,
    PROVIDER_TIMEOUT,
    SCOPES,
    OidcConfig,
    Passwords,
    discovery_url,
    is_loopback,
    oidc_config,
    read_password_file,
)
from web.labels import EVENT_NAMES, LABELS, LANGUAGES
from web.reader import Reader
from workflow.core.plan import Localized
from workflow.core.specs import Language
from workflow.engine import Engine
from workflow.errors import InvalidInput
from workflow.mail.templating import format_date
from workflow.ops.logs import get_logger
from workflow.settings import Settings

HERE = Path(__file__).parent
#: Every response's policy: nothing but this site's stylesheet and images, no script,
#: no frames, forms only to this site.
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
#: Endpoints anyone may reach: the health check, the stylesheet, the login itself.
OPEN = {"healthz", "static", "root", "login", "oidc_login", "oidc_callback"}
#: Status codes the error page knows, and its title and text labels.
ERRORS = {
    400: ("bad_request", "bad_request_text"),
    403: ("forbidden", "forbidden_text"),
    404: ("not_found", "not_found_text"),
    405: ("method_not_allowed", "method_not_allowed_text"),
    429: ("too_many", "too_many_text"),
    500: ("server_error", "server_error_text"),
    503: ("unavailable", "unavailable_text"),
}

log = get_logger("council.web")
#: Every page's prefix: its language.
LANG = "/<any(sv, en):lang>"


class BadInput(Exception):
    """A value in the address that cannot be used: a 400 page saying which."""

    def __init__(self, label: str, value: str = "") -> None:
        self.label, self.value = label, value


def create_app(
    settings: Settings, engine: Engine, *, host: str, session_key: str | None = None
) -> Flask:
    """The web view over ``engine`` (on a read-only database), as bound to ``host``.

    Off loopback (or with ``web_require_login``) a login is required, and without a
    configured method this refuses to build: :class:`InvalidInput`, one line."""
    loopback = is_loopback(host)
    login_required = settings.web_require_login or not loopback
    passwords = Passwords(settings.web_password_file) if settings.web_password_file else None
    if passwords is not None:
        read_password_file(passwords.path)  # a broken file stops the start, not a login
    oidc = oidc_config(settings)
    if login_required and passwords is None and oidc is None:
        where = "not loopback" if not loopback else "web_require_login is set"
        raise InvalidInput(
            f"council serve on {host} ({where}) requires a login: set "
            "COUNCIL_WEB_PASSWORD_FILE or COUNCIL_WEB_OIDC_ISSUER (docs/web.md)"
        )
    public = settings.web_public_url or ""
    secure = settings.web_secure_cookies
    if secure is None:
        secure = not loopback or public.startswith("https://")

    app = Flask(__name__, template_folder=str(HERE / "templates"),
                static_folder=str(HERE / "static"))  # fmt: skip
    app.config.update(
        PROVIDE_AUTOMATIC_OPTIONS=False,
        SECRET_KEY=session_key or settings.web_session_key(),
        SESSION_COOKIE_NAME="__Host-council" if secure else "council",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SECURE=secure,
        SESSION_COOKIE_SAMESITE="Lax",  # Strict would drop it on the provider's redirect back
        PERMANENT_SESSION_LIFETIME=dt.timedelta(minutes=settings.web_session_minutes),
        MAX_CONTENT_LENGTH=16 * 1024,
        TRAP_HTTP_EXCEPTIONS=False,
    )
    app.jinja_env.undefined = StrictUndefined
    app.extensions["council"] = Web(
        reader=Reader(engine, settings), login_required=login_required, passwords=passwords,
        oidc=oidc, public=public, oauth=_oauth(app, oidc),
    )  # fmt: skip
    app.context_processor(_context)
    app.before_request(_refuse_and_require)
    app.after_request(_headers)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(BadInput, _bad_input)
    app.register_error_handler(Exception, _unexpected)
    from web import login, pages

    pages.register(app)
    login.register(app)
    return app


@dataclass(frozen=True)
class Web:
    """What the views need: the reader and how people log in."""

    reader: Reader
    login_required: bool
    passwords: Passwords | None
    oidc: OidcConfig | None
    #: ``web_public_url`` or "" (then the address the request came to).
    public: str
    oauth: Any


def web() -> Web:
    """The application's :class:`Web`, in a request."""
    found: Web = current_app.extensions["council"]
    return found


def _oauth(app: Flask, oidc: OidcConfig | None) -> Any:
    if oidc is None:
        return None
    from authlib.integrations.flask_client import OAuth

    oauth = OAuth(app)
    oauth.register(
        "oidc",
        client_id=oidc.client_id,
        client_secret=oidc.client_secret,
        server_metadata_url=discovery_url(oidc.issuer),
        client_kwargs={
            "scope": SCOPES,
            "code_challenge_method": "S256",
            "default_timeout": PROVIDER_TIMEOUT,
        },
    )
    return oauth


# --- language, context, headers, errors ------------------------------------------------


def language() -> Language:
    """The page's language: its path prefix, else the browser's preference, else Swedish."""
    lang = (request.view_args or {}).get("lang") if request.url_rule else None
    if lang is None:
        first = request.path.strip("/").split("/", 1)[0]
        lang = first if first in ("sv", "en") else None
    if lang is None:
        lang = request.accept_languages.best_match(["sv", "en"], default="sv")
    return Language(lang)


def _other_url(lang: Language) -> str:
    """This page in the other language (its query kept)."""
    other = Language.EN if lang is Language.SV else Language.SV
    path = request.path
    rest = path[3:] if path[:4] in ("/sv/", "/en/") or path in ("/sv", "/en") else "/"
    query = request.query_string.decode("ascii", "replace")
    return f"/{other.value}{rest or '/'}" + (f"?{query}" if query else "")


def _csrf() -> str:
    token = session.get("csrf")
    if not token:
        token = session["csrf"] = secrets.token_urlsafe(32)
    return str(token)


def _local(lang: Language) -> Any:
    def local(text: Localized | None) -> Markup:
        """A text in the page's language, or the other one marked with its ``lang``."""
        if text is None:
            return Markup("")
        wanted = text.sv if lang is Language.SV else text.en
        if wanted:
            return escape(wanted)
        other = "en" if lang is Language.SV else "sv"
        return Markup('<span lang="{}">{}</span>').format(other, text.get(other))

    return local


def _context() -> dict[str, Any]:
    lang = language()
    other = Language.EN if lang is Language.SV else Language.SV
    user = session.get("user") if web().login_required else None
    return {
        "lang": lang.value,
        "l": LABELS[lang],
        "events_named": EVENT_NAMES[lang],
        "other": other.value,
        "other_name": LABELS[other]["language_name"],
        "other_url": _other_url(lang),
        "user": user,
        "csrf": _csrf() if user or request.endpoint == "login" else "",
        "day": lambda value: _day(value, lang),
        "local": _local(lang),
        "endpoint": request.endpoint,
    }


def _day(value: Any, lang: Language) -> str:
    if not value:
        return "–"
    if isinstance(value, str):
        value = dt.date.fromisoformat(value[:10])
    return format_date(value, lang)


def _refuse_and_require() -> Any:
    """Only GET, HEAD and POST; off loopback, a login for everything but :data:`OPEN`."""
    if request.method not in ("GET", "HEAD", "POST"):
        abort(405)
    if not web().login_required or request.endpoint in OPEN:
        return None
    user, since = session.get("user"), session.get("login_at", 0)
    if user and time.time() - since < MAX_SESSION:
        session.modified = True  # a new cookie lifetime with each request
        return None
    session.pop("user", None)
    if request.method == "GET" and request.accept_mimetypes.accept_html:
        target = request.full_path if request.query_string else request.path
        return redirect(url_for("login", lang=language().value, next=target))
    return Response("login required\n", 401, {"Content-Type": "text/plain; charset=utf-8"})


def _headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
    cached = request.endpoint == "static" and response.status_code == 200
    response.headers["Cache-Control"] = "public, max-age=3600" if cached else "no-store"
    response.vary.add("Cookie")
    return response


def _http_error(exc: HTTPException) -> Any:
    code = exc.code or 500
    if 300 <= code < 400:  # werkzeug's redirects (a missing trailing slash)
        return exc
    response = error_page(code if code in ERRORS else 400)
    if code == 405:
        response.headers["Allow"] = "GET, HEAD"
    return response


def _bad_input(exc: BadInput) -> Response:
    return error_page(400, LABELS[language()][exc.label].format(value=exc.value))


def _unexpected(exc: Exception) -> Response:
    if _database_down(exc):
        log.warning("web.database_unreachable", error=type(exc).__name__)
        return error_page(503)
    log.error("web.error", path=request.path, exc_info=exc)
    return error_page(500)


def _database_down(exc: Exception) -> bool:
    from workflow.errors import NotInitialised, Unreachable

    if isinstance(exc, Unreachable | NotInitialised):
        return True
    import sqlalchemy.exc

    return isinstance(exc, sqlalchemy.exc.OperationalError | sqlalchemy.exc.InterfaceError)


def error_page(code: int, detail: str = "", *, title: str = "", text: str = "") -> Response:
    """A page in the reader's language with ``code``: the error's title and text."""
    if not title:
        title, text = ERRORS[code]
    html = render_template("error.html", code=code, title=title, text=text, detail=detail)
    return Response(html, code, {"Content-Type": "text/html; charset=utf-8"})


__all__ = ["LANGUAGES", "BadInput", "Web", "create_app", "error_page", "language", "web"]
