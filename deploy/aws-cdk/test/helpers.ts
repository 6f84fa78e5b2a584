// Builds the stack the way `cdk synth` does (cdk.json's feature flags plus the given context),
// with a stand-in Lambda package: a folder holding a bootstrap file, so no real zip is needed.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { DeleteSyncStack } from '../lib/delete-sync-stack';
import { readFleetSettings } from '../lib/fleet-settings';
import { FleetStack } from '../lib/fleet-stack';
import { APP_DIR, readSettings } from '../lib/settings';

const made: string[] = [];

// A new temporary folder, removed by cleanup().
export function tempDir(tag: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `delete-sync-cdk-${tag}-`));
  made.push(dir);
  return dir;
}

export function cleanup(): void {
  for (const dir of made.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
}

export function fakePackageDir(): string {
  const dir = tempDir('pkg');
  fs.writeFileSync(path.join(dir, 'bootstrap'), '#!/bin/sh\nexit 1\n', { mode: 0o755 });
  return dir;
}

export function cdkJsonContext(): Record<string, unknown> {
  const cdkJson = JSON.parse(fs.readFileSync(path.join(APP_DIR, 'cdk.json'), 'utf8'));
  return cdkJson.context as Record<string, unknown>;
}

export function synth(context: Record<string, unknown> = {}): {
  app: App;
  stack: DeleteSyncStack;
  template: Template;
} {
  const outdir = tempDir('out');
  const app = new App({
    outdir,
    context: { ...cdkJsonContext(), lambdaZip: fakePackageDir(), ...context },
  });
  const settings = readSettings((k) => app.node.tryGetContext(k));
  const stack = new DeleteSyncStack(app, 'DeleteSync', { settings });
  return { app, stack, template: Template.fromStack(stack) };
}

// The fleet stack, as `cdk synth -c stacks=fleet` builds it (node groups gpu-a and gpu-b unless
// the context names others).
export function synthFleet(context: Record<string, unknown> = {}): {
  app: App;
  stack: FleetStack;
  template: Template;
} {
  const app = new App({
    outdir: tempDir('out'),
    context: { ...cdkJsonContext(), nodeGroups: 'gpu-a,gpu-b', ...context },
  });
  const settings = readFleetSettings((k) => app.node.tryGetContext(k));
  const stack = new FleetStack(app, 'DeleteSyncFleet', { settings });
  return { app, stack, template: Template.fromStack(stack) };
}

// Resources of one type, keyed by logical id.
export function resourcesOf(template: Template, type: string): Record<string, any> {
  return template.findResources(type);
}

// The one resource of a type whose logical id starts with `prefix`.
export function logicalId(template: Template, type: string, prefix: string): string {
  const ids = Object.keys(template.findResources(type)).filter((id) => id.startsWith(prefix));
  if (ids.length !== 1) throw new Error(`expected one ${type} named ${prefix}*, found ${ids.join(', ') || 'none'}`);
  return ids[0];
}

// Every IAM policy statement in the template: inline policies of roles, AWS::IAM::Policy and
// managed policies, with the policy's logical id.
export function iamStatements(template: Template): { policy: string; statement: any }[] {
  const out: { policy: string; statement: any }[] = [];
  const asList = (x: any) => (Array.isArray(x) ? x : [x]);
  for (const [id, r] of Object.entries(template.toJSON().Resources as Record<string, any>)) {
    const docs: any[] = [];
    if (r.Type === 'AWS::IAM::Policy' || r.Type === 'AWS::IAM::ManagedPolicy') docs.push(r.Properties.PolicyDocument);
    if (r.Type === 'AWS::IAM::Role') for (const p of r.Properties.Policies ?? []) docs.push(p.PolicyDocument);
    for (const d of docs) for (const s of asList(d.Statement)) out.push({ policy: id, statement: s });
  }
  return out;
}

export function actionsOf(statement: any): string[] {
  return Array.isArray(statement.Action) ? statement.Action : [statement.Action];
}
