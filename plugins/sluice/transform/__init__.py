"""Transform: the dbt project rendered as Airflow task groups by Cosmos."""
