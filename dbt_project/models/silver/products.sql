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
    -- The source re-emits every product each sync: keep the newest copy per key.
    qualify
        row_number() over (
            partition by product_id
            order by _sluice_batch desc, updated_at desc, _airbyte_extracted_at desc
        ) = 1

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
{% if is_incremental() %}
    -- Backfilling an old window must not replace a version from a newer batch.
    where
        not exists (
            select 1
            from {{ this }} as already_loaded
            where
                already_loaded.product_id = cleaned.product_id
                and already_loaded._sluice_batch > cleaned._sluice_batch
        )
{% endif %}
