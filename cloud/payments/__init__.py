"""Payments: gateway adapters (Razorpay, Stripe), local fake gateways, GST invoice PDFs.

What the booking/payment flow calls (all amounts integer minor units + ISO currency):

- `config.build_gateways(PaymentSettings()) -> {"razorpay": PaymentGateway, "stripe": ...}`
- `await gateway.create_order(amount_minor, currency, receipt, notes, idempotency_key) -> GatewayOrder`
- `await gateway.verify_checkout(CheckoutProof(...)) -> CheckoutVerification` (a hint; webhooks decide)
- `await gateway.refund(payment_id, amount_minor, reason, idempotency_key) -> GatewayRefund`
- `gateway.parse_webhook(raw_body, headers, now) -> WebhookEvent` or `WebhookRejected` (answer 400)
- `invoice_pdf.render_invoice_pdf(InvoiceData) -> bytes`; `gst.compute_totals(InvoiceData)`
"""
