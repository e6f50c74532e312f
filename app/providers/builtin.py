"""Registers the built-in providers. Each module registers itself on import."""

from app.core.plugins import optional_import
from app.providers import local_provider  # noqa: F401

for _name in ("ollama", "gemini", "openai"):
    optional_import(f"app.providers.{_name}")
