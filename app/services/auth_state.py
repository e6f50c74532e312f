"""Whether API-key auth is on at start-up: as soon as any key exists, in settings or in the database.

The database part joins when key storage exists (`app.auth`); until then only static keys count.
"""

from __future__ import annotations

from app.core.config import Settings


def auth_enabled_at_start(settings: Settings) -> bool:
    if settings.api_keys:
        return True
    from app.core.plugins import optional_import

    store = optional_import("app.auth.store")
    return bool(store and store.database_has_keys(settings))
