"""Conversation storage: SQLAlchemy 2 (async, Core) on SQLite or Postgres, schema by Alembic migrations."""
