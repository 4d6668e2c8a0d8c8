"""The owner and platform-admin dashboard served under `/dashboard`.

Pages are server-rendered Jinja shells (public: they hold no data); small same-origin scripts log in
against the cloud API, keep the token pair in sessionStorage and draw every panel from the
authenticated JSON API, charts as inline SVG. Nothing loads from a CDN and nothing runs inline, so
the app-wide `Content-Security-Policy: default-src 'self'` holds here too.
"""
