#!/usr/bin/env node
// The CDK app: `npx cdk synth|deploy|destroy [-c name=value ...]` from deploy/aws-cdk.
// Settings come from the context (lib/settings.ts, lib/fleet-settings.ts, docs/DEPLOY-AWS.md).
//   -c stacks=lambda        (default) the Lambda + EFS stack, DeleteSync
//   -c stacks=fleet         the GPU-fleet stack, DeleteSyncFleet (SNS -> one SQS queue per node group)
//   -c stacks=lambda,fleet  both
// cdk-nag's AwsSolutionsChecks runs on every synth (`-c nag=false` skips it): an unacknowledged
// finding stops the synth with cdk-nag's report.
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { DeleteSyncStack } from '../lib/delete-sync-stack';
import { FleetSettings, readFleetSettings } from '../lib/fleet-settings';
import { FleetStack } from '../lib/fleet-stack';
import { DeleteSyncSettings, list, readSettings, str } from '../lib/settings';

const app = new App();
const get = (key: string) => app.node.tryGetContext(key);
let stacks: string[];
let settings: DeleteSyncSettings | undefined;
let fleetSettings: FleetSettings | undefined;
try {
  stacks = list(get, 'stacks') ?? ['lambda'];
  for (const s of stacks) {
    if (s !== 'lambda' && s !== 'fleet') throw new Error(`context stacks: "${s}" is not lambda or fleet`);
  }
  if (stacks.includes('lambda')) settings = readSettings(get);
  if (stacks.includes('fleet')) fleetSettings = readFleetSettings(get);
  const nag = str(get, 'nag') ?? 'true';
  if (nag !== 'true' && nag !== 'false') throw new Error(`context nag: expected true or false, got "${nag}"`);
  if (nag === 'true') Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
} catch (e) {
  // A clear one-line message instead of a stack trace through ts-node.
  console.error(`delete-sync CDK app: ${(e as Error).message}`);
  process.exit(1);
}
// Environment-agnostic: `cdk synth` needs no AWS account; `cdk deploy` uses the CLI's account and
// region. Set CDK_DEFAULT_ACCOUNT/REGION-derived env only when asked to.
const env =
  get('useCliEnv') === 'true'
    ? { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION }
    : undefined;
if (settings !== undefined) {
  new DeleteSyncStack(app, str(get, 'stackName') ?? 'DeleteSync', {
    settings,
    description: 'delete-sync: keeps an EFS cache equal to an S3 bucket (Lambda custom runtime)',
    env,
  });
}
if (fleetSettings !== undefined) {
  new FleetStack(app, str(get, 'fleetStackName') ?? 'DeleteSyncFleet', {
    settings: fleetSettings,
    description: "delete-sync: a bucket's events to one SQS queue per GPU node group, and the nodes' IAM",
    env,
  });
}
