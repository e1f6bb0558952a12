#!/bin/sh
# check "greeting" passes, check "version" fails, every time
printf -- '- name: /greeting\n  result: pass\n- name: /version\n  result: fail\n' > "$TMT_TEST_DATA/results.yaml"
