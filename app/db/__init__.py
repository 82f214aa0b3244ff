"""Metadata and results: SQLAlchemy 2 models in SQLite (default) or PostgreSQL."""
