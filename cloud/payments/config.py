"""Gateway settings from the environment, and the adapters built from them.

A provider is enabled when its API key is set. Secrets lists are comma-separated so a rotation can
list the old and the new secret side by side.
"""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from cloud.payments.gateways import (
    PaymentGateway,
    RazorpayConfig,
    RazorpayGateway,
    StripeConfig,
    StripeGateway,
)
from cloud.payments.gateways.razorpay import DEFAULT_BASE_URL as RAZORPAY_API
from cloud.payments.gateways.stripe import DEFAULT_BASE_URL as STRIPE_API
from cloud.payments.schemas import Provider


class PaymentSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", case_sensitive=False)

    razorpay_key_id: str | None = Field(default=None, description="Razorpay API key id (`rzp_...`).")
    razorpay_key_secret: SecretStr | None = Field(default=None, description="Razorpay API key secret.")
    razorpay_webhook_secrets: SecretStr | None = Field(
        default=None, description="Razorpay webhook secret(s), comma-separated."
    )
    razorpay_base_url: str = Field(
        default=RAZORPAY_API, description="Razorpay API base (a fake in the demo)."
    )
    stripe_secret_key: SecretStr | None = Field(default=None, description="Stripe secret key (`sk_...`).")
    stripe_webhook_secrets: SecretStr | None = Field(
        default=None, description="Stripe endpoint secret(s) `whsec_...`, comma-separated."
    )
    stripe_base_url: str = Field(default=STRIPE_API, description="Stripe API base (a fake in the demo).")
    payment_timeout_seconds: float = Field(default=10.0, gt=0, description="HTTP timeout towards gateways.")


def _split(secret: SecretStr | None) -> tuple[str, ...]:
    if secret is None:
        return ()
    return tuple(part.strip() for part in secret.get_secret_value().split(",") if part.strip())


def build_gateways(settings: PaymentSettings) -> dict[Provider, PaymentGateway]:
    """One adapter per configured provider. Call `aclose()` on each at shutdown."""
    gateways: dict[Provider, PaymentGateway] = {}
    if settings.razorpay_key_id and settings.razorpay_key_secret:
        gateways["razorpay"] = RazorpayGateway(
            RazorpayConfig(
                key_id=settings.razorpay_key_id,
                key_secret=settings.razorpay_key_secret.get_secret_value(),
                webhook_secrets=_split(settings.razorpay_webhook_secrets),
                base_url=settings.razorpay_base_url,
                timeout_s=settings.payment_timeout_seconds,
            )
        )
    if settings.stripe_secret_key:
        gateways["stripe"] = StripeGateway(
            StripeConfig(
                secret_key=settings.stripe_secret_key.get_secret_value(),
                webhook_secrets=_split(settings.stripe_webhook_secrets),
                base_url=settings.stripe_base_url,
                timeout_s=settings.payment_timeout_seconds,
            )
        )
    return gateways
