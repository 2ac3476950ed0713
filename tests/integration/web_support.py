"""What the web view's tests share: a database with the bundled history, a real waitress
server on a thread, this machine's own non-loopback address, and a small OpenID Connect
provider (discovery, keys, authorize, token) made in the test, on loopback."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from scripts.seed_history import A, at
from tests.integration.bundled_history import play_all
from tests.integration.conftest import STOCKHOLM
from tests.support import DEFINITIONS, missing_server
from web.app import create_app
from web.server import make_server, url_of
from workflow.core.actions import AddNote
from workflow.core.calendar import Calendar
from workflow.definitions.loader import load
from workflow.engine import Engine
from workflow.settings import Settings
from workflow.store import connect, migrate

INTERNAL_NOTE = "Internt: vänta med utskicket tills rektorerna fått informationen."
PUBLIC_NOTE = "Broschyrerna delas ut på alla skolor under våren."


def history(engine: Engine) -> None:
    """The bundled history, and a public and an internal note on the seed's point 3."""
    play_all(engine)
    point = engine.definitions.assignment(A).point(3)
    engine.act(point, AddNote(actor="sara.nilsson", text=PUBLIC_NOTE, public=True),
               now=at("2025-01-20T10:00"))  # fmt: skip
    engine.act(point, AddNote(actor="sara.nilsson", text=INTERNAL_NOTE),
               now=at("2025-01-21T10:00"))  # fmt: skip


def sqlite_with_history(directory: Path) -> str:
    """A migrated SQLite database under ``directory`` holding :func:`history`."""
    url = f"sqlite:///{directory / 'council.db'}"
    db = connect(url)
    migrate.upgrade(db)
    history(Engine(db=db, definitions=load([DEFINITIONS]), calendar=Calendar(),
                   timezone=STOCKHOLM))  # fmt: skip
    db.dispose()
    return url


def read_only_engine(url: str) -> Engine:
    """The engine the web view reads through: the database opened read-only."""
    return Engine(db=connect(url, create=False, read_only=True), definitions=load([DEFINITIONS]),
                  calendar=Calendar(), timezone=STOCKHOLM)  # fmt: skip


def wait_until_up(url: str, timeout: float = 10.0) -> None:
    """Poll until the server answers (any status): its readiness, not a fixed sleep."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@contextmanager
def running(app: Any, host: str = "127.0.0.1") -> Iterator[str]:
    """``app`` served by waitress on ``host`` (a free port) in a thread; its base URL."""
    server = make_server(app, host, 0)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = url_of(server)
    wait_until_up(base + "healthz")
    try:
        yield base
    finally:
        stop(server, thread)


def stop(server: Any, thread: threading.Thread) -> None:
    """Close the listener and every open connection in the server's own loop thread, so
    the loop ends (its map empties) and no socket is left to the garbage collector."""

    def close_all() -> None:
        for channel in list(server._map.values()):
            channel.close()

    try:
        server.trigger.pull_trigger(close_all)
    except OSError:  # the loop closed its trigger (its pipe gave POLLNVAL): close from here;
        close_all()  # the loop sees its map empty within its poll timeout and ends
    thread.join(timeout=10)
    server.task_dispatcher.shutdown()


def serve_web(url: str, host: str = "127.0.0.1", **settings: Any) -> Any:
    """``running(app)`` for the web view over ``url``, bound to ``host``, with ``settings``."""
    engine = read_only_engine(url)
    app = create_app(Settings(**settings), engine, host=host, session_key="k" * 43)
    return running(app, host)


def own_address() -> str:
    """This machine's own non-loopback IPv4 address: reachable here without any network
    (the kernel routes it locally). None: the test cannot run (fails in CI)."""
    try:
        found = json.loads(subprocess.run(["ip", "-j", "-4", "addr", "show"], check=True,
                                          capture_output=True, text=True).stdout)  # fmt: skip
    except (OSError, subprocess.CalledProcessError, ValueError):
        found = []
    for link in found:
        for info in link.get("addr_info", []):
            if info.get("family") == "inet" and not info["local"].startswith("127."):
                return str(info["local"])
    missing_server("a non-loopback interface address (ip -4 addr)")
    raise AssertionError("unreachable")


# --- a test OpenID Connect provider -----------------------------------------------------


@dataclass
class Provider:
    """An OpenID Connect provider for one test: it logs in ``email`` at once (no login
    form) and signs ID tokens with an RSA key made here. ``tamper`` spoils the next
    tokens: ``audience``, ``signature``, ``nonce``, ``audience_with_azp``."""

    client_id: str = "council-web"
    client_secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    email: str = "sara.nilsson@kommun.example"
    groups: list[str] = field(default_factory=lambda: ["samordnare"])
    tamper: str | None = None
    issuer: str = ""
    #: What the token endpoint was asked, for the test to inspect.
    exchanges: list[dict[str, str]] = field(default_factory=list)
    _codes: dict[str, dict[str, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from joserfc.jwk import RSAKey

        self.key = RSAKey.generate_key(2048, parameters={"kid": "test-key", "use": "sig"})
        self.other_key = RSAKey.generate_key(2048, parameters={"kid": "test-key", "use": "sig"})

    def app(self) -> Any:
        from flask import Flask, abort, jsonify, redirect, request

        app = Flask("test-oidc-provider")

        @app.get("/.well-known/openid-configuration")
        def discovery() -> Any:
            return jsonify(
                issuer=self.issuer, authorization_endpoint=f"{self.issuer}/authorize",
                token_endpoint=f"{self.issuer}/token", jwks_uri=f"{self.issuer}/jwks",
                response_types_supported=["code"], subject_types_supported=["public"],
                id_token_signing_alg_values_supported=["RS256"],
                code_challenge_methods_supported=["S256"],
                token_endpoint_auth_methods_supported=["client_secret_basic"],
            )  # fmt: skip

        @app.get("/jwks")
        def jwks() -> Any:
            return jsonify(keys=[self.key.as_dict(private=False)])

        @app.get("/authorize")
        def authorize() -> Any:
            args = request.args
            if args.get("client_id") != self.client_id or args.get("response_type") != "code":
                abort(400)
            if args.get("code_challenge_method") != "S256" or not args.get("code_challenge"):
                abort(400)  # PKCE is required here
            if not args.get("nonce") or not args.get("state"):
                abort(400)
            code = secrets.token_urlsafe(16)
            self._codes[code] = dict(args)
            back = {"code": code, "state": args["state"]}
            return redirect(f"{args['redirect_uri']}?{urlencode(back)}")

        @app.post("/token")
        def token() -> Any:
            return self.exchange(request.form.to_dict(), request.authorization)

        return app

    def exchange(self, form: dict[str, str], auth: Any) -> Any:
        """The token endpoint: the client's secret, the code, its redirect URI and the PKCE
        verifier checked; an ID token carrying the login's nonce."""
        from flask import jsonify

        self.exchanges.append(form)
        sent = self._codes.pop(form.get("code", ""), None)
        if auth is None or (auth.username, auth.password) != (self.client_id, self.client_secret):
            return jsonify(error="invalid_client"), 401
        if sent is None or form.get("redirect_uri") != sent["redirect_uri"]:
            return jsonify(error="invalid_grant"), 400
        verifier = form.get("code_verifier", "").encode()
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier).digest()).rstrip(b"=")
        if challenge.decode() != sent["code_challenge"]:
            return jsonify(error="invalid_grant", error_description="PKCE"), 400
        return jsonify(access_token=secrets.token_urlsafe(16), token_type="Bearer",
                       expires_in=300, id_token=self.id_token(sent["nonce"]))  # fmt: skip

    def id_token(self, nonce: str) -> str:
        from joserfc import jwt

        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer, "sub": "user-4711", "aud": self.client_id, "iat": now,
            "exp": now + 300, "nonce": nonce, "email": self.email, "email_verified": True,
            "groups": self.groups,
        }  # fmt: skip
        key = self.key
        if self.tamper == "audience":
            claims["aud"] = "another-client"
        elif self.tamper == "audience_with_azp":  # azp names us, the audience does not
            claims.update(aud="another-client", azp=self.client_id)
        elif self.tamper == "nonce":
            claims["nonce"] = "a-nonce-from-another-login"
        elif self.tamper == "signature":
            key = self.other_key  # the same kid, another key
        return jwt.encode({"alg": "RS256", "kid": "test-key"}, claims, key)


@contextmanager
def oidc_provider() -> Iterator[Provider]:
    """A :class:`Provider` served on loopback for the test."""
    provider = Provider()
    app = provider.app()
    server = make_server(app, "127.0.0.1", 0)
    provider.issuer = url_of(server).rstrip("/")
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until_up(f"{provider.issuer}/.well-known/openid-configuration")
    try:
        yield provider
    finally:
        stop(server, thread)
