// Settings of the GPU-fleet stack (lib/fleet-stack.ts), read from the CDK context like those of
// the Lambda stack (lib/settings.ts); docs/DEPLOY-AWS.md lists them.
import { Duration } from 'aws-cdk-lib';
import { bool, checkBucketName, CommonSettings, ContextReader, int, list, readCommonSettings, str } from './settings';

export interface FleetSettings extends CommonSettings {
  // One SQS queue (with its dead-letter queue, alarm and IAM policy) per node group.
  readonly nodeGroups: string[];
  // The bucket to mirror, when it exists already (imported by name, not created).
  readonly existingBucketName?: string;
  // The name of the bucket the stack creates (without existingBucketName); generated when unset.
  readonly bucketName?: string;
  readonly queueRetention: Duration;
  readonly visibilityTimeout: Duration;
  // SNS raw message delivery: the queue's message body is the S3 notification itself, not the
  // SNS envelope around it.
  readonly rawMessageDelivery: boolean;
}

export const NODE_GROUP_NAME = /^[a-z][a-z0-9-]{0,39}$/;

// The id used for a node group's outputs (QueueUrlGpuA): letters and digits only.
export function nodeGroupOutputId(name: string): string {
  return name
    .split('-')
    .filter((p) => p !== '')
    .map((p) => p[0].toUpperCase() + p.slice(1))
    .join('');
}

export function readFleetSettings(get: ContextReader): FleetSettings {
  const common = readCommonSettings(get);

  const nodeGroups = list(get, 'nodeGroups');
  if (nodeGroups === undefined || nodeGroups.length === 0) {
    throw new Error(
      'context nodeGroups: the fleet stack needs the node groups, comma-separated ' +
        '(-c nodeGroups=gpu-a,gpu-b): one queue and one IAM policy each',
    );
  }
  if (nodeGroups.length > 50) throw new Error(`context nodeGroups: ${nodeGroups.length} groups; at most 50`);
  const seen = new Map<string, string>();
  for (const g of nodeGroups) {
    if (!NODE_GROUP_NAME.test(g)) {
      throw new Error(
        `context nodeGroups: "${g}" is not a node group name (a lower-case letter, then lower-case ` +
          'letters, digits and "-", at most 40 characters)',
      );
    }
    const id = nodeGroupOutputId(g);
    if (seen.has(id)) throw new Error(`context nodeGroups: "${g}" and "${seen.get(id)}" name the same group (${id})`);
    seen.set(id, g);
  }

  const existingBucketName = str(get, 'existingBucketName');
  const bucketName = str(get, 'bucketName');
  if (existingBucketName !== undefined) checkBucketName(existingBucketName);
  if (bucketName !== undefined) checkBucketName(bucketName);
  if (existingBucketName !== undefined && bucketName !== undefined) {
    throw new Error('context bucketName names a bucket to create; existingBucketName one to use: give one of them');
  }

  // The dead-letter queues keep 14 days (the most SQS allows); a message moved there keeps its
  // first enqueue time, so the queues must keep less.
  const queueRetentionDays = int(get, 'queueRetentionDays', 1, 13) ?? 4;
  const visibilityTimeoutSeconds = int(get, 'visibilityTimeoutSeconds', 30, 43200) ?? 300;

  return {
    ...common,
    nodeGroups,
    existingBucketName,
    bucketName,
    queueRetention: Duration.days(queueRetentionDays),
    visibilityTimeout: Duration.seconds(visibilityTimeoutSeconds),
    rawMessageDelivery: bool(get, 'rawMessageDelivery') ?? true,
  };
}
