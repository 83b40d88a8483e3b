{#- Fails, with one row holding both totals and their relative difference, when an
    aggregate over the model and one over another model differ by more than `tolerance`. -#}
{% test totals_agree(model, total, compare_model, compare_total, tolerance=0) %}
    {#- the failing row is kept, as a view, for people to read -#}
    {{ config(store_failures=true, store_failures_as="view") }}
{%- for name, value in {"total": total, "compare_model": compare_model, "compare_total": compare_total}.items()
    if value is not defined or not value %}
    {{ exceptions.raise_compiler_error("totals_agree needs the argument " ~ name) }}
{%- endfor %}

with totals as (
    select
        cast(coalesce((select {{ total }} from {{ model }}), 0) as {{ dbt.type_float() }}) as total,
        cast(coalesce((select {{ compare_total }} from {{ compare_model }}), 0) as {{ dbt.type_float() }})
            as compare_total
),

compared as (
    select
        total,
        compare_total,
        case
            when compare_total <> 0 then abs(total - compare_total) / abs(compare_total)
            when total = compare_total then 0
            else 1
        end as relative_difference
    from totals
)

select * from compared
where relative_difference > {{ tolerance }}

{% endtest %}
