"""Warehouse loads: bronze batches from the lake into warehouse tables."""
