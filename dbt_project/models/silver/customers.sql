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
    {{ sluice_latest_per_key('user_id') }}

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
{{ sluice_skip_older_than_stored('cleaned', 'customer_id') }}
