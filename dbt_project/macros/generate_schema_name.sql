{#-
    Layer folders set their schema (bronze, silver, gold, marts) and it is used
    verbatim, so table locations are the same on every target instead of being
    prefixed with the target schema.
-#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
