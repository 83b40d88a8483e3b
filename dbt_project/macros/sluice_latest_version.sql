{#-
    QUALIFY clause keeping one row per key: the copy from the latest batch,
    then the latest cursor and extraction. Sources re-emit records, so a
    window can hold several copies of the same key.
-#}
{% macro sluice_latest_per_key(key) -%}
    qualify
        row_number() over (
            partition by {{ key }}
            order by _sluice_batch desc, updated_at desc, _airbyte_extracted_at desc
        ) = 1
{%- endmacro %}


{#-
    On incremental runs, a WHERE clause dropping incoming rows whose key is
    already stored from a newer batch: backfilling an old window must never
    replace a newer version. Renders nothing on a full build.
-#}
{% macro sluice_skip_older_than_stored(relation_alias, key) -%}
    {%- if is_incremental() %}
    where
        not exists (
            select 1
            from {{ this }} as already_loaded
            where
                already_loaded.{{ key }} = {{ relation_alias }}.{{ key }}
                and already_loaded._sluice_batch > {{ relation_alias }}._sluice_batch
        )
    {%- endif %}
{%- endmacro %}
