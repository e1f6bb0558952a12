#!/bin/sh
# 10,001 cases, every one skipped: one more than a stage lists
awk 'BEGIN { for (i = 0; i < 10001; i++) printf "- name: /case-%d\n  result: skip\n", i }' > "$TMT_TEST_DATA/results.yaml"
