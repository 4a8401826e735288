#!/bin/sh
# Brings the whole platform up on this machine's Docker engine: the `local` stack, the `demo` app,
# nginx on http://localhost:8080. No cloud account, no registry credentials: Pulumi keeps its state
# in .pulumi-state/ inside the repo (ignored by git) with a passphrase that protects nothing real.
set -eu
cd "$(dirname "$0")/.."

missing=""
command -v pulumi >/dev/null 2>&1 || missing="$missing\n  - the Pulumi CLI: https://www.pulumi.com/docs/install/ (curl -fsSL https://get.pulumi.com | sh)"
if ! command -v docker >/dev/null 2>&1; then
    missing="$missing\n  - Docker: https://docs.docker.com/engine/install/"
elif ! docker info >/dev/null 2>&1; then
    missing="$missing\n  - a running Docker engine: start Docker Desktop or 'sudo systemctl start docker' (and make sure this user may use it)"
fi
command -v npm >/dev/null 2>&1 || missing="$missing\n  - Node.js 24+ with npm: https://nodejs.org/"
if [ -n "$missing" ]; then
    printf "local-up needs:%b\n" "$missing" >&2
    exit 1
fi

[ -d node_modules ] || npm ci --no-audit --no-fund
mkdir -p .pulumi-state
# shellcheck source=commands/local-env.sh
. ./commands/local-env.sh
pulumi stack select local --create --non-interactive >/dev/null
# The platform's policy pack (policy/) checks every resource; a violation fails the up.
pulumi up --stack local --yes --non-interactive --policy-pack policy

echo
echo "The platform is up:"
# shellcheck disable=SC2016 # JavaScript, not shell
pulumi stack output --stack local --json apps | node -e '
let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => {
  for (const [name, a] of Object.entries(JSON.parse(s))) console.log(`  ${name}: ${a.url}  (API ${a.apiUrl})`);
});'
echo "Tear it down with: npm run local:down"
