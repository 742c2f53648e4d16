"""Shared pytest setup. The broker fixture lives in its own plugin module."""

pytest_plugins = ["tests.broker_fixture"]
