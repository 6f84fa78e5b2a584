#!/usr/bin/env node
// The CDK app: `npx cdk synth|deploy|destroy [-c name=value ...]` from deploy/aws-cdk.
// Settings come from the context (lib/settings.ts, docs/DEPLOY-AWS.md).
import { App } from 'aws-cdk-lib';
import { DeleteSyncStack } from '../lib/delete-sync-stack';
import { readSettings } from '../lib/settings';

const app = new App();
let settings;
try {
  settings = readSettings((key) => app.node.tryGetContext(key));
} catch (e) {
  // A clear one-line message instead of a stack trace through ts-node.
  console.error(`delete-sync CDK app: ${(e as Error).message}`);
  process.exit(1);
}
const stackName = (app.node.tryGetContext('stackName') as string | undefined) ?? 'DeleteSync';
new DeleteSyncStack(app, stackName, {
  settings,
  description: 'delete-sync: keeps an EFS cache equal to an S3 bucket (Lambda custom runtime)',
  // Environment-agnostic: `cdk synth` needs no AWS account; `cdk deploy` uses the CLI's
  // account and region. Set CDK_DEFAULT_ACCOUNT/REGION-derived env only when asked to.
  env:
    app.node.tryGetContext('useCliEnv') === 'true'
      ? { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION }
      : undefined,
});
