// delete-sync on AWS: the C++ engine as a Lambda custom runtime (provided.al2023) keeping an EFS
// folder equal to an S3 bucket. What each resource is for: docs/DEPLOY-AWS.md.
import { Annotations, CfnOutput, Duration, RemovalPolicy, Stack, StackProps, Tags } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as efs from 'aws-cdk-lib/aws-efs';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as s3n from 'aws-cdk-lib/aws-s3-notifications';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subs from 'aws-cdk-lib/aws-sns-subscriptions';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { acknowledge, acknowledgeNotificationsHandler, makeLogBucket, OBJECTS_WILDCARD_REASON, objectsWildcardFinding } from './nag';
import { DeleteSyncSettings } from './settings';

// Where the access point is mounted in the functions; DELETE_SYNC_CACHE.
export const MOUNT_PATH = '/mnt/data';
// The seed's access point: its root folder and the POSIX identity every NFS request takes.
export const ACCESS_POINT_PATH = '/export/lambda';
export const POSIX_ID = '1001';

// A Lambda file system mount whose IAM policy lets the role mount and write the file system only
// through this access point. (lambda.FileSystem.fromEfsAccessPoint grants ClientMount on "*" and
// ClientWrite without the access point condition.)
class AccessPointMount extends lambda.FileSystem {
  constructor(ap: efs.IAccessPoint, mountPath: string) {
    super({
      localMountPath: mountPath,
      arn: ap.accessPointArn,
      dependency: [ap.fileSystem.mountTargetsAvailable],
      connections: ap.fileSystem.connections,
      policies: [
        new iam.PolicyStatement({
          sid: 'EfsThroughAccessPointOnly',
          actions: ['elasticfilesystem:ClientMount', 'elasticfilesystem:ClientWrite'],
          resources: [ap.fileSystem.fileSystemArn],
          conditions: { StringEquals: { 'elasticfilesystem:AccessPointArn': ap.accessPointArn } },
        }),
      ],
    });
  }
}

export interface DeleteSyncStackProps extends StackProps {
  readonly settings: DeleteSyncSettings;
}

export class DeleteSyncStack extends Stack {
  public readonly vpc: ec2.IVpc;
  public readonly fileSystem: efs.IFileSystem;
  public readonly accessPoint: efs.AccessPoint;
  public readonly bucket: s3.Bucket;
  public readonly queue: sqs.Queue;
  public readonly deadLetterQueue: sqs.Queue;
  public readonly syncFunction: lambda.Function;
  public readonly eraseFunction: lambda.Function;
  public readonly alarmTopic: sns.Topic;
  public readonly logBucket: s3.Bucket;

  constructor(scope: Construct, id: string, props: DeleteSyncStackProps) {
    super(scope, id, props);
    const cfg = props.settings;
    Tags.of(this).add('project', 'delete-sync');

    // ---- Logs of the bucket's accesses and of the VPC's traffic, expired like the other logs.
    this.logBucket = makeLogBucket(this, 'LogBucket', cfg.removalPolicy, cfg.logRetention);

    // ---- Network: no NAT gateway and no internet path; S3 through the gateway endpoint.
    let subnets: ec2.SubnetSelection;
    if (cfg.existingVpc) {
      const e = cfg.existingVpc;
      this.vpc = ec2.Vpc.fromVpcAttributes(this, 'Vpc', {
        vpcId: e.vpcId,
        availabilityZones: e.availabilityZones,
        privateSubnetIds: e.subnetIds,
        privateSubnetRouteTableIds: e.routeTableIds,
      });
      subnets = { subnets: this.vpc.privateSubnets };
      if (e.routeTableIds === undefined) {
        // Route tables matter only for the S3 gateway endpoint, which settings refuse without them.
        Annotations.of(this.vpc).acknowledgeWarning(
          '@aws-cdk/aws-ec2:noSubnetRouteTableId',
          'route tables are needed only to add the S3 gateway endpoint (createEndpoints=true)',
        );
      }
    } else {
      this.vpc = new ec2.Vpc(this, 'Vpc', {
        maxAzs: 2,
        natGateways: 0,
        subnetConfiguration: [
          { name: 'isolated', subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 24 },
        ],
      });
      subnets = { subnetType: ec2.SubnetType.PRIVATE_ISOLATED };
      // Flow logs of every accepted and rejected flow, to the log bucket (no IAM role needed).
      this.vpc.addFlowLog('FlowLog', {
        destination: ec2.FlowLogDestination.toS3(this.logBucket, 'vpc-flow-logs/'),
        trafficType: ec2.FlowLogTrafficType.ALL,
      });
    }

    // The functions' security group: out only to HTTPS (S3 through the endpoint) and, added by the
    // file system mount below, to NFS on the file system's security group.
    const functionSg = new ec2.SecurityGroup(this, 'FunctionSecurityGroup', {
      vpc: this.vpc,
      description: 'delete-sync functions: HTTPS to S3 and NFS to EFS only',
      allowAllOutbound: false,
    });
    functionSg.addEgressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(443), 'HTTPS to S3 (gateway endpoint)');

    if (cfg.createEndpoints) {
      this.vpc.addGatewayEndpoint('S3Endpoint', {
        service: ec2.GatewayVpcEndpointAwsService.S3,
        subnets: [subnets],
      });
      if (cfg.lambdaEndpoint) {
        const lambdaEndpoint = this.vpc.addInterfaceEndpoint('LambdaEndpoint', {
          service: ec2.InterfaceVpcEndpointAwsService.LAMBDA,
          subnets,
          privateDnsEnabled: true,
          // The CIDR of an imported VPC is unknown here: then only the functions may use it.
          open: cfg.existingVpc === undefined,
        });
        lambdaEndpoint.connections.allowDefaultPortFrom(functionSg);
        // open: HTTPS from the VPC's own CIDR block (Fn::GetAtt Vpc.CidrBlock), which the rule
        // cannot evaluate ("Rule threw an error"): it is not 0.0.0.0/0.
        if (cfg.existingVpc === undefined) {
          acknowledge(
            lambdaEndpoint,
            'AwsSolutions-EC23',
            "The Lambda endpoint's security group admits HTTPS from the VPC's own CIDR block only " +
              '(an intrinsic the rule cannot evaluate), never 0.0.0.0/0',
          );
        }
      }
    }

    // ---- EFS: the cache folder, shared by every invocation.
    if (cfg.existingFileSystem) {
      this.fileSystem = efs.FileSystem.fromFileSystemAttributes(this, 'FileSystem', {
        fileSystemId: cfg.existingFileSystem.fileSystemId,
        securityGroup: ec2.SecurityGroup.fromSecurityGroupId(
          this,
          'FileSystemSecurityGroup',
          cfg.existingFileSystem.securityGroupId,
        ),
      });
    } else {
      this.fileSystem = new efs.FileSystem(this, 'FileSystem', {
        vpc: this.vpc,
        vpcSubnets: subnets,
        performanceMode: efs.PerformanceMode.GENERAL_PURPOSE,
        throughputMode: efs.ThroughputMode.BURSTING,
        lifecyclePolicy: efs.LifecyclePolicy.AFTER_14_DAYS,
        encrypted: true,
        removalPolicy: cfg.removalPolicy,
      });
    }
    this.accessPoint = new efs.AccessPoint(this, 'AccessPoint', {
      fileSystem: this.fileSystem,
      path: ACCESS_POINT_PATH,
      createAcl: { ownerUid: POSIX_ID, ownerGid: POSIX_ID, permissions: '750' },
      posixUser: { uid: POSIX_ID, gid: POSIX_ID },
    });

    // ---- The bucket (the source of truth).
    const prefix = cfg.prefix;
    const autoDelete = cfg.removalPolicy === RemovalPolicy.DESTROY;
    this.bucket = new s3.Bucket(this, 'Bucket', {
      bucketName: cfg.bucketName,
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      removalPolicy: cfg.removalPolicy,
      autoDeleteObjects: autoDelete,
      serverAccessLogsBucket: this.logBucket,
      serverAccessLogsPrefix: 'access-logs/',
      lifecycleRules:
        cfg.expireAfterDays === undefined
          ? undefined
          : [
              {
                id: 'expire-objects',
                prefix: prefix === '' ? undefined : prefix,
                expiration: Duration.days(cfg.expireAfterDays),
              },
            ],
    });

    // ---- Events: every creation, removal and lifecycle expiration goes to a queue, so that
    // nothing is dropped while the function fails or is throttled; after maxReceiveCount failed
    // receives a message moves to the dead-letter queue, whose depth raises an alarm.
    this.deadLetterQueue = new sqs.Queue(this, 'DeadLetterQueue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
      removalPolicy: cfg.removalPolicy,
    });
    this.queue = new sqs.Queue(this, 'EventQueue', {
      // SSE-SQS: S3 can send to it (it cannot use the AWS-managed KMS key of SQS).
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      // AWS recommends at least six times the function timeout for an SQS event source.
      visibilityTimeout: Duration.seconds(cfg.syncTimeout.toSeconds() * 6),
      // Shorter than the dead-letter queue's: a message keeps its first enqueue time when moved.
      retentionPeriod: Duration.days(4),
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: cfg.maxReceiveCount },
      removalPolicy: cfg.removalPolicy,
    });
    const filters: s3.NotificationKeyFilter[] = prefix === '' ? [] : [{ prefix }];
    const toQueue = new s3n.SqsDestination(this.queue);
    for (const type of [
      s3.EventType.OBJECT_CREATED,
      s3.EventType.OBJECT_REMOVED,
      s3.EventType.LIFECYCLE_EXPIRATION,
    ]) {
      this.bucket.addEventNotification(type, toQueue, ...filters);
    }

    // ---- The functions: one binary (the zip of scripts/package-lambda.sh), two roles.
    const code = lambda.Code.fromAsset(cfg.lambdaCode);
    const environment: Record<string, string> = {
      DELETE_SYNC_CACHE: MOUNT_PATH,
      DELETE_SYNC_BUCKET: this.bucket.bucketName,
      // SQLite state on EFS, shared by concurrent invocations: NFS has no shared memory for WAL.
      DELETE_SYNC_STATE_JOURNAL: 'rollback',
      DELETE_SYNC_LOG_LEVEL: cfg.logLevel,
      // Never write into the Lambda's local disk if the mount is missing.
      DELETE_SYNC_REQUIRE_MOUNT: 'true',
      // Files and folders private to the access point's user and group (as its root folder).
      DELETE_SYNC_FILE_MODE: '0640',
      DELETE_SYNC_DIR_MODE: '0750',
    };
    if (prefix !== '') environment.DELETE_SYNC_PREFIX = prefix;

    // Each function's role: no AWS managed policy (AWSLambdaBasicExecutionRole and
    // AWSLambdaVPCAccessExecutionRole grant logs on every log group); its own log group only,
    // and the network interface actions Lambda needs to place the function in the VPC.
    const makeRole = (id: string, logGroup: logs.ILogGroup): iam.Role => {
      const role = new iam.Role(this, `${id}ServiceRole`, {
        assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      });
      role.addToPrincipalPolicy(
        new iam.PolicyStatement({
          sid: 'OwnLogGroup',
          actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
          resources: [logGroup.logGroupArn],
        }),
      );
      role.addToPrincipalPolicy(
        new iam.PolicyStatement({
          sid: 'VpcNetworkInterfaces',
          actions: [
            'ec2:CreateNetworkInterface',
            'ec2:DescribeNetworkInterfaces',
            'ec2:DescribeSubnets',
            'ec2:DeleteNetworkInterface',
            'ec2:AssignPrivateIpAddresses',
            'ec2:UnassignPrivateIpAddresses',
          ],
          resources: ['*'],
        }),
      );
      acknowledge(
        role,
        'AwsSolutions-IAM5[Resource::*]',
        "Lambda's VPC network interface actions, as in AWSLambdaVPCAccessExecutionRole: " +
          'ec2:DescribeNetworkInterfaces works only on "*", the interface ids are chosen by Lambda, and ' +
          'the Lambda guide warns that a DeleteNetworkInterface without every interface id can cut the ' +
          'function off from the VPC',
      );
      acknowledge(role, objectsWildcardFinding(this.bucket, prefix), OBJECTS_WILDCARD_REASON);
      return role;
    };

    const makeFunction = (
      id: string,
      description: string,
      timeout: Duration,
      reserved: number | undefined,
    ): lambda.Function => {
      const logGroup = new logs.LogGroup(this, `${id}Logs`, {
        retention: cfg.logRetention,
        removalPolicy: cfg.removalPolicy,
      });
      return new lambda.Function(this, id, {
        role: makeRole(id, logGroup),
        description,
        runtime: lambda.Runtime.PROVIDED_AL2023,
        architecture: lambda.Architecture.X86_64,
        // A custom runtime ignores the handler; the bootstrap binary reads the events itself.
        handler: 'bootstrap',
        code,
        memorySize: cfg.memorySize,
        timeout,
        environment,
        vpc: this.vpc,
        vpcSubnets: subnets,
        securityGroups: [functionSg],
        filesystem: new AccessPointMount(this.accessPoint, MOUNT_PATH),
        logGroup,
        reservedConcurrentExecutions: reserved,
        // A failed scheduled reconcile is not retried (the next pass runs anyway); the rule's
        // target retries only the delivery of the event.
        retryAttempts: 0,
      });
    };

    this.syncFunction = makeFunction(
      'SyncFunction',
      'delete-sync: applies bucket events from SQS to the EFS cache; scheduled reconcile',
      cfg.syncTimeout,
      cfg.syncReservedConcurrency,
    );
    this.eraseFunction = makeFunction(
      'EraseFunction',
      'delete-sync: erasure requests {"erase":{...}} from the bucket and the EFS cache; invoked directly',
      cfg.eraseTimeout,
      cfg.eraseReservedConcurrency,
    );

    // ---- Least privilege on the bucket: object actions only under the prefix.
    const objects = this.bucket.arnForObjects(`${prefix}*`);
    // Sync: read objects (GET; HEAD needs s3:GetObject too), of a given version when an event
    // names one, and list keys (reconcile; without it a HEAD of a missing key answers 403, not 404).
    this.syncFunction.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'ReadObjects',
        actions: ['s3:GetObject', 's3:GetObjectVersion'],
        resources: [objects],
      }),
    );
    this.syncFunction.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'ListBucket',
        actions: ['s3:ListBucket'],
        resources: [this.bucket.bucketArn],
      }),
    );
    // Erase: list every version of the keys, delete them (DeleteObjects checks s3:DeleteObject and,
    // for a version id, s3:DeleteObjectVersion per key), then HEAD to verify they are gone.
    this.eraseFunction.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'DeleteAndVerifyObjects',
        actions: ['s3:DeleteObject', 's3:DeleteObjectVersion', 's3:GetObject'],
        resources: [objects],
      }),
    );
    this.eraseFunction.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'ListBucketAndVersions',
        actions: ['s3:ListBucket', 's3:ListBucketVersions'],
        resources: [this.bucket.bucketArn],
      }),
    );

    this.syncFunction.addEventSource(
      new SqsEventSource(this.queue, {
        batchSize: cfg.batchSize,
        // The binary answers {"batchItemFailures":[...]}: only the failed records come back.
        reportBatchItemFailures: true,
        maxConcurrency: cfg.syncMaxConcurrency,
      }),
    );

    // ---- Scheduled reconcile: catches whatever the events missed.
    if (cfg.reconcileSchedule !== undefined) {
      new events.Rule(this, 'ReconcileSchedule', {
        description: 'delete-sync: one reconcile pass of the EFS cache against the bucket',
        schedule: events.Schedule.expression(cfg.reconcileSchedule),
        targets: [
          new targets.LambdaFunction(this.syncFunction, {
            retryAttempts: 2,
            maxEventAge: Duration.hours(1),
          }),
        ],
      });
    }

    // ---- Alarms.
    this.alarmTopic = new sns.Topic(this, 'AlarmTopic', {
      displayName: 'delete-sync alarms',
      enforceSSL: true,
    });
    // A topic policy replaces SNS's default one: CloudWatch alarms of this account need an allow.
    this.alarmTopic.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'AllowCloudWatchAlarmsOfThisAccount',
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['sns:Publish'],
        resources: [this.alarmTopic.topicArn],
        conditions: { StringEquals: { 'aws:SourceAccount': this.account } },
      }),
    );
    if (cfg.alarmEmail !== undefined) {
      this.alarmTopic.addSubscription(new subs.EmailSubscription(cfg.alarmEmail));
    }
    const notify = new cwActions.SnsAction(this.alarmTopic);
    const dlqAlarm = this.deadLetterQueue
      .metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(5), statistic: 'Maximum' })
      .createAlarm(this, 'DeadLetterQueueAlarm', {
        alarmDescription:
          'delete-sync: bucket events failed repeatedly and are in the dead-letter queue; the cache ' +
          'may hold data removed from the bucket. See docs/DEPLOY-AWS.md.',
        threshold: 0,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
    dlqAlarm.addAlarmAction(notify);
    const errorsAlarm = this.syncFunction
      .metricErrors({ period: Duration.minutes(5), statistic: 'Sum' })
      .createAlarm(this, 'SyncErrorsAlarm', {
        alarmDescription: 'delete-sync: the sync function failed (an event batch or a scheduled reconcile)',
        threshold: 0,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
    errorsAlarm.addAlarmAction(notify);

    // ---- Outputs used by docs/DEPLOY-AWS.md.
    new CfnOutput(this, 'BucketName', { value: this.bucket.bucketName });
    new CfnOutput(this, 'SyncFunctionName', { value: this.syncFunction.functionName });
    new CfnOutput(this, 'EraseFunctionName', { value: this.eraseFunction.functionName });
    new CfnOutput(this, 'SyncLogGroupName', {
      value: this.syncFunction.logGroup.logGroupName,
    });
    new CfnOutput(this, 'EraseLogGroupName', {
      value: this.eraseFunction.logGroup.logGroupName,
    });
    new CfnOutput(this, 'QueueUrl', { value: this.queue.queueUrl });
    new CfnOutput(this, 'DeadLetterQueueUrl', { value: this.deadLetterQueue.queueUrl });
    new CfnOutput(this, 'FileSystemId', { value: this.fileSystem.fileSystemId });
    new CfnOutput(this, 'AccessPointId', { value: this.accessPoint.accessPointId });
    new CfnOutput(this, 'AlarmTopicArn', { value: this.alarmTopic.topicArn });
    new CfnOutput(this, 'LogBucketName', { value: this.logBucket.bucketName });

    acknowledgeNotificationsHandler(this);
  }
}
