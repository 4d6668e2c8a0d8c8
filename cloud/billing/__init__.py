"""Billing: monthly dues of subscriptions (renewal, reminders, suspension, reinstatement),
per-tenant GST settings and credit notes for refunds."""
