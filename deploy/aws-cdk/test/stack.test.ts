import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import { actionsOf, cleanup, iamStatements, logicalId, resourcesOf, synth } from './helpers';

// The default stack (new VPC and file system, retain) is synthesized once for the read-only checks.
let t: Template;
let ids: {
  bucket: string;
  fs: string;
  ap: string;
  queue: string;
  dlq: string;
  sync: string;
  erase: string;
  syncRole: string;
  eraseRole: string;
  topic: string;
  fnSg: string;
  efsSg: string;
};

beforeAll(() => {
  const built = synth();
  t = built.template;
  Annotations.fromStack(built.stack).hasNoWarning('*', Match.anyValue());
  Annotations.fromStack(built.stack).hasNoError('*', Match.anyValue());
  ids = {
    bucket: logicalId(t, 'AWS::S3::Bucket', 'Bucket'),
    fs: logicalId(t, 'AWS::EFS::FileSystem', 'FileSystem'),
    ap: logicalId(t, 'AWS::EFS::AccessPoint', 'AccessPoint'),
    queue: logicalId(t, 'AWS::SQS::Queue', 'EventQueue'),
    dlq: logicalId(t, 'AWS::SQS::Queue', 'DeadLetterQueue'),
    sync: logicalId(t, 'AWS::Lambda::Function', 'SyncFunction'),
    erase: logicalId(t, 'AWS::Lambda::Function', 'EraseFunction'),
    syncRole: logicalId(t, 'AWS::IAM::Role', 'SyncFunctionServiceRole'),
    eraseRole: logicalId(t, 'AWS::IAM::Role', 'EraseFunctionServiceRole'),
    topic: logicalId(t, 'AWS::SNS::Topic', 'AlarmTopic'),
    fnSg: logicalId(t, 'AWS::EC2::SecurityGroup', 'FunctionSecurityGroup'),
    efsSg: logicalId(t, 'AWS::EC2::SecurityGroup', 'FileSystemEfsSecurityGroup'),
  };
});

afterAll(cleanup);

const arn = (id: string) => ({ 'Fn::GetAtt': [id, 'Arn'] });
const accessPointArn = () => ({
  'Fn::Join': [
    '',
    [
      'arn:',
      { Ref: 'AWS::Partition' },
      ':elasticfilesystem:',
      { Ref: 'AWS::Region' },
      ':',
      { Ref: 'AWS::AccountId' },
      ':access-point/',
      { Ref: ids.ap },
    ],
  ],
});
const objectsArn = (prefix: string) => ({ 'Fn::Join': ['', [arn(ids.bucket), `/${prefix}*`]] });

// What each function's own role has before its S3/EFS/SQS rights: its log group, the VPC's
// network interfaces (AWSLambdaVPCAccessExecutionRole's ec2 actions, without the managed policy).
const roleBase = (logGroupPrefix: string) => [
  {
    Sid: 'OwnLogGroup',
    Effect: 'Allow',
    Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
    Resource: arn(logicalId(t, 'AWS::Logs::LogGroup', logGroupPrefix)),
  },
  {
    Sid: 'VpcNetworkInterfaces',
    Effect: 'Allow',
    Action: [
      'ec2:AssignPrivateIpAddresses',
      'ec2:CreateNetworkInterface',
      'ec2:DeleteNetworkInterface',
      'ec2:DescribeNetworkInterfaces',
      'ec2:DescribeSubnets',
      'ec2:UnassignPrivateIpAddresses',
    ],
    Resource: '*',
  },
];

function policyOfRole(template: Template, roleId: string): any[] {
  const policies = Object.values(resourcesOf(template, 'AWS::IAM::Policy')).filter((p: any) =>
    (p.Properties.Roles as any[]).some((r) => r.Ref === roleId),
  );
  expect(policies).toHaveLength(1);
  return (policies[0] as any).Properties.PolicyDocument.Statement;
}

describe('network', () => {
  test('a VPC over two AZs with isolated subnets and no NAT or internet gateway', () => {
    t.resourceCountIs('AWS::EC2::VPC', 1);
    const subnets = Object.values(resourcesOf(t, 'AWS::EC2::Subnet')) as any[];
    expect(subnets).toHaveLength(2);
    const azs = subnets.map((s) => JSON.stringify(s.Properties.AvailabilityZone));
    expect(new Set(azs).size).toBe(2);
    for (const s of subnets) expect(s.Properties.MapPublicIpOnLaunch).toBe(false);
    t.resourceCountIs('AWS::EC2::NatGateway', 0);
    t.resourceCountIs('AWS::EC2::InternetGateway', 0);
  });

  test('an S3 gateway endpoint on both route tables and a Lambda interface endpoint', () => {
    const routeTables = Object.keys(resourcesOf(t, 'AWS::EC2::RouteTable'));
    expect(routeTables).toHaveLength(2);
    t.hasResourceProperties('AWS::EC2::VPCEndpoint', {
      VpcEndpointType: 'Gateway',
      ServiceName: { 'Fn::Join': ['', ['com.amazonaws.', { Ref: 'AWS::Region' }, '.s3']] },
      RouteTableIds: Match.arrayEquals(routeTables.map((id) => ({ Ref: id }))),
    });
    t.hasResourceProperties('AWS::EC2::VPCEndpoint', {
      VpcEndpointType: 'Interface',
      ServiceName: { 'Fn::Join': ['', ['com.amazonaws.', { Ref: 'AWS::Region' }, '.lambda']] },
      PrivateDnsEnabled: true,
      SubnetIds: Match.arrayEquals(Object.keys(resourcesOf(t, 'AWS::EC2::Subnet')).map((id) => ({ Ref: id }))),
    });
    t.resourceCountIs('AWS::EC2::VPCEndpoint', 2);
  });

  test('the functions may send only HTTPS and NFS (to the file system)', () => {
    const sg = resourcesOf(t, 'AWS::EC2::SecurityGroup')[ids.fnSg];
    expect(sg.Properties.SecurityGroupEgress).toEqual([
      expect.objectContaining({ CidrIp: '0.0.0.0/0', IpProtocol: 'tcp', FromPort: 443, ToPort: 443 }),
    ]);
    const egress = Object.values(resourcesOf(t, 'AWS::EC2::SecurityGroupEgress')).map((r: any) => r.Properties);
    for (const e of egress) {
      expect(e.GroupId).toEqual({ 'Fn::GetAtt': [ids.fnSg, 'GroupId'] });
      expect([443, 2049]).toContain(e.FromPort);
      expect(e.ToPort).toBe(e.FromPort);
    }
    expect(egress).toContainEqual(
      expect.objectContaining({ FromPort: 2049, DestinationSecurityGroupId: { 'Fn::GetAtt': [ids.efsSg, 'GroupId'] } }),
    );
    t.hasResourceProperties('AWS::EC2::SecurityGroupIngress', {
      GroupId: { 'Fn::GetAtt': [ids.efsSg, 'GroupId'] },
      SourceSecurityGroupId: { 'Fn::GetAtt': [ids.fnSg, 'GroupId'] },
      FromPort: 2049,
      ToPort: 2049,
      IpProtocol: 'tcp',
    });
  });
});

describe('EFS', () => {
  test('general purpose, bursting, to IA after 14 days, encrypted, retained by default', () => {
    t.hasResource('AWS::EFS::FileSystem', {
      Properties: Match.objectLike({
        PerformanceMode: 'generalPurpose',
        ThroughputMode: 'bursting',
        LifecyclePolicies: [{ TransitionToIA: 'AFTER_14_DAYS' }],
        Encrypted: true,
      }),
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
    });
    t.resourceCountIs('AWS::EFS::MountTarget', 2);
  });

  test('the access point /export/lambda, uid/gid 1001, mode 750', () => {
    t.resourceCountIs('AWS::EFS::AccessPoint', 1);
    t.hasResourceProperties('AWS::EFS::AccessPoint', {
      FileSystemId: { Ref: ids.fs },
      PosixUser: { Uid: '1001', Gid: '1001' },
      RootDirectory: {
        Path: '/export/lambda',
        CreationInfo: { OwnerUid: '1001', OwnerGid: '1001', Permissions: '750' },
      },
    });
  });
});

describe('functions', () => {
  test('custom runtime, x86_64, in the VPC, access point at /mnt/data, timeouts', () => {
    const subnets = Object.keys(resourcesOf(t, 'AWS::EC2::Subnet')).map((id) => ({ Ref: id }));
    for (const [id, timeout] of [
      [ids.sync, 300],
      [ids.erase, 900],
    ] as const) {
      const f = resourcesOf(t, 'AWS::Lambda::Function')[id].Properties;
      expect(f.Runtime).toBe('provided.al2023');
      expect(f.Architectures).toEqual(['x86_64']);
      expect(f.Handler).toBe('bootstrap');
      expect(f.Timeout).toBe(timeout);
      expect(f.VpcConfig.SubnetIds).toEqual(subnets);
      expect(f.VpcConfig.SecurityGroupIds).toEqual([{ 'Fn::GetAtt': [ids.fnSg, 'GroupId'] }]);
      expect(f.FileSystemConfigs).toEqual([{ Arn: accessPointArn(), LocalMountPath: '/mnt/data' }]);
      expect(f.Environment.Variables).toEqual({
        DELETE_SYNC_CACHE: '/mnt/data',
        DELETE_SYNC_BUCKET: { Ref: ids.bucket },
        DELETE_SYNC_STATE_JOURNAL: 'rollback',
        DELETE_SYNC_LOG_LEVEL: 'info',
        DELETE_SYNC_REQUIRE_MOUNT: 'true',
        DELETE_SYNC_FILE_MODE: '0640',
        DELETE_SYNC_DIR_MODE: '0750',
      });
      expect(f.ReservedConcurrentExecutions).toBeUndefined();
      // Both run from the same package.
      expect(f.Code).toEqual(resourcesOf(t, 'AWS::Lambda::Function')[ids.sync].Properties.Code);
    }
  });

  test('each function logs to its own group with a retention', () => {
    const groups = resourcesOf(t, 'AWS::Logs::LogGroup');
    for (const id of [ids.sync, ids.erase]) {
      const f = resourcesOf(t, 'AWS::Lambda::Function')[id].Properties;
      const groupId = f.LoggingConfig.LogGroup.Ref;
      expect(groups[groupId].Properties.RetentionInDays).toBe(90);
    }
    // No log group of ours without a retention (CDK's helper functions log to default groups).
    for (const g of Object.values(groups) as any[]) expect(g.Properties.RetentionInDays).toBeGreaterThan(0);
  });
});

describe('bucket', () => {
  test('S3-managed encryption, all public access blocked, ACLs disabled, retained by default', () => {
    t.hasResource('AWS::S3::Bucket', {
      Properties: Match.objectLike({
        BucketEncryption: {
          ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
        },
        PublicAccessBlockConfiguration: {
          BlockPublicAcls: true,
          BlockPublicPolicy: true,
          IgnorePublicAcls: true,
          RestrictPublicBuckets: true,
        },
        OwnershipControls: { Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] },
        BucketName: Match.absent(),
      }),
      DeletionPolicy: 'Retain',
    });
    t.resourceCountIs('Custom::S3AutoDeleteObjects', 0);
  });

  test('TLS is enforced by the bucket policy', () => {
    t.hasResourceProperties('AWS::S3::BucketPolicy', {
      Bucket: { Ref: ids.bucket },
      PolicyDocument: {
        Statement: Match.arrayWith([
          {
            Effect: 'Deny',
            Principal: { AWS: '*' },
            Action: 's3:*',
            Condition: { Bool: { 'aws:SecureTransport': 'false' } },
            Resource: [arn(ids.bucket), { 'Fn::Join': ['', [arn(ids.bucket), '/*']] }],
          },
        ]),
      },
    });
  });

  test('every creation, removal and lifecycle expiration is sent to the queue, nothing to a function', () => {
    t.resourceCountIs('Custom::S3BucketNotifications', 1);
    const n = (Object.values(resourcesOf(t, 'Custom::S3BucketNotifications'))[0] as any).Properties;
    expect(n.BucketName).toEqual({ Ref: ids.bucket });
    expect(n.NotificationConfiguration).toEqual({
      QueueConfigurations: [
        { Events: ['s3:ObjectCreated:*'], QueueArn: arn(ids.queue) },
        { Events: ['s3:ObjectRemoved:*'], QueueArn: arn(ids.queue) },
        { Events: ['s3:LifecycleExpiration:*'], QueueArn: arn(ids.queue) },
      ],
    });
  });
});

describe('logs of the bucket and of the VPC (cdk-nag S1, VPC7)', () => {
  test('a log bucket: encrypted, private, TLS only, objects expire with the log retention', () => {
    const logBucket = logicalId(t, 'AWS::S3::Bucket', 'LogBucket');
    t.hasResource('AWS::S3::Bucket', {
      Properties: {
        BucketEncryption: {
          ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
        },
        PublicAccessBlockConfiguration: {
          BlockPublicAcls: true,
          BlockPublicPolicy: true,
          IgnorePublicAcls: true,
          RestrictPublicBuckets: true,
        },
        OwnershipControls: { Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] },
        LifecycleConfiguration: { Rules: [{ Id: 'expire-logs', Status: 'Enabled', ExpirationInDays: 90 }] },
      },
      DeletionPolicy: 'Retain',
    });
    expect(resourcesOf(t, 'AWS::S3::Bucket')[logBucket].Properties.LoggingConfiguration).toBeUndefined();
    // S3 delivers the access logs under the bucket policy (no ACLs), over TLS only.
    const policy = Object.values(resourcesOf(t, 'AWS::S3::BucketPolicy')).find(
      (p: any) => p.Properties.Bucket.Ref === logBucket,
    ) as any;
    const statements = policy.Properties.PolicyDocument.Statement;
    expect(statements.some((s: any) => s.Effect === 'Deny' && s.Condition?.Bool?.['aws:SecureTransport'] === 'false')).toBe(true);
    expect(
      statements.some((s: any) => s.Effect === 'Allow' && s.Principal?.Service === 'logging.s3.amazonaws.com'),
    ).toBe(true);
  });

  test('the bucket logs its accesses to the log bucket under access-logs/', () => {
    t.hasResourceProperties('AWS::S3::Bucket', {
      LoggingConfiguration: {
        DestinationBucketName: { Ref: logicalId(t, 'AWS::S3::Bucket', 'LogBucket') },
        LogFilePrefix: 'access-logs/',
      },
    });
  });

  test('a flow log of all the VPC traffic to the log bucket under vpc-flow-logs/', () => {
    t.resourceCountIs('AWS::EC2::FlowLog', 1);
    t.hasResourceProperties('AWS::EC2::FlowLog', {
      ResourceType: 'VPC',
      ResourceId: { Ref: logicalId(t, 'AWS::EC2::VPC', 'Vpc') },
      TrafficType: 'ALL',
      LogDestinationType: 's3',
      LogDestination: { 'Fn::Join': ['', [arn(logicalId(t, 'AWS::S3::Bucket', 'LogBucket')), '/vpc-flow-logs/']] },
    });
  });
});

describe('queue, dead letters and alarms', () => {
  test('the queue: encrypted, visibility >= 6x the function timeout, a dead-letter queue', () => {
    const queues = resourcesOf(t, 'AWS::SQS::Queue');
    const q = queues[ids.queue].Properties;
    const timeout = resourcesOf(t, 'AWS::Lambda::Function')[ids.sync].Properties.Timeout;
    expect(q.VisibilityTimeout).toBeGreaterThanOrEqual(6 * timeout);
    expect(q.SqsManagedSseEnabled).toBe(true);
    expect(q.RedrivePolicy).toEqual({ deadLetterTargetArn: arn(ids.dlq), maxReceiveCount: 5 });
    expect(q.MessageRetentionPeriod).toBe(4 * 24 * 3600);
    expect(queues[ids.dlq].Properties.SqsManagedSseEnabled).toBe(true);
    expect(queues[ids.dlq].Properties.MessageRetentionPeriod).toBe(14 * 24 * 3600);
  });

  test('only this bucket may send to the queue, over TLS', () => {
    t.hasResourceProperties('AWS::SQS::QueuePolicy', {
      Queues: [{ Ref: ids.queue }],
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Action: 'sqs:*', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
          {
            Effect: 'Allow',
            Principal: { Service: 's3.amazonaws.com' },
            Action: Match.arrayWith(['sqs:SendMessage']),
            Condition: { ArnLike: { 'aws:SourceArn': arn(ids.bucket) } },
            Resource: arn(ids.queue),
          },
        ]),
      },
    });
  });

  test('an alarm on the dead-letter queue depth notifies the topic', () => {
    t.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AWS/SQS',
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [ids.dlq, 'QueueName'] } }],
      ComparisonOperator: 'GreaterThanThreshold',
      Threshold: 0,
      EvaluationPeriods: 1,
      AlarmActions: [{ Ref: ids.topic }],
    });
    t.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AWS/Lambda',
      MetricName: 'Errors',
      Dimensions: [{ Name: 'FunctionName', Value: { Ref: ids.sync } }],
      AlarmActions: [{ Ref: ids.topic }],
    });
    t.hasResourceProperties('AWS::SNS::TopicPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: 'Allow',
            Principal: { Service: 'cloudwatch.amazonaws.com' },
            Action: 'sns:Publish',
            Condition: { StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } } },
          }),
        ]),
      },
    });
    t.resourceCountIs('AWS::SNS::Subscription', 0);
  });

  test('the sync function reads the queue and reports batch item failures', () => {
    t.resourceCountIs('AWS::Lambda::EventSourceMapping', 1);
    t.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      EventSourceArn: arn(ids.queue),
      FunctionName: { Ref: ids.sync },
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      BatchSize: 10,
      ScalingConfig: { MaximumConcurrency: 2 },
    });
  });
});

describe('schedule', () => {
  test('an hourly reconcile pass of the sync function by default', () => {
    t.resourceCountIs('AWS::Events::Rule', 1);
    t.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(1 hour)',
      State: 'ENABLED',
      Targets: [Match.objectLike({ Arn: arn(ids.sync), Input: Match.absent() })],
    });
    t.hasResourceProperties('AWS::Lambda::Permission', {
      Action: 'lambda:InvokeFunction',
      Principal: 'events.amazonaws.com',
      FunctionName: arn(ids.sync),
    });
  });
});

describe('IAM', () => {
  test('the sync function: read and list this bucket, EFS through the access point, the queue', () => {
    expect(policyOfRole(t, ids.syncRole)).toEqual([
      ...roleBase('SyncFunctionLogs'),
      {
        Sid: 'EfsThroughAccessPointOnly',
        Effect: 'Allow',
        Action: ['elasticfilesystem:ClientMount', 'elasticfilesystem:ClientWrite'],
        Resource: arn(ids.fs),
        Condition: { StringEquals: { 'elasticfilesystem:AccessPointArn': accessPointArn() } },
      },
      { Sid: 'ReadObjects', Effect: 'Allow', Action: ['s3:GetObject', 's3:GetObjectVersion'], Resource: objectsArn('') },
      { Sid: 'ListBucket', Effect: 'Allow', Action: 's3:ListBucket', Resource: arn(ids.bucket) },
      {
        Effect: 'Allow',
        Action: [
          'sqs:ChangeMessageVisibility',
          'sqs:DeleteMessage',
          'sqs:GetQueueAttributes',
          'sqs:GetQueueUrl',
          'sqs:ReceiveMessage',
        ],
        Resource: arn(ids.queue),
      },
    ]);
  });

  test('the erase function: delete, list versions and verify on this bucket, EFS through the access point', () => {
    expect(policyOfRole(t, ids.eraseRole)).toEqual([
      ...roleBase('EraseFunctionLogs'),
      {
        Sid: 'EfsThroughAccessPointOnly',
        Effect: 'Allow',
        Action: ['elasticfilesystem:ClientMount', 'elasticfilesystem:ClientWrite'],
        Resource: arn(ids.fs),
        Condition: { StringEquals: { 'elasticfilesystem:AccessPointArn': accessPointArn() } },
      },
      {
        Sid: 'DeleteAndVerifyObjects',
        Effect: 'Allow',
        Action: ['s3:DeleteObject', 's3:DeleteObjectVersion', 's3:GetObject'],
        Resource: objectsArn(''),
      },
      {
        Sid: 'ListBucketAndVersions',
        Effect: 'Allow',
        Action: ['s3:ListBucket', 's3:ListBucketVersions'],
        Resource: arn(ids.bucket),
      },
    ]);
  });

  test('the roles have no AWS managed policy (cdk-nag IAM4) and trust only Lambda', () => {
    const roles = resourcesOf(t, 'AWS::IAM::Role');
    for (const id of [ids.syncRole, ids.eraseRole]) {
      const r = roles[id].Properties;
      expect(r.AssumeRolePolicyDocument.Statement).toEqual([
        { Action: 'sts:AssumeRole', Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' } },
      ]);
      expect(r.ManagedPolicyArns).toBeUndefined();
      expect(r.Policies).toBeUndefined();
    }
  });

  test('no AmazonS3FullAccess, no s3 wildcard, no delete outside the erase role', () => {
    expect(JSON.stringify(t.toJSON())).not.toContain('AmazonS3FullAccess');
    expect(JSON.stringify(t.toJSON())).not.toContain('AmazonElasticFileSystemClientReadWriteAccess');
    const statements = iamStatements(t);
    expect(statements.length).toBeGreaterThan(5);
    for (const { policy, statement } of statements) {
      for (const a of actionsOf(statement)) {
        expect(a).not.toMatch(/^(s3:)?\*$/);
        if (a.startsWith('s3:')) expect(a).not.toContain('*');
        if (/^s3:Delete/.test(a)) expect(policy).toMatch(/^EraseFunctionServiceRole/);
      }
      expect(statement.Effect).toBe('Allow');
    }
    // Allows in resource policies: no s3:* either (the only s3:* is the TLS Deny).
    for (const p of Object.values(resourcesOf(t, 'AWS::S3::BucketPolicy')) as any[]) {
      for (const s of p.Properties.PolicyDocument.Statement) {
        if (s.Effect === 'Allow') for (const a of actionsOf(s)) expect(a).not.toBe('s3:*');
      }
    }
  });
});

describe('variants', () => {
  test('removalPolicy=destroy deletes the file system, bucket (with its objects), queues and logs', () => {
    const d = synth({ removalPolicy: 'destroy' }).template;
    d.hasResource('AWS::EFS::FileSystem', { DeletionPolicy: 'Delete' });
    d.hasResource('AWS::S3::Bucket', { DeletionPolicy: 'Delete' });
    // The bucket and the log bucket.
    d.resourceCountIs('Custom::S3AutoDeleteObjects', 2);
    // The auto-delete handler's rights are in the bucket policy, for its own role only.
    for (const { statement } of iamStatements(d)) {
      for (const a of actionsOf(statement)) if (a.startsWith('s3:')) expect(a).not.toContain('*');
    }
    expect(JSON.stringify(d.toJSON())).not.toContain('AmazonS3FullAccess');
    for (const type of ['AWS::Logs::LogGroup', 'AWS::SQS::Queue']) {
      for (const r of Object.values(resourcesOf(d, type)) as any[]) expect(r.DeletionPolicy).toBe('Delete');
    }
  });

  test('prefix, bucket name, schedule, email, concurrency, expiry', () => {
    const v = synth({
      prefix: 'images/',
      bucketName: 'my-training-data',
      reconcileSchedule: 'rate(15 minutes)',
      alarmEmail: 'ops@example.com',
      syncMaxConcurrency: '4',
      syncReservedConcurrency: '6',
      eraseReservedConcurrency: '1',
      expireAfterDays: '365',
      logRetentionDays: '30',
      logLevel: 'debug',
    }).template;
    const bucket = logicalId(v, 'AWS::S3::Bucket', 'Bucket');
    v.hasResourceProperties('AWS::S3::Bucket', {
      BucketName: 'my-training-data',
      LifecycleConfiguration: {
        Rules: [{ Id: 'expire-objects', Prefix: 'images/', ExpirationInDays: 365, Status: 'Enabled' }],
      },
    });
    const n = (Object.values(resourcesOf(v, 'Custom::S3BucketNotifications'))[0] as any).Properties;
    const filter = { Key: { FilterRules: [{ Name: 'prefix', Value: 'images/' }] } };
    expect(n.NotificationConfiguration.QueueConfigurations.map((c: any) => [c.Events, c.Filter])).toEqual([
      [['s3:ObjectCreated:*'], filter],
      [['s3:ObjectRemoved:*'], filter],
      [['s3:LifecycleExpiration:*'], filter],
    ]);
    const fns = resourcesOf(v, 'AWS::Lambda::Function');
    const sync = fns[logicalId(v, 'AWS::Lambda::Function', 'SyncFunction')].Properties;
    const erase = fns[logicalId(v, 'AWS::Lambda::Function', 'EraseFunction')].Properties;
    expect(sync.Environment.Variables.DELETE_SYNC_PREFIX).toBe('images/');
    expect(sync.Environment.Variables.DELETE_SYNC_LOG_LEVEL).toBe('debug');
    expect(sync.ReservedConcurrentExecutions).toBe(6);
    expect(erase.ReservedConcurrentExecutions).toBe(1);
    // Object permissions only under the prefix.
    const objects = { 'Fn::Join': ['', [{ 'Fn::GetAtt': [bucket, 'Arn'] }, '/images/*']] };
    const s3Objects = iamStatements(v)
      .map((s) => s.statement)
      .filter((s) => actionsOf(s).some((a) => /^s3:(Get|Delete)Object/.test(a)));
    expect(s3Objects).toHaveLength(2);
    for (const s of s3Objects) expect(s.Resource).toEqual(objects);
    v.hasResourceProperties('AWS::Events::Rule', { ScheduleExpression: 'rate(15 minutes)' });
    v.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: 'ops@example.com' });
    v.hasResourceProperties('AWS::Lambda::EventSourceMapping', { ScalingConfig: { MaximumConcurrency: 4 } });
    for (const g of Object.values(resourcesOf(v, 'AWS::Logs::LogGroup')) as any[]) {
      expect(g.Properties.RetentionInDays).toBe(30);
    }
  });

  test('reconcileSchedule=off: no rule; lambdaEndpoint=false: no interface endpoint', () => {
    const v = synth({ reconcileSchedule: 'off', lambdaEndpoint: 'false' }).template;
    v.resourceCountIs('AWS::Events::Rule', 0);
    v.resourceCountIs('AWS::Lambda::Permission', 0);
    v.resourceCountIs('AWS::EC2::VPCEndpoint', 1);
    v.hasResourceProperties('AWS::EC2::VPCEndpoint', { VpcEndpointType: 'Gateway' });
  });

  test('an existing VPC and file system are imported, not created, without lookups', () => {
    const { app, stack, template: v } = synth({
      existingVpcId: 'vpc-0123456789abcdef0',
      existingSubnetIds: 'subnet-0aaaaaaaaaaaaaaa1,subnet-0bbbbbbbbbbbbbbb2',
      existingAvailabilityZones: 'eu-west-1a,eu-west-1b',
      existingFileSystemId: 'fs-0123456789abcdef0',
      existingFileSystemSecurityGroupId: 'sg-0123456789abcdef0',
    });
    for (const type of [
      'AWS::EC2::VPC',
      'AWS::EC2::Subnet',
      'AWS::EC2::VPCEndpoint',
      'AWS::EFS::FileSystem',
      'AWS::EFS::MountTarget',
      // An imported VPC's flow logs are its owner's (cdk-nag checks only VPCs the stack creates).
      'AWS::EC2::FlowLog',
    ]) {
      v.resourceCountIs(type, 0);
    }
    // No context lookups were needed (they would need AWS credentials), no warning or error.
    const annotations = Annotations.fromStack(stack);
    annotations.hasNoError('*', Match.anyValue());
    annotations.hasNoWarning('*', Match.anyValue());
    expect(app.synth().manifest.missing ?? []).toEqual([]);
    v.hasResourceProperties('AWS::EFS::AccessPoint', {
      FileSystemId: 'fs-0123456789abcdef0',
      RootDirectory: { Path: '/export/lambda', CreationInfo: { OwnerUid: '1001', OwnerGid: '1001', Permissions: '750' } },
    });
    const fnSg = logicalId(v, 'AWS::EC2::SecurityGroup', 'FunctionSecurityGroup');
    for (const f of Object.values(resourcesOf(v, 'AWS::Lambda::Function')).filter((f: any) =>
      f.Properties.VpcConfig,
    ) as any[]) {
      expect(f.Properties.VpcConfig.SubnetIds).toEqual(['subnet-0aaaaaaaaaaaaaaa1', 'subnet-0bbbbbbbbbbbbbbb2']);
    }
    v.hasResourceProperties('AWS::EC2::SecurityGroup', { VpcId: 'vpc-0123456789abcdef0' });
    v.hasResourceProperties('AWS::EC2::SecurityGroupIngress', {
      GroupId: 'sg-0123456789abcdef0',
      SourceSecurityGroupId: { 'Fn::GetAtt': [fnSg, 'GroupId'] },
      FromPort: 2049,
      ToPort: 2049,
    });
    const efsStatements = iamStatements(v).filter((s) => s.statement.Sid === 'EfsThroughAccessPointOnly');
    expect(efsStatements).toHaveLength(2);
    for (const { statement } of efsStatements) {
      expect(JSON.stringify(statement.Resource)).toContain(':file-system/fs-0123456789abcdef0');
      expect(statement.Condition.StringEquals['elasticfilesystem:AccessPointArn']).toBeDefined();
    }
  });

  test('an existing VPC with createEndpoints adds the endpoints to its route tables', () => {
    const fnId = 'FunctionSecurityGroup';
    const v = synth({
      existingVpcId: 'vpc-0123456789abcdef0',
      existingSubnetIds: 'subnet-0aaaaaaaaaaaaaaa1,subnet-0bbbbbbbbbbbbbbb2',
      existingAvailabilityZones: 'eu-west-1a,eu-west-1b',
      existingRouteTableIds: 'rtb-0aaaaaaaaaaaaaaa1,rtb-0bbbbbbbbbbbbbbb2',
      createEndpoints: 'true',
    }).template;
    v.resourceCountIs('AWS::EC2::VPC', 0);
    v.resourceCountIs('AWS::EFS::FileSystem', 1);
    v.hasResourceProperties('AWS::EC2::VPCEndpoint', {
      VpcEndpointType: 'Gateway',
      VpcId: 'vpc-0123456789abcdef0',
      RouteTableIds: ['rtb-0aaaaaaaaaaaaaaa1', 'rtb-0bbbbbbbbbbbbbbb2'],
    });
    // The imported VPC's CIDR is unknown: only the functions may reach the Lambda endpoint.
    const endpointSg = logicalId(v, 'AWS::EC2::SecurityGroup', 'VpcLambdaEndpointSecurityGroup');
    const sg = resourcesOf(v, 'AWS::EC2::SecurityGroup')[endpointSg].Properties;
    expect(sg.SecurityGroupIngress).toBeUndefined();
    v.hasResourceProperties('AWS::EC2::SecurityGroupIngress', {
      GroupId: { 'Fn::GetAtt': [endpointSg, 'GroupId'] },
      SourceSecurityGroupId: { 'Fn::GetAtt': [logicalId(v, 'AWS::EC2::SecurityGroup', fnId), 'GroupId'] },
      FromPort: 443,
    });
  });
});
