"""Gateway adapters behind one interface (`PaymentGateway`)."""

from cloud.payments.gateways.base import (
    CheckoutRejected,
    GatewayAuthError,
    GatewayError,
    GatewayRequestError,
    GatewayUnavailable,
    InvalidPaymentRequest,
    PaymentError,
    PaymentGateway,
    WebhookRejected,
)
from cloud.payments.gateways.razorpay import RazorpayConfig, RazorpayGateway
from cloud.payments.gateways.stripe import StripeConfig, StripeGateway

__all__ = [
    "CheckoutRejected",
    "GatewayAuthError",
    "GatewayError",
    "GatewayRequestError",
    "GatewayUnavailable",
    "InvalidPaymentRequest",
    "PaymentError",
    "PaymentGateway",
    "RazorpayConfig",
    "RazorpayGateway",
    "StripeConfig",
    "StripeGateway",
    "WebhookRejected",
]
