with

source as (

    select * from {{ source('faker', 'faker__purchases') }}

),

renamed as (

    select
        ---------- ids
        cast(id as bigint) as purchase_id,
        cast(user_id as bigint) as user_id,
        cast(product_id as bigint) as product_id,

        ---------- timestamps
        cast(created_at as timestamptz) as created_at,
        cast(updated_at as timestamptz) as updated_at,
        cast(added_to_cart_at as timestamptz) as added_to_cart_at,
        cast(purchased_at as timestamptz) as purchased_at,
        cast(returned_at as timestamptz) as returned_at,

        ---------- load metadata
        cast(_sluice_batch as varchar) as _sluice_batch,
        cast(_airbyte_extracted_at as timestamptz) as _airbyte_extracted_at

    from source

)

select * from renamed
