"""Production hardening joined to the app in one `install(app)`: API keys, rate limits, metrics and
access logs, traces, graceful shutdown, CORS and security headers (see `install`)."""
