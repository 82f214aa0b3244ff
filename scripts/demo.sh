#!/usr/bin/env bash
# Install (if needed), simulate a field with known asteroids, and search it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
out=${1:-out/demo}
.venv/bin/astrohunter simulate "$out" --seed 7 --size 1024 --frames 10 --objects 12
.venv/bin/astrohunter detect "$out/frames" --out "$out/tracks.json" --mpc "$out/report.mpc"
