"""The HTTPS webhook: the ASGI app and its handlers, TLS reload, metrics and logging."""
