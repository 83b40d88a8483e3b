{{
    config(
        unique_key='product_id'
    )
}}

with

products as (

    select * from {{ ref('stg_faker__products') }}
    where {{ sluice_batch_window() }}

),

latest_version as (

    select * from products
    {{ sluice_latest_per_key('product_id') }}

),

cleaned as (

    select
        ---------- ids
        product_id,

        ---------- text
        trim(make) as make,
        trim(model) as model,

        ---------- numerics
        model_year,
        price,

        ---------- timestamps
        created_at,
        updated_at,

        ---------- load metadata
        _sluice_batch,
        _airbyte_extracted_at

    from latest_version

)

select * from cleaned
{{ sluice_skip_older_than_stored('cleaned', 'product_id') }}
