#!/usr/bin/env bash
# Sets up, builds and runs authshim in the foreground on packaging/authshim.example.json
# (listening on 127.0.0.1:3128). Stop it with Ctrl-C.
# Uses the same build directory and cache variables as the release stage of scripts/test.sh
# (preset `release` in CMakePresets.json), but builds only the authshim target.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

config=packaging/authshim.example.json
if [[ ! -f "$config" ]]; then
    echo "run.sh: $root/$config is missing" >&2
    exit 1
fi

bash scripts/setup.sh
cmake --preset release
cmake --build build/release --target authshim -j "$(nproc)"

echo "run.sh: starting build/release/service/authshim run --config $config"
exec build/release/service/authshim run --config "$config"
