"""Recipient validation at the edge of the API: email addresses, E.164 phone numbers, device tokens."""

from __future__ import annotations

import re

import email_validator
import phonenumbers

from cloud.notifications.kinds import ChannelKind

_DEVICE_TOKEN = re.compile(r"^[A-Za-z0-9_:\-]{20,4096}$")


class InvalidRecipientError(ValueError):
    """The address cannot receive messages on that channel."""


def normalize_email(address: str) -> str:
    try:
        result = email_validator.validate_email(address, check_deliverability=False)
    except email_validator.EmailNotValidError as exc:
        raise InvalidRecipientError(f"invalid email address: {exc}") from exc
    return result.normalized


def normalize_phone(number: str, default_region: str = "IN") -> str:
    """Parse a number as typed (national or international) and return it in E.164."""
    try:
        parsed = phonenumbers.parse(number, default_region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidRecipientError(f"invalid phone number: {exc}") from exc
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidRecipientError(f"invalid phone number: {number!r} is not a valid number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def normalize_device_token(token: str) -> str:
    token = token.strip()
    if not _DEVICE_TOKEN.fullmatch(token):
        raise InvalidRecipientError("invalid push device token")
    return token


def normalize_recipient(channel: ChannelKind, recipient: str, default_region: str = "IN") -> str:
    if not isinstance(recipient, str) or not recipient.strip():
        raise InvalidRecipientError("recipient is empty")
    if channel is ChannelKind.EMAIL:
        return normalize_email(recipient)
    if channel in (ChannelKind.SMS, ChannelKind.WHATSAPP):
        return normalize_phone(recipient, default_region)
    if channel is ChannelKind.PUSH:
        return normalize_device_token(recipient)
    return recipient.strip()
