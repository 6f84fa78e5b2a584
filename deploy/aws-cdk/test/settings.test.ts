import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { RemovalPolicy } from 'aws-cdk-lib';
import { APP_DIR, DEFAULT_LAMBDA_ZIP, readSettings } from '../lib/settings';
import { cdkJsonContext, cleanup, fakePackageDir, tempDir } from './helpers';

const tmp = () => tempDir('settings');

afterAll(cleanup);

function crc32(data: Buffer): number {
  let c = 0xffffffff;
  for (const b of data) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
  }
  return (c ^ 0xffffffff) >>> 0;
}

// A zip with stored (uncompressed) entries, as `zip -0` writes it.
function makeZip(entries: Record<string, string>): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const [name, text] of Object.entries(entries)) {
    const data = Buffer.from(text);
    const nameBuf = Buffer.from(name);
    const crc = crc32(data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(10, 4);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(data.length, 18);
    local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(nameBuf.length, 26);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(0x031e, 4);
    central.writeUInt16LE(10, 6);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(data.length, 20);
    central.writeUInt32LE(data.length, 24);
    central.writeUInt16LE(nameBuf.length, 28);
    central.writeUInt32LE(((0o100755 << 16) >>> 0), 38);
    central.writeUInt32LE(offset, 42);
    locals.push(local, nameBuf, data);
    centrals.push(central, nameBuf);
    offset += 30 + nameBuf.length + data.length;
  }
  const cd = Buffer.concat(centrals);
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  eocd.writeUInt16LE(Object.keys(entries).length, 8);
  eocd.writeUInt16LE(Object.keys(entries).length, 10);
  eocd.writeUInt32LE(cd.length, 12);
  eocd.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, eocd]);
}

// Context reader over a plain object, with a working package unless the test sets lambdaZip.
function read(ctx: Record<string, unknown>) {
  const all: Record<string, unknown> = { lambdaZip: fakePackageDir(), ...ctx };
  return readSettings((k) => all[k]);
}

describe('the Lambda package', () => {
  test('a missing package names the script that builds it', () => {
    const missing = path.join(tmp(), 'delete-sync-lambda-x86_64.zip');
    expect(() => read({ lambdaZip: missing })).toThrow(/does not exist.*scripts\/package-lambda\.sh/);
  });

  test('the default path is the package script output, relative to this app', () => {
    expect(path.resolve(APP_DIR, DEFAULT_LAMBDA_ZIP)).toBe(
      path.resolve(APP_DIR, '..', '..', 'build', 'lambda-package', 'delete-sync-lambda-x86_64.zip'),
    );
  });

  test('a zip with bootstrap at its root is accepted; without it, or not a zip, refused', () => {
    const dir = tmp();
    const good = path.join(dir, 'good.zip');
    fs.writeFileSync(good, makeZip({ 'lib/libc.so.6': 'x', bootstrap: '#!/bin/sh\n' }));
    expect(read({ lambdaZip: good }).lambdaCode).toBe(good);
    const nested = path.join(dir, 'nested.zip');
    fs.writeFileSync(nested, makeZip({ 'pkg/bootstrap': '#!/bin/sh\n' }));
    expect(() => read({ lambdaZip: nested })).toThrow(/no bootstrap at its root/);
    const text = path.join(dir, 'text.zip');
    fs.writeFileSync(text, 'not a zip at all, but long enough to have an end record');
    expect(() => read({ lambdaZip: text })).toThrow(/is not a zip file/);
  });

  test('a folder without bootstrap is refused', () => {
    expect(() => read({ lambdaZip: tmp() })).toThrow(/has no bootstrap file/);
  });
});

describe('settings', () => {
  test('defaults', () => {
    const s = read({});
    expect(s.removalPolicy).toBe(RemovalPolicy.RETAIN);
    expect(s.prefix).toBe('');
    expect(s.bucketName).toBeUndefined();
    expect(s.reconcileSchedule).toBe('rate(1 hour)');
    expect(s.syncTimeout.toSeconds()).toBe(300);
    expect(s.createEndpoints).toBe(true);
    expect(s.existingVpc).toBeUndefined();
    expect(s.existingFileSystem).toBeUndefined();
  });

  test.each([
    [{ removalPolicy: 'snapshot' }, /removalPolicy: expected retain or destroy/],
    [{ reconcileSchedule: 'every hour' }, /not an EventBridge schedule expression/],
    [{ bucketName: 'Bad_Bucket' }, /not a valid S3 bucket name/],
    [{ prefix: '/abs/' }, /must be a key prefix/],
    [{ alarmEmail: 'nobody' }, /not an email address/],
    [{ logRetentionDays: '10' }, /not one CloudWatch Logs accepts/],
    [{ logLevel: 'loud' }, /logLevel: expected/],
    [{ syncTimeoutSeconds: '901' }, /not within 10..900/],
    [{ syncMaxConcurrency: '1' }, /not within 2..1000/],
    [{ syncMaxConcurrency: '4', syncReservedConcurrency: '4' }, /must exceed syncMaxConcurrency/],
    [{ batchSize: 'ten' }, /expected a whole number/],
    [{ lambdaEndpoint: 'yes' }, /expected true or false/],
    [{ existingVpcId: 'vpc-0123456789abcdef0' }, /needs existingSubnetIds/],
    [
      { existingVpcId: 'vpc-0123456789abcdef0', existingSubnetIds: 'subnet-0aaaaaaaaaaaaaaa1' },
      /needs existingAvailabilityZones/,
    ],
    [
      {
        existingVpcId: 'vpc-0123456789abcdef0',
        existingSubnetIds: 'subnet-0aaaaaaaaaaaaaaa1',
        existingAvailabilityZones: 'eu-west-1a',
        createEndpoints: 'true',
      },
      /needs existingRouteTableIds/,
    ],
    [{ existingSubnetIds: 'subnet-0aaaaaaaaaaaaaaa1' }, /need existingVpcId/],
    [{ existingVpcId: 'vpc-xyz' }, /is not a VPC id/],
    [
      { existingFileSystemId: 'fs-0123456789abcdef0', existingFileSystemSecurityGroupId: 'sg-0123456789abcdef0' },
      /needs existingVpcId/,
    ],
    [
      {
        existingVpcId: 'vpc-0123456789abcdef0',
        existingSubnetIds: 'subnet-0aaaaaaaaaaaaaaa1',
        existingAvailabilityZones: 'eu-west-1a',
        existingFileSystemId: 'fs-0123456789abcdef0',
      },
      /needs existingFileSystemSecurityGroupId/,
    ],
  ])('refuses %j', (ctx, message) => {
    expect(() => read(ctx)).toThrow(message);
  });
});

describe('the app entry point', () => {
  test('without the package it exits 1 with a message naming scripts/package-lambda.sh', () => {
    const missing = path.join(tmp(), 'delete-sync-lambda-x86_64.zip');
    const r = spawnSync(
      process.execPath,
      ['-r', 'ts-node/register/transpile-only', path.join(APP_DIR, 'bin', 'delete-sync.ts')],
      {
        cwd: APP_DIR,
        encoding: 'utf8',
        env: {
          ...process.env,
          CDK_OUTDIR: tmp(),
          CDK_CONTEXT_JSON: JSON.stringify({ lambdaZip: missing }),
        },
      },
    );
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`The Lambda package ${missing} does not exist (context lambdaZip)`);
    expect(r.stderr).toContain('scripts/package-lambda.sh');
  });

  test('with a package it writes the template to the output folder', () => {
    const out = tmp();
    const r = spawnSync(
      process.execPath,
      ['-r', 'ts-node/register/transpile-only', path.join(APP_DIR, 'bin', 'delete-sync.ts')],
      {
        cwd: APP_DIR,
        encoding: 'utf8',
        env: {
          ...process.env,
          CDK_OUTDIR: out,
          // As the CLI does: cdk.json's context plus the -c values.
          CDK_CONTEXT_JSON: JSON.stringify({
            ...cdkJsonContext(),
            lambdaZip: fakePackageDir(),
            stackName: 'DeleteSyncTest',
          }),
        },
      },
    );
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const template = JSON.parse(fs.readFileSync(path.join(out, 'DeleteSyncTest.template.json'), 'utf8'));
    const functions = Object.entries(template.Resources).filter(([, x]: [string, any]) => x.Type === 'AWS::Lambda::Function');
    // Ours, plus CDK's handlers for bucket notifications and the default security group.
    expect(functions.map(([id]) => id.replace(/[0-9A-F]{8}$/, '')).sort()).toEqual([
      'BucketNotificationsHandler050a0587b7544547bf325f094a3db834',
      'CustomVpcRestrictDefaultSGCustomResourceProviderHandler',
      'EraseFunction',
      'SyncFunction',
    ]);
  });
  const runApp = (context: Record<string, unknown>, out: string) =>
    spawnSync(process.execPath, ['-r', 'ts-node/register/transpile-only', path.join(APP_DIR, 'bin', 'delete-sync.ts')], {
      cwd: APP_DIR,
      encoding: 'utf8',
      env: { ...process.env, CDK_OUTDIR: out, CDK_CONTEXT_JSON: JSON.stringify({ ...cdkJsonContext(), ...context }) },
    });

  test('stacks=fleet needs no Lambda package and writes the fleet template, cdk-nag passing', () => {
    const out = tmp();
    const r = runApp({ stacks: 'fleet', nodeGroups: 'gpu-a', lambdaZip: path.join(tmp(), 'missing.zip') }, out);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(fs.existsSync(path.join(out, 'DeleteSyncFleet.template.json'))).toBe(true);
    expect(fs.existsSync(path.join(out, 'DeleteSync.template.json'))).toBe(false);
    // cdk-nag ran as a validation plugin and found nothing.
    const report = JSON.parse(fs.readFileSync(path.join(out, 'validation-report.json'), 'utf8'));
    expect(report.pluginReports).toEqual([]);
  });

  test('stacks=lambda,fleet writes both; an unknown stack or nag value is refused', () => {
    const out = tmp();
    const r = runApp({ stacks: 'lambda,fleet', nodeGroups: 'gpu-a', lambdaZip: fakePackageDir() }, out);
    expect(r.status).toBe(0);
    for (const f of ['DeleteSync.template.json', 'DeleteSyncFleet.template.json']) {
      expect(fs.existsSync(path.join(out, f))).toBe(true);
    }
    const bad = runApp({ stacks: 'ec2' }, tmp());
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain('context stacks: "ec2" is not lambda or fleet');
    const fleetWithoutGroups = runApp({ stacks: 'fleet' }, tmp());
    expect(fleetWithoutGroups.status).toBe(1);
    expect(fleetWithoutGroups.stderr).toContain('context nodeGroups');
    const nag = runApp({ stacks: 'fleet', nodeGroups: 'a', nag: 'maybe' }, tmp());
    expect(nag.status).toBe(1);
    expect(nag.stderr).toContain('context nag: expected true or false');
  });
});
