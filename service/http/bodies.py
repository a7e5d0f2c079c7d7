"""Request bodies as every front door reads them: the base model of a JSON body."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, SecretStr, field_validator

from service.inputs import text_problem


class RequestModel(BaseModel):
    """Every request body: unknown fields refused, and no text in any field (a list's items and a secret's value
    too) holding a NUL or a lone surrogate, which no name, profile or password may hold and PostgreSQL cannot
    store (pydantic itself refuses a lone surrogate only in JSON it parses, not in a value it is handed)."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _text_is_text(cls, value: Any) -> Any:
        for item in value if isinstance(value, list) else [value]:
            text = item.get_secret_value() if isinstance(item, SecretStr) else item
            if isinstance(text, str) and (problem := text_problem(text)):
                raise ValueError(problem)
        return value
