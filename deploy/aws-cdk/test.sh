#!/usr/bin/env bash
# Tests of the AWS CDK app (deploy/aws-cdk): `npm ci`, `npm test` (type check, then jest
# assertions on the synthesized templates and cdk-nag's AwsSolutionsChecks), then `cdk synth` of
# both stacks with no AWS credentials at all (the Lambda stack with a stand-in package), to show
# that synthesis works offline.
#
# Needs node and npm: node >= 20 (what aws-cdk-lib declares), or Debian 12's node 18.20 with
# which the tests pass (apt-get install -y nodejs npm); run as root without them, this script
# installs Debian's itself.
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "deploy/aws-cdk/test.sh: installing nodejs and npm from Debian" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nodejs npm >/dev/null ||
      { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nodejs npm >/dev/null; }
  else
    echo "deploy/aws-cdk/test.sh: node and npm are needed: sudo apt-get install -y nodejs npm" >&2
    exit 2
  fi
fi
major=$(node -p 'process.versions.node.split(".")[0]')
if ((major < 18)); then
  echo "deploy/aws-cdk/test.sh: node $(node --version) is too old; node >= 20 is needed (18 works for the tests)" >&2
  exit 2
elif ((major < 20)); then
  # aws-cdk-lib >= 2.242 (cdk-nag 3 needs >= 2.257) declares node >= 20. Its code still runs on
  # Debian 12's node 18.20 (npm ci warns EBADENGINE; the tests and synth pass), so CI on a clean
  # Debian 12 keeps testing with it; deploy with node >= 20.
  echo "deploy/aws-cdk/test.sh: node $(node --version): aws-cdk-lib declares node >= 20; testing anyway" >&2
fi

# No update checks, notices or telemetry; never look for credentials (not even on EC2 metadata).
export CDK_DISABLE_VERSION_CHECK=1 CDK_DISABLE_CLI_TELEMETRY=true AWS_EC2_METADATA_DISABLED=true
export npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false

npm ci --no-audit --no-fund --loglevel=error
npm test

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/pkg"
printf '#!/bin/sh\nexit 1\n' >"$tmp/pkg/bootstrap"
chmod 755 "$tmp/pkg/bootstrap"
env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_SESSION_TOKEN -u AWS_PROFILE \
  -u AWS_REGION -u AWS_DEFAULT_REGION \
  AWS_CONFIG_FILE=/nonexistent AWS_SHARED_CREDENTIALS_FILE=/nonexistent \
  npx --no-install cdk synth --quiet -c lambdaZip="$tmp/pkg" -o "$tmp/cdk.out" >/dev/null
node -e '
  const t = require(process.argv[1]);
  const n = Object.values(t.Resources).filter((r) => r.Type === "AWS::Lambda::Function").length;
  if (n < 2) { console.error("cdk synth: the template has no delete-sync functions"); process.exit(1); }
' "$tmp/cdk.out/DeleteSync.template.json"
# The GPU-fleet stack needs no package; cdk-nag runs on every synth, so this one passing means
# no unacknowledged finding either.
env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_SESSION_TOKEN -u AWS_PROFILE \
  -u AWS_REGION -u AWS_DEFAULT_REGION \
  AWS_CONFIG_FILE=/nonexistent AWS_SHARED_CREDENTIALS_FILE=/nonexistent \
  npx --no-install cdk synth --quiet -c stacks=fleet -c nodeGroups=gpu-a,gpu-b -c prefix=images/ \
  -o "$tmp/cdk.out.fleet" >/dev/null
node -e '
  const t = require(process.argv[1]);
  const n = Object.values(t.Resources).filter((r) => r.Type === "AWS::SQS::Queue").length;
  if (n !== 4) { console.error("cdk synth: the fleet template should have 2 queues and 2 dead-letter queues, has " + n); process.exit(1); }
' "$tmp/cdk.out.fleet/DeleteSyncFleet.template.json"
# And without a package, synth must fail and say how to build one.
if out=$(env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY AWS_CONFIG_FILE=/nonexistent \
  AWS_SHARED_CREDENTIALS_FILE=/nonexistent \
  npx --no-install cdk synth --quiet -c lambdaZip="$tmp/missing.zip" -o "$tmp/cdk.out2" 2>&1); then
  echo "cdk synth without the Lambda package should have failed" >&2
  exit 1
fi
if ! grep -q 'scripts/package-lambda.sh' <<<"$out"; then
  echo "cdk synth without the Lambda package failed without naming scripts/package-lambda.sh:" >&2
  echo "$out" >&2
  exit 1
fi
echo "cdk synth offline: ok (both templates written, cdk-nag passing; a missing package is refused with a clear message)"
