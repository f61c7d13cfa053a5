"""How every `HALO_*` setting is read: one pydantic-settings model per concern, each built one
way, by `load()`.

The precedence is the one `dagster dev` (and `dg dev`) gives the code location: it loads the
`.env` of the directory it starts in over its own environment, blanks included. So `load()`
reads the project's `.env` over the process environment, and a blank value means unset; what a
Dagster resource or a command sets explicitly comes first. The command line and the Dagster
runs therefore see the same warehouse, HaloITSM and policy. Plain Python, no Dagster.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar, Self

from pydantic import ValidationError, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

ENV_FILE: Path | None = Path(".env")
"""The `.env` that `load()` reads, relative to the working directory as `dagster dev` reads it;
None reads none (the test suite, and the demo, which brings its own HaloITSM)."""


class SettingsError(ValueError):
    """A `HALO_*` setting cannot be used; the message names it and says how to write it."""


class FromEnvironment(BaseSettings):
    """A concern's `HALO_*` variables (the field names, upper-cased, after `HALO_`)."""

    model_config = SettingsConfigDict(
        env_prefix="HALO_", env_file_encoding="utf-8", extra="ignore", frozen=True
    )
    error: ClassVar[type[Exception]] = SettingsError
    """What `load()` raises for a setting that cannot be used."""
    unset_hint: ClassVar[str] = "set it in the environment or in .env (see .env.example)."

    @model_validator(mode="before")
    @classmethod
    def _blank_is_unset(cls, values: Any) -> Any:
        # On the whole input, before any field's own validator: `HALO_TICKET_FIELDS=`, as
        # .env.example writes it, is unset, not a JSON document to parse.
        if not isinstance(values, dict):
            return values
        return {k: v for k, v in values.items() if not (isinstance(v, str) and not v.strip())}

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, dotenv_settings, env_settings

    @classmethod
    def load(cls, **given: Any) -> Self:
        """The settings as this process sees them: `given` (None leaves a setting to the
        variables), then `.env`, then the environment; an unusable one raises `error`, naming
        the variable."""
        try:
            return cls(
                _env_file=ENV_FILE,  # type: ignore[call-arg]
                **{name: value for name, value in given.items() if value is not None},
            )
        except ValidationError as invalid:
            raise cls.error(cls.explain(invalid)) from None

    @classmethod
    def variable(cls, field: str) -> str:
        return f"{cls.model_config.get('env_prefix', '')}{field}".upper()

    @classmethod
    def explain(cls, invalid: ValidationError) -> str:
        """A validation error in words: the variables not set, else each problem on its own."""
        errors = invalid.errors()
        missing = [cls.variable(str(e["loc"][0])) for e in errors if e["type"] == "missing"]
        if missing:
            return f"{', '.join(missing)} not set: {cls.unset_hint}"
        problems = []
        for error in errors:
            message = str(error["msg"]).removeprefix("Value error, ")
            name = cls.variable(str(error["loc"][0])) if error["loc"] else ""
            if name and name not in message:
                got = str(error.get("input"))[:40]
                message = f"{name} must be {_expected(error)}, got {got!r}: {message}"
            problems.append(message)
        return "; ".join(problems)


def _expected(error: Any) -> str:
    kind = str(error["type"])
    if kind.startswith(("int", "float", "greater_than", "less_than")):
        return "a number in range"
    if kind.startswith("bool"):
        return "true or false"
    return "valid"


def json_object(value: Any, name: str, example: str) -> dict[str, Any]:
    """A setting written as a JSON object, refused in one line that shows how to write it."""
    if not isinstance(value, str):
        return value
    try:
        parsed = json.loads(value)
    except ValueError as error:
        raise SettingsError(f"{name} is not valid JSON ({error}); write an object such as "
                            f"{example}.") from None  # fmt: skip
    if not isinstance(parsed, dict):
        raise SettingsError(f"{name} must be a JSON object such as {example}, "
                            f"not a {type(parsed).__name__}.")  # fmt: skip
    return parsed
