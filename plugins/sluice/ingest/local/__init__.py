"""The ``local`` driver: an Airbyte connector from PyPI, run in its own virtualenv through the Airbyte protocol."""
