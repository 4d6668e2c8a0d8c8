"""The README's table of cloud environment variables, generated from the settings classes so the
two cannot drift apart (`python -m studyspot.settings_doc` prints it; a test compares)."""

from __future__ import annotations

from pydantic_settings import BaseSettings


def _settings_classes() -> list[tuple[str, type[BaseSettings]]]:
    from cloud.billing.config import BillingSettings
    from cloud.config import CloudSettings
    from cloud.notifications.config import NotificationSettings
    from cloud.payments.config import PaymentSettings
    from cloud.payments.invoicing import InvoiceSettings

    return [
        ("service", CloudSettings),
        ("payments", PaymentSettings),
        ("invoices", InvoiceSettings),
        ("billing", BillingSettings),
        ("notifications", NotificationSettings),
    ]


def environment_variables() -> list[tuple[str, str, str, str]]:
    """(variable, group, default, description) for every cloud setting."""
    rows = []
    for group, settings_class in _settings_classes():
        prefix = str(settings_class.model_config.get("env_prefix") or "")
        for name, field in settings_class.model_fields.items():
            default = "" if field.is_required() else repr(field.get_default(call_default_factory=True))
            if field.default is None and field.default_factory is None:
                default = "unset"
            rows.append(((prefix + name).upper(), group, default, field.description or ""))
    return rows


def markdown_table() -> str:
    lines = ["| variable | part | default | meaning |", "|---|---|---|---|"]
    for variable, group, default, description in environment_variables():
        lines.append(f"| `{variable}` | {group} | `{default}` | {description} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown_table())
