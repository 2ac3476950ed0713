"""Logging in (a password, or OpenID Connect) and out; each form with a CSRF token."""

from __future__ import annotations

import secrets
import time
from typing import Any

from flask import Flask, Response, abort, redirect, render_template, request, session, url_for

from web.app import LANG, error_page, language, web
from web.auth import local_path, same_token
from workflow.ops.logs import get_logger

log = get_logger("council.web")

HTML = {"Content-Type": "text/html; charset=utf-8"}


def register(app: Flask) -> None:
    app.add_url_rule(f"{LANG}/login", "login", login, methods=["GET", "POST"])
    app.add_url_rule(f"{LANG}/login/oidc", "oidc_login", oidc_login)
    app.add_url_rule("/login/oidc/callback", "oidc_callback", oidc_callback)
    app.add_url_rule("/logout", "logout", logout, methods=["POST"])


def _start_session(user: str, method: str, target: str | None) -> str:
    """A new session for ``user`` (nothing from before the login survives); where to go."""
    target = local_path(target, f"/{language().value}/")
    session.clear()
    session.permanent = True
    session.update(user=user, login_at=time.time(), csrf=secrets.token_urlsafe(32))
    log.info("web.login", method=method, user=user)
    return target


def _login_page(*, failed: bool, user: str = "", target: str) -> Response:
    state = web()
    html = render_template(
        "login.html", oidc=state.oidc is not None, passwords=state.passwords is not None,
        failed=failed, user=user, next=target,
    )  # fmt: skip
    return Response(html, 401 if failed else 200, HTML)


def login(lang: str) -> Any:
    state = web()
    if not state.login_required:
        return redirect(f"/{lang}/")
    if request.method == "GET":
        return _login_page(failed=False, target=local_path(request.args.get("next"), f"/{lang}/"))
    if not same_token(request.form.get("csrf"), session.get("csrf")):
        abort(403)
    passwords = state.passwords
    if passwords is None:
        abort(405)
    target = local_path(request.form.get("next"), f"/{lang}/")
    user = request.form.get("user", "").strip()[:128]
    password = request.form.get("password", "")[:1024]
    address = request.remote_addr or "-"
    if passwords.throttled(user, address):
        log.warning("web.login_throttled", user=user, address=address)
        return error_page(429)
    if not user or not passwords.verify(user, password, address):
        log.warning("web.login_failed", method="password", user=user, address=address)
        return _login_page(failed=True, user=user, target=target)
    return redirect(_start_session(user, "password", target), 303)


def oidc_login(lang: str) -> Any:
    state = web()
    if state.oidc is None or not state.login_required:
        abort(404)
    # Where to go afterwards: kept in the session across the provider's round trip.
    session["next"] = local_path(request.args.get("next"), f"/{lang}/")
    callback = (
        f"{state.public}login/oidc/callback"
        if state.public
        else url_for("oidc_callback", _external=True)
    )
    return state.oauth.oidc.authorize_redirect(callback)


def oidc_callback() -> Any:
    """The provider sends the browser back here with a code: Authlib checks the state,
    exchanges the code (with the PKCE verifier) and verifies the ID token."""
    from authlib.integrations.base_client.errors import OAuthError
    from joserfc.errors import JoseError

    state = web()
    oidc = state.oidc
    if oidc is None or not state.login_required:
        abort(404)
    try:
        token = state.oauth.oidc.authorize_access_token(claims_options=oidc.claims_options())
    except (OAuthError, JoseError, ValueError, KeyError) as exc:
        log.warning("web.login_refused", method="oidc", reason=type(exc).__name__)
        return _refused()
    claims = dict(token.get("userinfo") or {})
    if not claims:
        log.warning("web.login_refused", method="oidc", reason="no ID token")
        return _refused()
    if not oidc.admits(claims):
        log.warning("web.login_refused", method="oidc", reason="not allowed",
                    subject=claims.get("sub"))  # fmt: skip
        return _refused()
    user = str(claims.get("email") or claims["sub"])
    return redirect(_start_session(user, "oidc", session.get("next")), 303)


def _refused() -> Response:
    return error_page(403, title="login_refused", text="login_intro")


def logout() -> Any:
    if not same_token(request.form.get("csrf"), session.get("csrf")):
        abort(403)
    lang = request.form.get("lang") if request.form.get("lang") in ("sv", "en") else "sv"
    log.info("web.logout", user=session.get("user"))
    session.clear()
    return redirect(f"/{lang}/login?out=1", 303)
