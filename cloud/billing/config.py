"""Billing settings from the environment (`BILLING_*`)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class BillingSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BILLING_", extra="ignore", case_sensitive=False)

    renewal_days_ahead: int = Field(
        default=5, ge=1, le=27, description="Days before a monthly period the renewal due is created."
    )
    reminder_days_before: int = Field(
        default=3, ge=1, le=27, description="Days before the due date the first dues reminder goes out."
    )
    grace_days: int = Field(
        default=3, ge=0, le=27, description="Days after the due date an unpaid subscription is suspended."
    )
    app_url: str = Field(
        default="http://localhost:8000", description="Base URL put in dues and invoice links of messages."
    )
