"""Local fakes of Razorpay and Stripe that speak their HTTP protocol and sign webhooks their way."""
