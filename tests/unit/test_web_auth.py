"""The web view's login rules, without a server: loopback, the password file, the
throttle, who an ID token admits, where a login may return to, and the start-up refusals."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main
from web.auth import (
    OidcConfig,
    Passwords,
    Throttle,
    hash_password,
    is_loopback,
    local_path,
    oidc_config,
    read_password_file,
)
from workflow.errors import InvalidInput
from workflow.settings import Settings


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.8.9.1", True), ("::1", True), ("[::1]", True),
     ("localhost", True), ("0.0.0.0", False), ("::", False), ("192.0.2.7", False),
     ("10.200.0.1", False)],
)  # fmt: skip
def test_loopback_is_decided_by_the_bound_address(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_the_password_file_and_its_checks(tmp_path: Path) -> None:
    path = tmp_path / "passwords"
    path.write_text(f"# comment\n\nsara:{hash_password('ett bra lösenord')}\n")
    passwords = Passwords(path)
    assert passwords.verify("sara", "ett bra lösenord", "10.0.0.1")
    assert not passwords.verify("sara", "fel", "10.0.0.1")
    assert not passwords.verify("nobody", "ett bra lösenord", "10.0.0.1")
    path.write_text("sara:plaintext\n")
    with pytest.raises(InvalidInput, match=r"passwords:1: expected user:\$argon2id"):
        read_password_file(path)
    with pytest.raises(InvalidInput, match="cannot read"):
        read_password_file(tmp_path / "missing")


def test_the_throttle_counts_failures_per_key() -> None:
    throttle = Throttle(limit=2)
    throttle.failed("sara")
    assert not throttle.blocked("sara")
    throttle.failed("sara")
    assert throttle.blocked("sara")
    assert not throttle.blocked("anders")
    assert not Throttle(limit=1, window=0.0).blocked("sara")


def test_who_an_id_token_admits() -> None:
    config = OidcConfig(issuer="https://idp.example", client_id="c", client_secret="s",
                        allowed_emails=frozenset({"sara@kommun.example"}),
                        allowed_groups=frozenset({"samordnare"}), groups_claim="roles")  # fmt: skip
    assert config.admits({"email": "Sara@Kommun.example"})
    assert not config.admits({"email": "sara@kommun.example", "email_verified": False})
    assert config.admits({"email": "x@y.example", "roles": ["samordnare", "other"]})
    assert config.admits({"roles": "samordnare"})
    assert not config.admits({"email": "x@y.example", "groups": ["samordnare"]})
    assert not config.admits({})


@pytest.mark.parametrize(
    ("target", "goes"),
    [("/sv/backlog/", "/sv/backlog/"), ("//evil.example/", "/sv/"),
     ("https://evil.example/", "/sv/"), ("/\\evil.example", "/sv/"), (None, "/sv/"),
     ("sv/", "/sv/")],
)  # fmt: skip
def test_a_login_returns_to_this_site_only(target: str | None, goes: str) -> None:
    assert local_path(target, "/sv/") == goes


def test_oidc_needs_a_client_and_a_rule_for_who_may_log_in(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("s3cret\n")
    base = {"web_oidc_issuer": "https://idp.example/realms/council"}
    with pytest.raises(InvalidInput, match="COUNCIL_WEB_OIDC_CLIENT_ID"):
        oidc_config(Settings(**base))
    with_client = base | {"web_oidc_client_id": "c", "web_oidc_client_secret_file": secret}
    with pytest.raises(InvalidInput, match="ALLOWED_EMAILS or COUNCIL_WEB_OIDC_ALLOWED_GROUPS"):
        oidc_config(Settings(**with_client))
    found = oidc_config(Settings(**with_client, web_oidc_allowed_groups=["g"]))
    assert found is not None
    assert found.client_secret == "s3cret"
    assert oidc_config(Settings()) is None


def test_an_issuer_must_be_https_or_on_loopback() -> None:
    from pydantic import ValidationError

    assert Settings(web_oidc_issuer="http://127.0.0.1:5000").web_oidc_issuer
    with pytest.raises(ValidationError):
        Settings(web_oidc_issuer="http://idp.example/")


def test_hash_password_prints_a_line_for_the_file(tmp_path: Path) -> None:
    """`council serve --hash-password USER` reads the password from stdin (no terminal
    here) and prints `USER:$argon2id$...`, which the password file accepts."""
    result = CliRunner().invoke(main, ["serve", "--hash-password", "sara"],
                                input="ett bra lösenord\n")  # fmt: skip
    assert result.exit_code == 0, result.output
    line = result.output.strip()
    assert line.startswith("sara:$argon2id$")
    assert "ett bra lösenord" not in line
    path = tmp_path / "passwords"
    path.write_text(line + "\n")
    assert Passwords(path).verify("sara", "ett bra lösenord", "-")
    short = CliRunner().invoke(main, ["serve", "--hash-password", "sara"], input="kort\n")
    assert short.exit_code == 2
    bad = CliRunner().invoke(main, ["serve", "--hash-password", "a:b"], input="x" * 10 + "\n")
    assert bad.exit_code == 2
