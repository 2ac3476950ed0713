"""Keeping secrets out of what council prints: URL passwords masked, known secrets scrubbed.

A secret is never shown: a ``SecretStr`` field prints as ``***``, a password inside
a URL (``postgresql://user:***@host/db``, ``redis://:***@host:6379/0``, a
``?password=`` query parameter) is masked, and every text printed is scrubbed of
the secrets the settings hold as a second line of defence. ``council config show``,
``council doctor`` and the settings error message use it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from pydantic import SecretBytes, SecretStr

if TYPE_CHECKING:
    from workflow.settings import Settings

#: What a secret prints as.
MASK = "***"
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
        from workflow.settings import raw_sources

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
