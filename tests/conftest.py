"""Shared pytest setup. The broker and PostgreSQL fixtures live in their own plugin modules."""

pytest_plugins = ["tests.broker_fixture", "tests.postgres_fixture"]
