"""Alembic migrations for pocketca (shipped with the package so `pocketca serve` can run them)."""
