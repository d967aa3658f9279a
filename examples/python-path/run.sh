#!/bin/sh
# Runs the workflow locally from the project root, with the same PYTHONPATH the container gets.
set -eu
cd "$(dirname "$0")"
PYTHONPATH="src${PYTHONPATH:+:$PYTHONPATH}" exec python workflows/workflow.py "$@"
