#!/usr/bin/env bash
# Install (if needed), then run a search on the embedded default: the API and all
# workers in this process, an in-process broker, SQLite under ./data, and the
# simulated source (a realistic field with known asteroids; no network needed).
# It ends by saying where to review the tracks in a browser; with --serve it keeps
# the server running and prints the review page's address (Ctrl-C stops it).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/astrohunter search --ra 83.8 --dec -5.4 --source simulated --out out/demo-tracks.json "$@"
