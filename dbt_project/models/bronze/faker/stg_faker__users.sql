with

source as (

    select * from {{ source('faker', 'faker__users') }}

),

renamed as (

    select
        ---------- ids
        cast(id as bigint) as user_id,

        ---------- text
        cast(name as varchar) as name,
        cast(title as varchar) as title,
        cast(email as varchar) as email,
        cast(telephone as varchar) as telephone,
        cast(gender as varchar) as gender,
        cast(language as varchar) as language,
        cast(academic_degree as varchar) as academic_degree,
        cast(nationality as varchar) as nationality,
        cast(occupation as varchar) as occupation,
        cast(height as varchar) as height,
        cast(blood_type as varchar) as blood_type,

        ---------- numerics
        cast(age as bigint) as age,
        cast(weight as bigint) as weight,

        ---------- address (bracket access works on DuckDB structs and Snowflake objects)
        cast(address['city'] as varchar) as city,
        cast(address['state'] as varchar) as state,
        cast(address['country_code'] as varchar) as country_code,
        cast(address['postal_code'] as varchar) as postal_code,

        ---------- timestamps
        cast(created_at as timestamptz) as created_at,
        cast(updated_at as timestamptz) as updated_at,

        ---------- load metadata
        cast(_sluice_batch as varchar) as _sluice_batch,
        cast(_airbyte_extracted_at as timestamptz) as _airbyte_extracted_at

    from source

)

select * from renamed
