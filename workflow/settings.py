"""One settings object, read from the environment (``COUNCIL_*``) and ``council.toml``.

Nothing reads the environment at import time: build :class:`Settings` once per
process (the CLI does) and pass it on.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from pydantic import Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from workflow.calendar import Calendar, DuePolicy

#: Where council keeps its embedded database, broker and mail by default.
DEFAULT_VAR = Path("var")


class Settings(BaseSettings):
    """Every setting, with its default; see docs/configuration.md."""

    model_config = SettingsConfigDict(
        env_prefix="COUNCIL_", toml_file="council.toml", extra="forbid", frozen=True
    )

    var_dir: Path = Field(DEFAULT_VAR, description="Directory for embedded state.")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; default: a SQLite file under var_dir."
    )
    definitions: Path = Field(Path("definitions"), description="Definitions directory.")
    actor: str | None = Field(None, description="Who acts when --as is not given.")
    timezone: str = Field("Europe/Stockholm", description="Zone for dates shown and --now.")
    extra_days_off: list[dt.date] = Field(
        default_factory=list, description="Closure days on top of Swedish holidays and eves."
    )
    due_policy: DuePolicy = Field(
        DuePolicy.PREVIOUS, description="Where a due date on a day off moves."
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
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.var_dir / 'council.db'}"

    def calendar(self) -> Calendar:
        return Calendar(extra_days_off=self.extra_days_off, due_policy=self.due_policy)
