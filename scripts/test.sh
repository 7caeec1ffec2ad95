#!/usr/bin/env bash
# The one command that tests everything (`npm test`): lint, format, codegen and supergraph drift,
# typecheck, build, then unit + integration + end-to-end tests against real FerretDB and NATS.
set -euo pipefail
cd "$(dirname "$0")/.."
step() { printf '\n== %s\n' "$*"; }

step "tools (pinned FerretDB and nats-server)"
bash scripts/install-tools.sh

step "lint"
npx eslint --max-warnings 0 .
npx prettier --check --log-level warn .

step "codegen drift (resolver types from each schema.graphql)"
gen_files() { find services -path '*/src/__generated__/*' -type f | sort; }
before=$(gen_files | xargs sha256sum)
npx graphql-codegen --config codegen.ts --silent
after=$(gen_files | xargs sha256sum)
if [ "$before" != "$after" ]; then
  echo "generated resolver types were stale; run 'npm run codegen' and commit:" >&2
  diff <(echo "$before") <(echo "$after") >&2 || true
  exit 1
fi
echo "generated resolver types are current"

step "supergraph composition and drift"
node scripts/compose-supergraph.js --check

step "events catalogue drift"
node scripts/events-doc.js --check

step "typecheck (sources and tests)"
npx tsc -p tsconfig.test.json

step "build"
npx tsc -b

step "unit, integration and end-to-end tests"
npx jest --ci
