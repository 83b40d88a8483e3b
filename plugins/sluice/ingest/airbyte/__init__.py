"""Sluice's driver for an Airbyte server: its API, its destinations, and the sync operator."""
