"""The effective settings as an operator may see them: each value, where it came from, no secret.

``council config show`` prints :func:`describe`; ``council doctor`` and the
settings error message use :class:`Redactor`. A secret is never shown: a
``SecretStr`` field prints as ``***``, a password inside a URL
(``postgresql://user:***@host/db``, ``redis://:***@host:6379/0``, a
``?password=`` query parameter) is masked, and every text printed is scrubbed
of the secrets the settings hold as a second line of defence.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from pydantic import SecretBytes, SecretStr

if TYPE_CHECKING:
    from pydantic import ValidationError

    from workflow.settings import Settings

#: What a secret prints as.
MASK = "***"
#: Where a value came from.
DEFAULT, ENVIRONMENT, TOML = "default", "environment", "council.toml"
#: Field names that hold a secret even when typed as a plain string.
_SECRET_NAME = re.compile(r"password|secret|token|api_key", re.IGNORECASE)
#: ``scheme://user:password@`` (the user may be empty; the password runs to the last @).
_URL_PASSWORD = re.compile(
    r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*://[^:/?#@\s]*:)(?P<password>[^\s]*)@(?=[^@\s]*(\s|$))"
)
#: ``password=...`` in a URL's query string or a libpq connection string.
_QUERY_PASSWORD = re.compile(r"(?P<head>\bpassword=)(?P<password>[^&\s]*)", re.IGNORECASE)
#: Secrets shorter than this are not scrubbed from free text (they would garble it).
_SCRUB_MIN = 4


def mask_url(text: str) -> str:
    """``text`` with any password inside a URL (userinfo or query) replaced by ``***``."""
    text = _URL_PASSWORD.sub(lambda m: f"{m['head']}{MASK}@", text)
    return _QUERY_PASSWORD.sub(lambda m: f"{m['head']}{MASK}", text)


def url_passwords(text: str) -> list[str]:
    """The passwords written inside URLs in ``text`` (as written and percent-decoded)."""
    found = [m["password"] for m in _URL_PASSWORD.finditer(text)]
    found += [m["password"] for m in _QUERY_PASSWORD.finditer(text)]
    return [variant for value in found if value for variant in {value, unquote(value)}]


def is_secret_field(name: str) -> bool:
    """True for a settings field whose value must never be shown."""
    from workflow.settings import Settings

    field = Settings.model_fields.get(name)
    annotation = repr(field.annotation) if field is not None else ""
    return "Secret" in annotation or bool(_SECRET_NAME.search(name))


class Redactor:
    """Scrubs known secrets (and URL passwords) out of any text before it is printed."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets = sorted({s for s in secrets if len(s) >= _SCRUB_MIN}, key=len, reverse=True)

    @classmethod
    def for_values(cls, values: Iterable[tuple[str, Any]]) -> Redactor:
        """A redactor for settings values given as (field name, value) pairs."""
        secrets: list[str] = []
        for name, value in values:
            for text in _texts(value):
                if is_secret_field(name):
                    secrets.append(text)
                secrets.extend(url_passwords(text))
        return cls(secrets)

    @classmethod
    def for_settings(cls, settings: Settings) -> Redactor:
        return cls.for_values(
            (name, getattr(settings, name)) for name in type(settings).model_fields
        )

    @classmethod
    def for_sources(cls) -> Redactor:
        """A redactor from the raw environment and council.toml (when Settings did not build)."""
        values: list[tuple[str, Any]] = []
        for source in raw_sources().values():
            values.extend(source.items())
        return cls.for_values(values)

    def __call__(self, text: str) -> str:
        text = mask_url(text)
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        return text


def _texts(value: Any) -> list[str]:
    """Every string inside a settings value (secrets unwrapped, lists and dicts walked)."""
    if isinstance(value, SecretStr):
        return [value.get_secret_value()]
    if isinstance(value, SecretBytes):
        return [value.get_secret_value().decode(errors="replace")]
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [t for item in value.values() for t in _texts(item)]
    if isinstance(value, list | tuple | set):
        return [t for item in value for t in _texts(item)]
    return []


def raw_sources() -> dict[str, dict[str, Any]]:
    """The values each source gives, by field name: the environment, then council.toml."""
    from pydantic_settings import EnvSettingsSource, TomlConfigSettingsSource

    from workflow.settings import Settings

    sources: dict[str, dict[str, Any]] = {ENVIRONMENT: dict(EnvSettingsSource(Settings)())}
    try:
        sources[TOML] = dict(TomlConfigSettingsSource(Settings)())
    except (OSError, ValueError):  # unreadable or not TOML: Settings() reports it
        sources[TOML] = {}
    return sources


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
        from workflow.embedded import EmbeddedRedis

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
