{{
    config(
        unique_key='customer_id'
    )
}}

with

users as (

    select * from {{ ref('stg_faker__users') }}
    where {{ sluice_batch_window() }}

),

latest_version as (

    select * from users
    -- The source re-emits every user each sync: keep the newest copy per key.
    qualify
        row_number() over (
            partition by user_id
            order by _sluice_batch desc, updated_at desc, _airbyte_extracted_at desc
        ) = 1

),

cleaned as (

    select
        ---------- ids
        user_id as customer_id,

        ---------- text
        trim(name) as customer_name,
        trim(title) as title,
        lower(trim(email)) as email,
        trim(telephone) as telephone,
        trim(gender) as gender,
        trim(language) as language,
        trim(academic_degree) as academic_degree,
        trim(nationality) as nationality,
        trim(occupation) as occupation,
        trim(height) as height,
        trim(blood_type) as blood_type,

        ---------- numerics
        age,
        weight,

        ---------- address
        trim(city) as city,
        trim(state) as state,
        upper(trim(country_code)) as country_code,
        trim(postal_code) as postal_code,

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
                already_loaded.customer_id = cleaned.customer_id
                and already_loaded._sluice_batch > cleaned._sluice_batch
        )
{% endif %}
