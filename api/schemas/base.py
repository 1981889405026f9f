"""Base of the response models: answers built by the library pass through whole (``extra``
allowed), the declared fields are what OpenAPI documents."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Out(BaseModel):
    model_config = ConfigDict(extra="allow")
