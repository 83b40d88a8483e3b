{#-
    Predicate limiting a model to the batches between vars `batch_start`
    (inclusive) and `batch_end` (exclusive). Batch ids look like
    20261120T060000Z, so plain string comparison follows time order.
    A missing bound is open, and with neither var set the whole history is read.
    Without the vars, the environment's SLUICE_BATCH_START / SLUICE_BATCH_END
    give the window, read only when executing: dbt re-parses the whole project
    when --vars change, but not for an environment variable it never saw while
    parsing, so each batch reuses the saved parse.
-#}
{% macro sluice_batch_window(column='_sluice_batch') -%}
    {%- set batch_start = var('batch_start', none) -%}
    {%- set batch_end = var('batch_end', none) -%}
    {%- if execute and batch_start is none and batch_end is none -%}
        {%- set batch_start = env_var('SLUICE_BATCH_START', '') or none -%}
        {%- set batch_end = env_var('SLUICE_BATCH_END', '') or none -%}
    {%- endif -%}
    {%- set predicates = [] -%}

    {%- if batch_start is not none -%}
        {%- do predicates.append(column ~ " >= '" ~ sluice_batch_id(batch_start, 'batch_start') ~ "'") -%}
    {%- endif -%}
    {%- if batch_end is not none -%}
        {%- do predicates.append(column ~ " < '" ~ sluice_batch_id(batch_end, 'batch_end') ~ "'") -%}
    {%- endif -%}

    {{- predicates | join(' and ') if predicates else 'true' -}}
{%- endmacro %}


{#-
    Returns the var as a batch id string, failing the run on anything else:
    the value is spliced into SQL, and a malformed id would silently compare
    wrong. Checked only when executing so linters can render the models.
-#}
{% macro sluice_batch_id(value, var_name) -%}
    {%- set batch_id = value | string | trim -%}
    {%- if execute and not modules.re.fullmatch('[0-9]{8}T[0-9]{6}Z', batch_id) -%}
        {{- exceptions.raise_compiler_error(
            "var '" ~ var_name ~ "' must be a batch id like 20261120T060000Z, got '" ~ batch_id ~ "'"
        ) -}}
    {%- endif -%}
    {{- return(batch_id) -}}
{%- endmacro %}
