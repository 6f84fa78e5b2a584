// The GPU-fleet stack: the bucket's notifications to an SNS topic, one SQS queue per node group,
// and the IAM managed policy each group's node role attaches.
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import { readFleetSettings } from '../lib/fleet-settings';
import { actionsOf, cleanup, iamStatements, logicalId, resourcesOf, synthFleet } from './helpers';

let t: Template;
const arn = (id: string) => ({ 'Fn::GetAtt': [id, 'Arn'] });

beforeAll(() => {
  const built = synthFleet({ prefix: 'images/' });
  t = built.template;
  Annotations.fromStack(built.stack).hasNoWarning('*', Match.anyValue());
  Annotations.fromStack(built.stack).hasNoError('*', Match.anyValue());
});

afterAll(cleanup);

describe('bucket and topic', () => {
  test('a new bucket: S3-managed encryption, private, TLS only, access logs to a log bucket, retained', () => {
    const bucket = logicalId(t, 'AWS::S3::Bucket', 'Bucket');
    t.hasResource('AWS::S3::Bucket', {
      Properties: {
        BucketEncryption: {
          ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
        },
        OwnershipControls: { Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] },
        LoggingConfiguration: {
          DestinationBucketName: { Ref: logicalId(t, 'AWS::S3::Bucket', 'LogBucket') },
          LogFilePrefix: 'access-logs/',
        },
      },
      DeletionPolicy: 'Retain',
    });
    expect(resourcesOf(t, 'AWS::S3::Bucket')[bucket]).toBeDefined();
    t.resourceCountIs('AWS::S3::Bucket', 2);
  });

  test('creations, removals and lifecycle expirations under the prefix go to the topic', () => {
    const topic = logicalId(t, 'AWS::SNS::Topic', 'EventTopic');
    const filter = { Key: { FilterRules: [{ Name: 'prefix', Value: 'images/' }] } };
    t.hasResourceProperties('Custom::S3BucketNotifications', {
      NotificationConfiguration: {
        TopicConfigurations: [
          { Events: ['s3:ObjectCreated:*'], TopicArn: { Ref: topic }, Filter: filter },
          { Events: ['s3:ObjectRemoved:*'], TopicArn: { Ref: topic }, Filter: filter },
          { Events: ['s3:LifecycleExpiration:*'], TopicArn: { Ref: topic }, Filter: filter },
        ],
      },
    });
  });

  test('only this bucket may publish to the topic, over TLS', () => {
    const topic = logicalId(t, 'AWS::SNS::Topic', 'EventTopic');
    const policy = Object.values(resourcesOf(t, 'AWS::SNS::TopicPolicy')).find(
      (p: any) => p.Properties.Topics[0].Ref === topic,
    ) as any;
    expect(policy.Properties.PolicyDocument.Statement).toEqual([
      {
        Sid: 'AllowPublishThroughSSLOnly',
        Effect: 'Deny',
        Principal: '*',
        Action: 'sns:Publish',
        Resource: { Ref: topic },
        Condition: { Bool: { 'aws:SecureTransport': 'false' } },
      },
      {
        Sid: '1',
        Effect: 'Allow',
        Principal: { Service: 's3.amazonaws.com' },
        Action: 'sns:Publish',
        Resource: { Ref: topic },
        Condition: { ArnLike: { 'aws:SourceArn': arn(logicalId(t, 'AWS::S3::Bucket', 'Bucket')) } },
      },
    ]);
  });
});

describe('one queue per node group', () => {
  test.each(['GpuA', 'GpuB'])('%s: encrypted, long polling, 4 days, a dead-letter queue after 5 receives', (g) => {
    const q = logicalId(t, 'AWS::SQS::Queue', `Group${g}Queue`);
    const dlq = logicalId(t, 'AWS::SQS::Queue', `Group${g}DeadLetterQueue`);
    const queues = resourcesOf(t, 'AWS::SQS::Queue');
    expect(queues[q].Properties).toEqual({
      SqsManagedSseEnabled: true,
      VisibilityTimeout: 300,
      MessageRetentionPeriod: 4 * 86400,
      ReceiveMessageWaitTimeSeconds: 20,
      RedrivePolicy: { deadLetterTargetArn: arn(dlq), maxReceiveCount: 5 },
      Tags: [{ Key: 'project', Value: 'delete-sync' }],
    });
    expect(queues[q].DeletionPolicy).toBe('Retain');
    expect(queues[dlq].Properties).toEqual({
      SqsManagedSseEnabled: true,
      MessageRetentionPeriod: 14 * 86400,
      Tags: [{ Key: 'project', Value: 'delete-sync' }],
    });
  });

  test.each(['GpuA', 'GpuB'])('%s: subscribed to the topic with raw delivery, SNS failures to its dead-letter queue', (g) => {
    const q = logicalId(t, 'AWS::SQS::Queue', `Group${g}Queue`);
    const dlq = logicalId(t, 'AWS::SQS::Queue', `Group${g}DeadLetterQueue`);
    t.hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'sqs',
      Endpoint: arn(q),
      TopicArn: { Ref: logicalId(t, 'AWS::SNS::Topic', 'EventTopic') },
      RawMessageDelivery: true,
      RedrivePolicy: { deadLetterTargetArn: arn(dlq) },
    });
  });

  test('two groups, two subscriptions, no filter policy (every group gets every event)', () => {
    t.resourceCountIs('AWS::SQS::Queue', 4);
    const subs = Object.values(resourcesOf(t, 'AWS::SNS::Subscription')) as any[];
    expect(subs).toHaveLength(2);
    for (const s of subs) expect(s.Properties.FilterPolicy).toBeUndefined();
  });

  test('only the topic may send to a queue (and its dead-letter queue), over TLS', () => {
    const topic = logicalId(t, 'AWS::SNS::Topic', 'EventTopic');
    for (const [, p] of Object.entries(resourcesOf(t, 'AWS::SQS::QueuePolicy')) as [string, any][]) {
      const queue = p.Properties.Queues[0].Ref;
      expect(p.Properties.PolicyDocument.Statement).toEqual([
        {
          Effect: 'Deny',
          Principal: { AWS: '*' },
          Action: 'sqs:*',
          Resource: arn(queue),
          Condition: { Bool: { 'aws:SecureTransport': 'false' } },
        },
        {
          Effect: 'Allow',
          Principal: { Service: 'sns.amazonaws.com' },
          Action: 'sqs:SendMessage',
          Resource: arn(queue),
          Condition: { ArnEquals: { 'aws:SourceArn': { Ref: topic } } },
        },
      ]);
    }
    t.resourceCountIs('AWS::SQS::QueuePolicy', 4);
  });

  test.each(['GpuA', 'GpuB'])('%s: an alarm when its dead-letter queue holds a message', (g) => {
    const dlq = logicalId(t, 'AWS::SQS::Queue', `Group${g}DeadLetterQueue`);
    t.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AWS/SQS',
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [dlq, 'QueueName'] } }],
      Statistic: 'Maximum',
      Period: 300,
      Threshold: 0,
      ComparisonOperator: 'GreaterThanThreshold',
      EvaluationPeriods: 1,
      TreatMissingData: 'notBreaching',
      AlarmActions: [{ Ref: logicalId(t, 'AWS::SNS::Topic', 'AlarmTopic') }],
    });
  });
});

describe('IAM for the node roles', () => {
  test.each(['GpuA', 'GpuB'])('%s: its own queue, the objects under the prefix, a listing of the prefix', (g) => {
    const q = logicalId(t, 'AWS::SQS::Queue', `Group${g}Queue`);
    const bucket = logicalId(t, 'AWS::S3::Bucket', 'Bucket');
    const policy = resourcesOf(t, 'AWS::IAM::ManagedPolicy')[logicalId(t, 'AWS::IAM::ManagedPolicy', `Group${g}NodePolicy`)];
    expect(policy.Properties.PolicyDocument.Statement).toEqual([
      {
        Sid: 'ConsumeOwnQueue',
        Effect: 'Allow',
        Action: ['sqs:ChangeMessageVisibility', 'sqs:DeleteMessage', 'sqs:GetQueueAttributes', 'sqs:ReceiveMessage'],
        Resource: arn(q),
      },
      {
        Sid: 'ReadObjects',
        Effect: 'Allow',
        Action: ['s3:GetObject', 's3:GetObjectVersion'],
        Resource: { 'Fn::Join': ['', [arn(bucket), '/images/*']] },
      },
      {
        Sid: 'ListBucket',
        Effect: 'Allow',
        Action: 's3:ListBucket',
        Resource: arn(bucket),
        Condition: { StringLike: { 's3:prefix': ['images/*'] } },
      },
    ]);
    // Attached to nothing: the node roles are the operator's (EC2, EKS, HyperPod).
    expect(policy.Properties.Roles).toBeUndefined();
  });

  test('no write, delete or wildcard action anywhere in the node policies', () => {
    for (const { policy, statement } of iamStatements(t)) {
      if (!policy.includes('NodePolicy')) continue;
      for (const a of actionsOf(statement)) {
        expect(a).not.toContain('*');
        expect(a).not.toMatch(/^s3:(Put|Delete)|^sqs:(Send|Purge|Delete[^M])/);
      }
    }
  });

  test('outputs: queue URLs, dead-letter queue URLs and policy ARNs per group, the topic, the bucket', () => {
    const outputs = t.toJSON().Outputs;
    for (const g of ['GpuA', 'GpuB']) {
      expect(outputs[`QueueUrl${g}`].Value).toEqual({ Ref: logicalId(t, 'AWS::SQS::Queue', `Group${g}Queue`) });
      expect(outputs[`DeadLetterQueueUrl${g}`].Value).toEqual({ Ref: logicalId(t, 'AWS::SQS::Queue', `Group${g}DeadLetterQueue`) });
      expect(outputs[`NodePolicyArn${g}`].Value).toEqual({ Ref: logicalId(t, 'AWS::IAM::ManagedPolicy', `Group${g}NodePolicy`) });
    }
    expect(Object.keys(outputs).sort()).toEqual(
      [
        'AlarmTopicArn',
        'BucketName',
        'DeadLetterQueueUrlGpuA',
        'DeadLetterQueueUrlGpuB',
        'EventTopicArn',
        'LogBucketName',
        'NodePolicyArnGpuA',
        'NodePolicyArnGpuB',
        'QueueUrlGpuA',
        'QueueUrlGpuB',
      ].sort(),
    );
  });
});

describe('variants', () => {
  test('an existing bucket is imported (not created, no log bucket), its ARN in the policies', () => {
    const v = synthFleet({ existingBucketName: 'training-data', nodeGroups: 'h100' }).template;
    v.resourceCountIs('AWS::S3::Bucket', 0);
    v.resourceCountIs('AWS::SQS::Queue', 2);
    // The notifications handler leaves the bucket's other notifications alone (Managed: false).
    v.hasResourceProperties('Custom::S3BucketNotifications', {
      BucketName: 'training-data',
      Managed: false,
    });
    const statements = (Object.values(resourcesOf(v, 'AWS::IAM::ManagedPolicy'))[0] as any).Properties.PolicyDocument.Statement;
    expect(statements[1].Resource).toEqual({ 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':s3:::training-data/*']] });
    // Without a prefix the listing has no condition.
    expect(statements[2].Condition).toBeUndefined();
    expect(v.toJSON().Outputs.QueueUrlH100).toBeDefined();
  });

  test('no prefix: every event, objects anywhere in the bucket', () => {
    const v = synthFleet().template;
    const config = (Object.values(resourcesOf(v, 'Custom::S3BucketNotifications'))[0] as any).Properties.NotificationConfiguration;
    for (const c of config.TopicConfigurations) expect(c.Filter).toBeUndefined();
  });

  test('rawMessageDelivery=false, retention, visibility, maxReceiveCount, e-mail, destroy', () => {
    const v = synthFleet({
      rawMessageDelivery: 'false',
      queueRetentionDays: '7',
      visibilityTimeoutSeconds: '900',
      maxReceiveCount: '3',
      alarmEmail: 'ops@example.com',
      removalPolicy: 'destroy',
      nodeGroups: 'a',
    }).template;
    v.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'sqs', RawMessageDelivery: false });
    v.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: 'ops@example.com' });
    const q = resourcesOf(v, 'AWS::SQS::Queue')[logicalId(v, 'AWS::SQS::Queue', 'GroupAQueue')];
    expect(q.Properties.MessageRetentionPeriod).toBe(7 * 86400);
    expect(q.Properties.VisibilityTimeout).toBe(900);
    expect(q.Properties.RedrivePolicy.maxReceiveCount).toBe(3);
    expect(q.DeletionPolicy).toBe('Delete');
    v.resourceCountIs('Custom::S3AutoDeleteObjects', 2);
  });
});

describe('fleet settings', () => {
  const read = (ctx: Record<string, unknown>) => readFleetSettings((k) => ctx[k]);
  test.each([
    [{}, /context nodeGroups: the fleet stack needs the node groups/],
    [{ nodeGroups: 'GPU' }, /"GPU" is not a node group name/],
    [{ nodeGroups: 'gpu-a,gpu--a' }, /"gpu--a" and "gpu-a" name the same group \(GpuA\)/],
    [{ nodeGroups: 'a', bucketName: 'x-bucket', existingBucketName: 'y-bucket' }, /give one of them/],
    [{ nodeGroups: 'a', existingBucketName: 'Bad_Name' }, /not a valid S3 bucket name/],
    [{ nodeGroups: 'a', queueRetentionDays: '14' }, /queueRetentionDays: 14 is not within 1..13/],
    [{ nodeGroups: 'a', visibilityTimeoutSeconds: '5' }, /visibilityTimeoutSeconds: 5 is not within 30..43200/],
    [{ nodeGroups: 'a', rawMessageDelivery: 'yes' }, /rawMessageDelivery: expected true or false/],
    [{ nodeGroups: 'a', prefix: '/images' }, /context prefix/],
  ])('refuses %j', (ctx, message) => {
    expect(() => read(ctx)).toThrow(message);
  });

  test('defaults', () => {
    const s = read({ nodeGroups: 'gpu-a, gpu-b' });
    expect(s.nodeGroups).toEqual(['gpu-a', 'gpu-b']);
    expect(s.queueRetention.toDays()).toBe(4);
    expect(s.visibilityTimeout.toSeconds()).toBe(300);
    expect(s.rawMessageDelivery).toBe(true);
    expect(s.maxReceiveCount).toBe(5);
    expect(s.prefix).toBe('');
  });
});
