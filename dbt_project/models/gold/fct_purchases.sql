with

purchases as (

    select * from {{ ref('purchases') }}

),

products as (

    select * from {{ ref('dim_products') }}

),

final as (

    select
        purchases.purchase_id,
        purchases.customer_id,
        purchases.product_id,

        -- A cart that was never checked out is abandoned even if it carries a return date.
        case
            when purchases.purchased_at is null then 'abandoned'
            when purchases.returned_at is not null then 'returned'
            else 'purchased'
        end as status,

        -- Current list price: the source carries no price history.
        products.price as amount,

        purchases.added_to_cart_at,
        purchases.purchased_at,
        purchases.returned_at,
        purchases.created_at,
        purchases.updated_at

    from purchases

    left join products
        on purchases.product_id = products.product_id

)

select * from final
