#!/bin/sh
echo "Goodbye, world!"
