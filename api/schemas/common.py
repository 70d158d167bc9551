"""What every response model shares: the base class and the two ways a time is written."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, PlainSerializer, WithJsonSchema


class Public(BaseModel):
    """A response body. A key the route builds but the model does not declare is an error
    (a 500 in the tests), not a field that silently disappears from the response; and the
    spec says ``additionalProperties: false``, so clients may rely on the list."""

    model_config = ConfigDict(extra="forbid")


def _isoformat(value: datetime) -> str:
    return value.isoformat()


# A time as ``datetime.isoformat`` writes it ("+00:00", not pydantic's "Z"): what the views
# that went through ``jsonable_encoder`` have always sent, kept byte for byte.
IsoDatetime = Annotated[
    datetime,
    PlainSerializer(_isoformat, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
