// cdk-nag (AwsSolutionsChecks) acknowledgements shared by both stacks. Each acknowledges one
// finding id (cdk-nag 3 reports a wildcard or a managed policy as `Rule[Finding]`, and an
// acknowledgement matches that exact id only), on the construct that has it, with its reason.
// Everything acknowledged here is listed in docs/DEPLOY-AWS.md ("cdk-nag").
import { CfnElement, Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { IConstruct } from 'constructs';

// Tests switch this off to show that each acknowledgement hides a real finding.
export const nagSettings = { acknowledge: true };

export function acknowledge(scope: IConstruct, id: string, reason: string): void {
  if (nagSettings.acknowledge) Validations.of(scope).acknowledge({ id, reason });
}

// The finding id cdk-nag gives `arn:...:BUCKET/PREFIX*` in an IAM policy of this stack.
export function objectsWildcardFinding(bucket: s3.IBucket, prefix: string): string {
  const stack = Stack.of(bucket);
  const cfn = bucket.node.defaultChild;
  // A bucket of this stack appears as <LogicalId.Arn>; an imported one (Bucket.fromBucketName)
  // as its ARN with the partition pseudo parameter.
  const arn =
    cfn === undefined
      ? `arn:<AWS::Partition>:s3:::${bucket.bucketName}`
      : `<${stack.resolve(stack.getLogicalId(cfn as CfnElement))}.Arn>`;
  return `AwsSolutions-IAM5[Resource::${arn}/${prefix}*]`;
}

export const OBJECTS_WILDCARD_REASON =
  'Object-level S3 actions take object ARNs: the only wildcard is the key after this bucket and ' +
  'the configured prefix (BUCKET/PREFIX*), which is exactly the set of objects mirrored';

// CDK's singleton function that writes a bucket's notification configuration at deploy time
// (BucketNotificationsHandler...) has a role with AWSLambdaBasicExecutionRole. Its log group
// name is only known once CloudFormation names the function, so the logs grant cannot be narrowed
// to it without a wildcard either; it runs only while a stack is deployed.
export function acknowledgeNotificationsHandler(stack: Stack): void {
  for (const child of stack.node.children) {
    if (child.node.id.startsWith('BucketNotificationsHandler')) {
      acknowledge(
        child,
        'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
        "CDK's own bucket-notifications custom resource handler (runs only during deployment); the " +
          'managed policy grants only logs:CreateLogGroup/CreateLogStream/PutLogEvents, and a ' +
          'narrower grant would still need a wildcard on the log group name CloudFormation generates',
      );
    }
  }
}

// A bucket for S3 server access logs (and VPC flow logs), objects expired after `days`. Access
// logs name object keys, which can be personal data: they expire like the other logs. cdk-nag's S1
// does not ask a bucket that is another bucket's access-log destination to log itself, so the
// caller must point a bucket's serverAccessLogsBucket at it.
export function makeLogBucket(scope: IConstruct, id: string, removalPolicy: RemovalPolicy, days: number): s3.Bucket {
  const bucket = new s3.Bucket(scope as any, id, {
    encryption: s3.BucketEncryption.S3_MANAGED,
    blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
    enforceSSL: true,
    objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
    removalPolicy,
    autoDeleteObjects: removalPolicy === RemovalPolicy.DESTROY,
    lifecycleRules: [{ id: 'expire-logs', expiration: Duration.days(days) }],
  });
  return bucket;
}
