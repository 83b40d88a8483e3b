"""What every layer shares: configuration, source declarations, batch ids, Airflow-version checks.

Imports nothing of Sluice's other packages (the layers point down to here).
"""
