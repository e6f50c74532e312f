"""The ASGI middleware of every concern, pure ASGI (no BaseHTTPMiddleware: it hides `http.disconnect`
from the app, so generation would go on after a client leaves, and it buffers streams).

`app.main.MIDDLEWARE` lists them in order, outermost first; each module here holds one."""
