{#- Fails for every row where the column exceeds another column of the same row. -#}
{% test not_greater_than(model, column_name, other_column) %}

select *
from {{ model }}
where {{ column_name }} > {{ other_column }}

{% endtest %}
