"""The platform health page and the dbt docs in the Airflow UI, behind its login."""
