"""Desk sales: cash/UPI walk-ins sold at the kiosk (often offline) reconciled when they arrive by sync."""
