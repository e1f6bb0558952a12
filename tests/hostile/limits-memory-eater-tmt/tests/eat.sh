#!/bin/sh
# Bounded: at most 1 GiB, touched (a bytes object is filled), held 120 seconds.
python3 -c 'import time
held = []
for _ in range(64):
    held.append(b"x" * (16 << 20))
    time.sleep(0.02)
time.sleep(120)'
