#!/bin/sh
set -e
out=$(hello-atomic fedora)
echo "got: $out"
[ "$out" = "Hello, fedora!" ]
