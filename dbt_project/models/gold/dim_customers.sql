with

customers as (

    select * from {{ ref('customers') }}

),

final as (

    select
        customer_id,
        customer_name,
        title,
        email,
        telephone,
        gender,
        age,
        language,
        academic_degree,
        nationality,
        occupation,
        city,
        state,
        country_code,
        postal_code,
        created_at,
        updated_at

    from customers

)

select * from final
