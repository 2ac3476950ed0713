"""Settings that are more than values: the reply secret an embedded installation makes."""

from __future__ import annotations

import multiprocessing
import os
import stat
from pathlib import Path

import pytest
from pydantic import SecretStr

from workflow.settings import Settings


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No COUNCIL_* variables and no council.toml: only what a test passes."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("COUNCIL_"):
            monkeypatch.delenv(name, raising=False)
    return tmp_path


def test_an_embedded_installation_makes_its_reply_secret_once(clean_env: Path) -> None:
    """With nothing configured, the first use makes var/reply-secret (0600, 43 characters),
    and every later use, by any Settings, reads the same one."""
    var = clean_env / "var"
    settings = Settings(var_dir=var)
    assert settings.embedded
    first = settings.reply_key()
    assert first is not None
    secret_file = var / "reply-secret"
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert len(first.get_secret_value()) >= 32
    assert Settings(var_dir=var).reply_key() == first
    assert first.get_secret_value() not in repr(settings)


def test_a_configured_secret_wins_and_production_needs_one(clean_env: Path) -> None:
    """A configured reply_secret is used as it is; an installation with a database or a
    broker configured makes none: replies are off until one is set."""
    configured = SecretStr("x" * 40)
    assert Settings(var_dir=clean_env / "a", reply_secret=configured).reply_key() == configured
    production = Settings(var_dir=clean_env / "b", database_url="postgresql://db/council")
    assert not production.embedded
    assert production.reply_key() is None
    assert not (clean_env / "b" / "reply-secret").exists()


def _make(var: str, out: str) -> None:
    key = Settings(var_dir=Path(var)).reply_key()
    assert key is not None
    Path(out).write_text(key.get_secret_value())


def test_two_processes_starting_at_once_agree_on_one_secret(clean_env: Path) -> None:
    """Four processes making the secret at the same moment end with one and the same."""
    var = clean_env / "var"
    context = multiprocessing.get_context("spawn")
    outs = [clean_env / f"out-{n}" for n in range(4)]
    workers = [context.Process(target=_make, args=(str(var), str(o))) for o in outs]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert [w.exitcode for w in workers] == [0] * 4
    assert len({o.read_text() for o in outs}) == 1
    assert (var / "reply-secret").read_text().strip() == outs[0].read_text()


def test_mail_of_an_embedded_installation_can_be_answered(clean_env: Path) -> None:
    """On one machine with nothing configured, a prompt's Reply-To is signed with the
    secret made in var/: owners can answer out of the box."""
    import datetime as dt
    from types import SimpleNamespace

    from workflow.core.specs import Language
    from workflow.mail.compose import Prompt
    from workflow.mail.delivery import build_message
    from workflow.replies import tokens

    settings = Settings(var_dir=clean_env / "var", mail_from="council@kommun.example")
    prompt = Prompt(
        language=Language.EN, to_name="Amir Hassan", to_email="amir.hassan@kommun.example",
        assignment="a", assignment_title="A", reference="KS 1", point="a/1", point_title="P",
        step="s", step_title="S", coordinator_name="Sara Nilsson",
        coordinator_email="sara.nilsson@kommun.example", reply_event=42,
    )  # fmt: skip
    row = SimpleNamespace(
        key="prompt:42:amir.hassan", kind="prompt",
        payload={"prompt": prompt.model_dump(mode="json"),
                 "created": dt.datetime(2023, 1, 9, 9, tzinfo=dt.UTC).isoformat()},
    )  # fmt: skip
    message = build_message(row, settings)
    key = settings.reply_key()
    assert key is not None
    assert message["Reply-To"] == tokens.address("council@kommun.example", key, 42)


def test_a_damaged_secret_file_is_refused_not_used(clean_env: Path) -> None:
    """An empty (or truncated) var/reply-secret is never an HMAC key: one clear error."""
    from workflow.errors import InvalidInput

    var = clean_env / "damaged"
    var.mkdir()
    (var / "reply-secret").write_text("short\n")
    with pytest.raises(InvalidInput, match="is damaged"):
        Settings(var_dir=var).reply_key()
