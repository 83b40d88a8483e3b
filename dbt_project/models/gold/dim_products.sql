with

products as (

    select * from {{ ref('products') }}

),

final as (

    select
        product_id,
        make,
        model,
        make || ' ' || model as product_name,
        model_year,
        price,
        created_at,
        updated_at

    from products

)

select * from final
