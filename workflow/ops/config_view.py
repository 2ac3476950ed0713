"""`council config show`: the effective settings, each value, where it came from, no secret.

:func:`describe` gives one :class:`Row` per setting; secrets are masked by
:mod:`workflow.ops.redaction`. :func:`validation_message` turns invalid settings
into one line naming them, never their values.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import SecretBytes, SecretStr

from workflow.ops.redaction import MASK, Redactor, is_secret_field
from workflow.settings import DEFAULT, ENVIRONMENT, TOML, raw_sources

if TYPE_CHECKING:
    from pydantic import ValidationError

    from workflow.settings import Settings


def toml_path() -> Path | None:
    """The council.toml the settings read, if there is one."""
    from workflow.settings import Settings

    name = Settings.model_config.get("toml_file")
    if not isinstance(name, str | Path):
        return None
    path = Path(name).resolve()
    return path if path.is_file() else None


def env_name(field: str) -> str:
    from workflow.settings import Settings

    return f"{Settings.model_config.get('env_prefix', '')}{field}".upper()


@dataclass(frozen=True)
class Row:
    """One setting as shown: its value, the value in effect when it is derived, and its source."""

    name: str
    env: str
    value: Any  # JSON-ready, masked
    effective: Any  # JSON-ready, masked; equals value unless derived from others
    source: str
    secret: bool

    def as_json(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "effective": self.effective,
            "source": self.source,
            "env": self.env,
            "secret": self.secret,
        }


def describe(settings: Settings) -> list[Row]:
    """Every field of ``settings`` in declaration order, masked, with where it came from."""
    sources = raw_sources()
    redact = Redactor.for_settings(settings)
    rows = []
    for name in type(settings).model_fields:
        raw = getattr(settings, name)
        secret = is_secret_field(name)
        if name in sources[ENVIRONMENT]:
            source = ENVIRONMENT
        elif name in sources[TOML]:
            source = TOML
        else:
            source = DEFAULT
        value = _shown(raw, secret, redact)
        effective = _shown(_effective(settings, name, raw), secret, redact)
        rows.append(Row(name, env_name(name), value, effective, source, secret))
    return rows


def _effective(settings: Settings, name: str, raw: Any) -> Any:
    """The value in effect: for a setting left unset, what council derives instead."""
    if raw is not None:
        return raw
    if name == "broker_url":
        from workflow.ops.embedded import EmbeddedRedis

        return EmbeddedRedis(settings.var_dir / "redis").url
    if name == "mail_domain":
        return settings.message_id_domain
    derived = getattr(settings, f"effective_{name}", None)
    return derived


def _shown(value: Any, secret: bool, redact: Redactor) -> Any:
    """A JSON-ready, masked rendering of a settings value."""
    if value is None:
        return None
    if secret:
        return MASK
    return _plain(value, redact)


def _plain(value: Any, redact: Redactor) -> Any:
    if isinstance(value, SecretStr | SecretBytes):
        return MASK
    if isinstance(value, enum.Enum):
        return _plain(value.value, redact)
    if isinstance(value, bool | int | float):
        return value
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _plain(v, redact) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(item, redact) for item in value]
    return redact(str(value))


def text(value: Any) -> str:
    """A shown value as one line of a table."""
    if value is None:
        return "-"
    if isinstance(value, list):
        return ", ".join(text(item) for item in value) or "[]"
    if isinstance(value, dict):
        return ", ".join(f"{k}={text(v)}" for k, v in value.items()) or "{}"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def validation_message(exc: ValidationError) -> str:
    """A one-line summary of invalid settings: names and reasons, never the values given."""
    redact = Redactor.for_sources()
    sources = raw_sources()
    parts = []
    for error in exc.errors(include_input=False, include_url=False, include_context=False):
        name = ".".join(str(part) for part in error["loc"]) or "settings"
        top = str(error["loc"][0]) if error["loc"] else ""
        if top in sources[ENVIRONMENT]:
            where = f" ({env_name(top)})"
        elif top in sources[TOML]:
            where = " (council.toml)"
        else:
            where = ""
        reason = "unknown setting" if error["type"] == "extra_forbidden" else error["msg"]
        parts.append(f"{name}{where}: {reason}")
    return redact("invalid settings: " + "; ".join(parts))
