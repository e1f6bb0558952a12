#!/bin/sh
# TMT_PLAN_DATA is <run>/plans/main/data: its grandparent is inside the run's directory,
# where fci looks for each plan's execute/results.yaml.
set -e
root="$TMT_PLAN_DATA/../.."
i=0
while [ $i -lt 1200 ]; do
    mkdir -p "$root/planted-$i/execute"
    printf -- '- {name: /planted/%s, result: pass}\n' "$i" > "$root/planted-$i/execute/results.yaml"
    i=$((i + 1))
done
