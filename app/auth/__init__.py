"""API keys: generation and hashing (`keys`), the database table and CLI (`store`, `cli`), the keys a
running service accepts (`keyring`) and the pure ASGI gate in front of the API (`middleware`)."""
