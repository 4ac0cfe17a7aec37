"""Typed settings base on pydantic.

Components declare their settings as subclasses of :class:`ToolkitSettings`; unknown keys are rejected and
every validation problem is reported at once, each naming the key and what was expected.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, ValidationError

from psc.common.errors import ToolkitError


class SettingsError(ToolkitError):
    """Settings failed validation; ``problems`` lists every problem found, not just the first."""

    def __init__(self, owner: str, problems: list[str]) -> None:
        lines = "\n  - ".join(problems)
        super().__init__(f"invalid {owner} settings ({len(problems)} problem(s)):\n  - {lines}", problems=problems)
        self.problems = problems


def describe_validation_error(error: ValidationError) -> list[str]:
    """One readable line per pydantic error: the dotted key, the message and the offending value."""
    problems = []
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]) or "<root>"
        value = item.get("input")
        shown = "" if item["type"] == "missing" else f" (got {value!r})"
        problems.append(f"{key}: {item['msg']}{shown}")
    return problems


class ToolkitSettings(BaseModel):
    """Immutable, strictly validated settings: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @classmethod
    def load(cls, values: Mapping[str, Any]) -> Self:
        """Validate ``values``, raising :class:`SettingsError` listing every problem at once."""
        try:
            return cls.model_validate(dict(values))
        except ValidationError as exc:
            raise SettingsError(cls.__name__, describe_validation_error(exc)) from None
