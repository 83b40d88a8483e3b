with

customers as (

    select * from {{ ref('dim_customers') }}

),

completed_purchases as (

    -- Abandoned carts never generated revenue.
    select * from {{ ref('fct_purchases') }}
    where status in ('purchased', 'returned')

),

customer_revenue as (

    select
        customer_id,
        count(*) as purchases,
        count(case when status = 'returned' then 1 end) as returned,
        sum(amount) as gross_revenue,
        sum(case when status = 'returned' then amount else 0 end) as returned_revenue,
        min(purchased_at) as first_purchase_at,
        max(purchased_at) as last_purchase_at

    from completed_purchases

    group by customer_id

),

final as (

    select
        customers.customer_id,
        customers.customer_name,
        customers.email,
        coalesce(customer_revenue.purchases, 0) as purchases,
        coalesce(customer_revenue.returned, 0) as returned,
        coalesce(customer_revenue.gross_revenue, 0) as gross_revenue,
        coalesce(customer_revenue.gross_revenue - customer_revenue.returned_revenue, 0) as net_revenue,
        customer_revenue.first_purchase_at,
        customer_revenue.last_purchase_at

    from customers

    -- Keep customers without purchases so they report zero revenue.
    left join customer_revenue
        on customers.customer_id = customer_revenue.customer_id

)

select * from final
