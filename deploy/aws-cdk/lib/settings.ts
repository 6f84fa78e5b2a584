// The stack's settings, read from CDK context (`cdk deploy -c name=value`, or the "context"
// object of cdk.json). Context rather than CloudFormation parameters: most settings decide which
// resources exist (a new VPC or an imported one, a schedule or none), which parameters cannot do,
// and everything is checked at synth time with a clear message. docs/DEPLOY-AWS.md lists them.
import * as fs from 'fs';
import * as path from 'path';
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as logs from 'aws-cdk-lib/aws-logs';

// The folder of this app (deploy/aws-cdk); relative paths in the context are taken from here.
export const APP_DIR = path.resolve(__dirname, '..');

// Where scripts/package-lambda.sh writes the zip by default, relative to APP_DIR.
export const DEFAULT_LAMBDA_ZIP = '../../build/lambda-package/delete-sync-lambda-x86_64.zip';

export interface ExistingVpc {
  readonly vpcId: string;
  // Private (or isolated) subnets the functions and the EFS mount targets use, one per AZ.
  readonly subnetIds: string[];
  // The availability zone of each subnet, in the same order.
  readonly availabilityZones: string[];
  // Route tables of those subnets; needed only to add the S3 gateway endpoint.
  readonly routeTableIds?: string[];
}

export interface ExistingFileSystem {
  readonly fileSystemId: string;
  // The security group of its mount targets; the stack adds an NFS ingress rule from the functions.
  readonly securityGroupId: string;
}

export interface DeleteSyncSettings {
  // A zip holding `bootstrap` (scripts/package-lambda.sh), or a folder holding one.
  readonly lambdaCode: string;
  readonly bucketName?: string;
  readonly prefix: string;
  readonly removalPolicy: RemovalPolicy;
  // An EventBridge schedule expression (`rate(1 hour)`, `cron(0 3 * * ? *)`); undefined = none.
  readonly reconcileSchedule?: string;
  readonly alarmEmail?: string;
  readonly syncTimeout: Duration;
  readonly eraseTimeout: Duration;
  readonly syncReservedConcurrency?: number;
  readonly eraseReservedConcurrency?: number;
  // Most concurrent invocations the SQS event source starts (2..1000).
  readonly syncMaxConcurrency: number;
  readonly batchSize: number;
  readonly maxReceiveCount: number;
  readonly logRetention: logs.RetentionDays;
  readonly logLevel: string;
  readonly memorySize: number;
  readonly existingVpc?: ExistingVpc;
  // Whether to add the S3 gateway and Lambda interface endpoints (default: yes for a new VPC,
  // no for an existing one, which usually has them already).
  readonly createEndpoints: boolean;
  // Whether the endpoints include the Lambda interface endpoint (as the seed has), which lets
  // workloads in the VPC invoke the erase function without an internet path.
  readonly lambdaEndpoint: boolean;
  readonly existingFileSystem?: ExistingFileSystem;
  // A lifecycle rule expiring objects (under the prefix) this many days after creation; the
  // expirations reach the cache through the LifecycleExpiration notifications.
  readonly expireAfterDays?: number;
}

// Reads a context value as a trimmed string; undefined when unset or empty.
export type ContextReader = (key: string) => unknown;

export function str(get: ContextReader, key: string): string | undefined {
  const v = get(key);
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') {
    throw new Error(`context ${key}: expected a string, got ${JSON.stringify(v)}`);
  }
  const s = String(v).trim();
  return s === '' ? undefined : s;
}

export function int(get: ContextReader, key: string, min: number, max: number): number | undefined {
  const s = str(get, key);
  if (s === undefined) return undefined;
  if (!/^[0-9]+$/.test(s)) throw new Error(`context ${key}: expected a whole number, got "${s}"`);
  const n = Number(s);
  if (n < min || n > max) throw new Error(`context ${key}: ${n} is not within ${min}..${max}`);
  return n;
}

export function bool(get: ContextReader, key: string): boolean | undefined {
  const s = str(get, key);
  if (s === undefined) return undefined;
  if (s === 'true') return true;
  if (s === 'false') return false;
  throw new Error(`context ${key}: expected true or false, got "${s}"`);
}

export function list(get: ContextReader, key: string): string[] | undefined {
  const v = get(key);
  if (Array.isArray(v)) return v.map((x) => String(x).trim()).filter((x) => x !== '');
  const s = str(get, key);
  if (s === undefined) return undefined;
  return s
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x !== '');
}

const RETENTION_DAYS = new Set<number>(
  Object.values(logs.RetentionDays).filter((v): v is number => typeof v === 'number'),
);

// S3 bucket naming rules (general purpose buckets).
export function checkBucketName(name: string): void {
  const ok =
    /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(name) &&
    !name.includes('..') &&
    !/^\d+\.\d+\.\d+\.\d+$/.test(name) &&
    !name.startsWith('xn--') &&
    !name.endsWith('-s3alias');
  if (!ok) {
    throw new Error(
      `context bucketName: "${name}" is not a valid S3 bucket name ` +
        '(3-63 characters: lower-case letters, digits, dots and hyphens)',
    );
  }
}

// The package must hold an executable named bootstrap at its root (the custom runtime's entry).
function checkLambdaCode(p: string, given: boolean): void {
  const hint =
    'build it with `scripts/package-lambda.sh` from the repository root (it writes ' +
    `${DEFAULT_LAMBDA_ZIP.replace(/^(\.\.\/)+/, '')}), or pass \`-c lambdaZip=PATH\``;
  if (!fs.existsSync(p)) {
    throw new Error(
      `The Lambda package ${p} does not exist${given ? ' (context lambdaZip)' : ''}: ${hint}`,
    );
  }
  const st = fs.statSync(p);
  if (st.isDirectory()) {
    if (!fs.existsSync(path.join(p, 'bootstrap'))) {
      throw new Error(`The Lambda package folder ${p} has no bootstrap file: ${hint}`);
    }
    return;
  }
  const data = fs.readFileSync(p);
  if (data.length < 22 || data.readUInt32LE(0) !== 0x04034b50) {
    throw new Error(`The Lambda package ${p} is not a zip file: ${hint}`);
  }
  if (!zipHasRootEntry(data, 'bootstrap')) {
    throw new Error(`The Lambda package ${p} has no bootstrap at its root: ${hint}`);
  }
}

// Looks for an entry in the zip's central directory (no compression library needed for that).
function zipHasRootEntry(data: Buffer, name: string): boolean {
  // End of central directory record: signature 0x06054b50 within the last 64 KiB + 22 bytes.
  const from = Math.max(0, data.length - 0xffff - 22);
  let eocd = -1;
  for (let i = data.length - 22; i >= from; i--) {
    if (data.readUInt32LE(i) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) return false;
  const entries = data.readUInt16LE(eocd + 10);
  let off = data.readUInt32LE(eocd + 16);
  for (let n = 0; n < entries; n++) {
    if (off + 46 > data.length || data.readUInt32LE(off) !== 0x02014b50) return false;
    const nameLen = data.readUInt16LE(off + 28);
    const extraLen = data.readUInt16LE(off + 30);
    const commentLen = data.readUInt16LE(off + 32);
    const entry = data.toString('utf8', off + 46, off + 46 + nameLen);
    if (entry === name) return true;
    off += 46 + nameLen + extraLen + commentLen;
  }
  return false;
}

// Settings both stacks read the same way (docs/DEPLOY-AWS.md): prefix, removalPolicy,
// alarmEmail, logRetentionDays, maxReceiveCount.
export interface CommonSettings {
  readonly prefix: string;
  readonly removalPolicy: RemovalPolicy;
  readonly alarmEmail?: string;
  readonly logRetention: logs.RetentionDays;
  readonly maxReceiveCount: number;
}

export function readCommonSettings(get: ContextReader): CommonSettings {
  const prefix = str(get, 'prefix') ?? '';
  if (prefix.startsWith('/') || prefix.includes('*') || prefix.length > 512) {
    throw new Error(
      `context prefix: "${prefix}" must be a key prefix such as "images/" ` +
        '(no leading "/", no "*", at most 512 characters)',
    );
  }

  const rp = (str(get, 'removalPolicy') ?? 'retain').toLowerCase();
  const policies: Record<string, RemovalPolicy> = {
    retain: RemovalPolicy.RETAIN,
    destroy: RemovalPolicy.DESTROY,
  };
  const removalPolicy = policies[rp];
  if (removalPolicy === undefined) {
    throw new Error(`context removalPolicy: expected retain or destroy, got "${rp}"`);
  }

  const alarmEmail = str(get, 'alarmEmail');
  if (alarmEmail !== undefined && !/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(alarmEmail)) {
    throw new Error(`context alarmEmail: "${alarmEmail}" is not an email address`);
  }

  const retention = int(get, 'logRetentionDays', 1, 3653) ?? 90;
  if (!RETENTION_DAYS.has(retention)) {
    throw new Error(
      `context logRetentionDays: ${retention} is not one CloudWatch Logs accepts ` +
        `(${[...RETENTION_DAYS].filter((d) => d > 0).sort((a, b) => a - b).join(', ')})`,
    );
  }

  return {
    prefix,
    removalPolicy,
    alarmEmail,
    logRetention: retention as logs.RetentionDays,
    maxReceiveCount: int(get, 'maxReceiveCount', 1, 1000) ?? 5,
  };
}

export function readSettings(get: ContextReader): DeleteSyncSettings {
  const { prefix, removalPolicy, alarmEmail, logRetention, maxReceiveCount } = readCommonSettings(get);
  const zipGiven = str(get, 'lambdaZip');
  const lambdaCode = path.resolve(APP_DIR, zipGiven ?? DEFAULT_LAMBDA_ZIP);
  checkLambdaCode(lambdaCode, zipGiven !== undefined);

  const bucketName = str(get, 'bucketName');
  if (bucketName !== undefined) checkBucketName(bucketName);

  let reconcileSchedule: string | undefined = str(get, 'reconcileSchedule') ?? 'rate(1 hour)';
  if (reconcileSchedule === 'off') {
    reconcileSchedule = undefined;
  } else if (!/^(rate\(\d+ (minute|minutes|hour|hours|day|days)\)|cron\([^()]+\))$/.test(reconcileSchedule)) {
    throw new Error(
      `context reconcileSchedule: "${reconcileSchedule}" is not an EventBridge schedule ` +
        'expression such as "rate(1 hour)", "rate(30 minutes)" or "cron(0 3 * * ? *)"; "off" for none',
    );
  }

  const syncTimeoutS = int(get, 'syncTimeoutSeconds', 10, 900) ?? 300;
  const eraseTimeoutS = int(get, 'eraseTimeoutSeconds', 10, 900) ?? 900;

  const logLevel = str(get, 'logLevel') ?? 'info';
  if (!['trace', 'debug', 'info', 'warn', 'error', 'off'].includes(logLevel)) {
    throw new Error(`context logLevel: expected trace, debug, info, warn, error or off, got "${logLevel}"`);
  }

  let existingVpc: ExistingVpc | undefined;
  const vpcId = str(get, 'existingVpcId');
  const subnetIds = list(get, 'existingSubnetIds');
  const azs = list(get, 'existingAvailabilityZones');
  const routeTableIds = list(get, 'existingRouteTableIds');
  if (vpcId !== undefined) {
    if (!/^vpc-[0-9a-f]{8,17}$/.test(vpcId)) {
      throw new Error(`context existingVpcId: "${vpcId}" is not a VPC id (vpc-...)`);
    }
    if (subnetIds === undefined || subnetIds.length === 0) {
      throw new Error(
        'context existingVpcId needs existingSubnetIds: the private subnets (comma-separated) ' +
          'for the functions and the EFS mount targets',
      );
    }
    for (const s of subnetIds) {
      if (!/^subnet-[0-9a-f]{8,17}$/.test(s)) throw new Error(`context existingSubnetIds: "${s}" is not a subnet id`);
    }
    if (azs === undefined || azs.length !== subnetIds.length) {
      throw new Error(
        'context existingVpcId needs existingAvailabilityZones: the AZ of each subnet of ' +
          'existingSubnetIds, in the same order (aws ec2 describe-subnets shows them)',
      );
    }
    if (new Set(azs).size !== azs.length) {
      throw new Error('context existingAvailabilityZones: give one subnet per availability zone');
    }
    if (routeTableIds !== undefined) {
      if (routeTableIds.length !== subnetIds.length) {
        throw new Error('context existingRouteTableIds: give one route table per subnet, in the same order');
      }
      for (const r of routeTableIds) {
        if (!/^rtb-[0-9a-f]{8,17}$/.test(r)) throw new Error(`context existingRouteTableIds: "${r}" is not a route table id`);
      }
    }
    existingVpc = { vpcId, subnetIds, availabilityZones: azs, routeTableIds };
  } else if (subnetIds !== undefined || azs !== undefined || routeTableIds !== undefined) {
    throw new Error('context existingSubnetIds/existingAvailabilityZones/existingRouteTableIds need existingVpcId');
  }

  const createEndpoints = bool(get, 'createEndpoints') ?? existingVpc === undefined;
  if (createEndpoints && existingVpc !== undefined && existingVpc.routeTableIds === undefined) {
    throw new Error(
      'context createEndpoints=true with existingVpcId needs existingRouteTableIds (the S3 gateway ' +
        'endpoint is added to those route tables)',
    );
  }

  let existingFileSystem: ExistingFileSystem | undefined;
  const fsId = str(get, 'existingFileSystemId');
  const fsSg = str(get, 'existingFileSystemSecurityGroupId');
  if (fsId !== undefined) {
    if (!/^fs-[0-9a-f]{8,17}$/.test(fsId)) {
      throw new Error(`context existingFileSystemId: "${fsId}" is not an EFS file system id (fs-...)`);
    }
    if (fsSg === undefined || !/^sg-[0-9a-f]{8,17}$/.test(fsSg)) {
      throw new Error(
        'context existingFileSystemId needs existingFileSystemSecurityGroupId: the security group ' +
          '(sg-...) of its mount targets',
      );
    }
    if (existingVpc === undefined) {
      throw new Error(
        'context existingFileSystemId needs existingVpcId (and its subnets): the functions must run ' +
          'in the VPC where the file system has its mount targets',
      );
    }
    existingFileSystem = { fileSystemId: fsId, securityGroupId: fsSg };
  } else if (fsSg !== undefined) {
    throw new Error('context existingFileSystemSecurityGroupId needs existingFileSystemId');
  }

  const syncMaxConcurrency = int(get, 'syncMaxConcurrency', 2, 1000) ?? 2;
  const syncReservedConcurrency = int(get, 'syncReservedConcurrency', 1, 1000);
  if (syncReservedConcurrency !== undefined && syncReservedConcurrency < syncMaxConcurrency + 1) {
    throw new Error(
      `context syncReservedConcurrency: ${syncReservedConcurrency} must exceed syncMaxConcurrency ` +
        `(${syncMaxConcurrency}) by at least one, so that the scheduled reconcile is not throttled ` +
        'and SQS batches are not throttled back to the queue',
    );
  }

  const expireAfterDays = int(get, 'expireAfterDays', 1, 36500);

  return {
    lambdaCode,
    bucketName,
    prefix,
    removalPolicy,
    reconcileSchedule,
    alarmEmail,
    syncTimeout: Duration.seconds(syncTimeoutS),
    eraseTimeout: Duration.seconds(eraseTimeoutS),
    syncReservedConcurrency,
    eraseReservedConcurrency: int(get, 'eraseReservedConcurrency', 1, 1000),
    syncMaxConcurrency,
    batchSize: int(get, 'batchSize', 1, 10) ?? 10,
    maxReceiveCount,
    logRetention,
    logLevel,
    memorySize: int(get, 'memorySize', 128, 10240) ?? 512,
    existingVpc,
    createEndpoints,
    lambdaEndpoint: bool(get, 'lambdaEndpoint') ?? true,
    existingFileSystem,
    expireAfterDays,
  };
}
