with

source as (

    select * from {{ source('faker', 'faker__products') }}

),

renamed as (

    select
        ---------- ids
        cast(id as bigint) as product_id,

        ---------- text
        cast(make as varchar) as make,
        cast(model as varchar) as model,

        ---------- numerics
        cast(year as bigint) as model_year,
        -- Fixed-point so revenue sums stay exact.
        cast(price as decimal(18, 2)) as price,

        ---------- timestamps
        cast(created_at as timestamptz) as created_at,
        cast(updated_at as timestamptz) as updated_at,

        ---------- load metadata
        cast(_sluice_batch as varchar) as _sluice_batch,
        cast(_airbyte_extracted_at as timestamptz) as _airbyte_extracted_at

    from source

)

select * from renamed
