{{
    config(
        unique_key='purchase_id'
    )
}}

with

purchases as (

    select * from {{ ref('stg_faker__purchases') }}
    where {{ sluice_batch_window() }}

),

latest_version as (

    select * from purchases
    -- The source re-emits every purchase each sync: keep the newest copy per key.
    qualify
        row_number() over (
            partition by purchase_id
            order by _sluice_batch desc, updated_at desc, _airbyte_extracted_at desc
        ) = 1

),

renamed as (

    select
        ---------- ids
        purchase_id,
        user_id as customer_id,
        product_id,

        ---------- timestamps
        created_at,
        updated_at,
        added_to_cart_at,
        purchased_at,
        returned_at,

        ---------- load metadata
        _sluice_batch,
        _airbyte_extracted_at

    from latest_version

)

select * from renamed
{% if is_incremental() %}
    -- Backfilling an old window must not replace a version from a newer batch.
    where
        not exists (
            select 1
            from {{ this }} as already_loaded
            where
                already_loaded.purchase_id = renamed.purchase_id
                and already_loaded._sluice_batch > renamed._sluice_batch
        )
{% endif %}
