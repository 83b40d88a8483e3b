-- Snowflake objects Sluice needs, created once by an administrator (ACCOUNTADMIN, or a role
-- with CREATE INTEGRATION, CREATE DATABASE, CREATE WAREHOUSE and CREATE ROLE).
-- Replace the placeholders first:
--   <lake_bucket>/<lake_prefix>   SLUICE_LAKE_ROOT = s3://<lake_bucket>/<lake_prefix>
--   <snowflake_iam_role_arn>      the AWS role Snowflake assumes to read the lake (read only)
--   <sluice_user>                 the user of the Airflow connection snowflake_default
-- Then run it, e.g. `snowsql -f include/snowflake/setup.sql`. Every statement can run again.

use role accountadmin;

-- compute: small, suspended when idle
create warehouse if not exists sluice_wh
    warehouse_size = xsmall auto_suspend = 60 auto_resume = true initially_suspended = true;

-- one database, one schema per layer
create database if not exists sluice;
create schema if not exists sluice.bronze;
create schema if not exists sluice.silver;
create schema if not exists sluice.gold;
create schema if not exists sluice.marts;
-- the checks' figures (ops.batch_metrics, created by the first check that writes one)
create schema if not exists sluice.ops;
-- the failing rows of dbt tests that keep them (store_failures: totals_agree)
create schema if not exists sluice.dbt_test__audit;

-- Time Travel keeps deleted rows this many days, then Fail-safe keeps them 7 more days on
-- permanent tables (none on transient ones). Erasure must finish within the legal deadline:
-- keep Time Travel at 1 day (0 disables it) and Fail-safe's 7 days inside that month.
alter database sluice set data_retention_time_in_days = 1;

-- the lake, read through a storage integration (no keys in Snowflake)
create storage integration if not exists sluice_lake_s3
    type = external_stage
    storage_provider = 'S3'
    enabled = true
    storage_aws_role_arn = '<snowflake_iam_role_arn>'
    storage_allowed_locations = ('s3://<lake_bucket>/<lake_prefix>/');
-- `desc integration sluice_lake_s3` gives STORAGE_AWS_IAM_USER_ARN and STORAGE_AWS_EXTERNAL_ID
-- for the trust policy of <snowflake_iam_role_arn> (s3:GetObject and s3:ListBucket on the lake).

create file format if not exists sluice.bronze.sluice_parquet type = parquet;

-- the stage bronze loads COPY from (SLUICE_SNOWFLAKE_STAGE, default SLUICE_LAKE)
create stage if not exists sluice.bronze.sluice_lake
    storage_integration = sluice_lake_s3
    url = 's3://<lake_bucket>/<lake_prefix>/'
    file_format = sluice.bronze.sluice_parquet;

-- the role Sluice's tasks and dbt use: its own database's objects, nothing else
create role if not exists sluice_role;
grant usage, operate on warehouse sluice_wh to role sluice_role;
grant usage on database sluice to role sluice_role;
grant usage, create table, create view on schema sluice.bronze to role sluice_role;
grant usage, create table, create view on schema sluice.silver to role sluice_role;
grant usage, create table, create view on schema sluice.gold to role sluice_role;
grant usage, create table, create view on schema sluice.marts to role sluice_role;
grant usage, create table on schema sluice.ops to role sluice_role;
grant usage, create view on schema sluice.dbt_test__audit to role sluice_role;
grant usage on stage sluice.bronze.sluice_lake to role sluice_role;
grant usage on file format sluice.bronze.sluice_parquet to role sluice_role;
grant role sluice_role to user <sluice_user>;
alter user <sluice_user> set default_role = sluice_role default_warehouse = sluice_wh;
