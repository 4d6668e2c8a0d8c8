"""Column helpers shared by the ORM models (the schema itself lives in the alembic migrations)."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import DateTime, text
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column


def uuid_pk() -> Mapped[uuid.UUID]:
    return mapped_column(UUID(as_uuid=True), primary_key=True, server_default=text("gen_random_uuid()"))


def created_at() -> Mapped[dt.datetime]:
    return mapped_column(DateTime(timezone=True), server_default=text("now()"), nullable=False)


def updated_at() -> Mapped[dt.datetime]:
    return mapped_column(DateTime(timezone=True), server_default=text("now()"), nullable=False)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
