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
    {{ sluice_latest_per_key('purchase_id') }}

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
{{ sluice_skip_older_than_stored('renamed', 'purchase_id') }}
