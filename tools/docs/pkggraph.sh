#!/usr/bin/env bash
# Regenerates the package graph in docs/architecture.md from `go list` (the block between the pkggraph markers).
# Usage: tools/docs/pkggraph.sh           rewrite docs/architecture.md
#        tools/docs/pkggraph.sh --check   exit 1 when docs/architecture.md is stale
#        tools/docs/pkggraph.sh --print   print the block on stdout
set -euo pipefail
cd "$(dirname "$0")/../.."
mod=$(go list -m)
list() { go list -f '{{.ImportPath}} {{join .Imports " "}}' ./...; }
case "${1:-}" in
  "") list | go run ./tools/docs/pkggraph -module "$mod" -w docs/architecture.md ;;
  --check) list | go run ./tools/docs/pkggraph -module "$mod" -w docs/architecture.md -check ;;
  --print) list | go run ./tools/docs/pkggraph -module "$mod" ;;
  *) echo "usage: $0 [--check|--print]" >&2; exit 2 ;;
esac
