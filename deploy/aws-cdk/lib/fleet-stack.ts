// delete-sync for a fleet of GPU nodes (EC2, EKS, SageMaker HyperPod), each keeping its own local
// cache of the bucket: the bucket's notifications go to an SNS topic, which fans them out to one
// SQS queue per node group; each group gets an IAM managed policy that its node role attaches,
// allowing it to read its own queue and the bucket (under the prefix), nothing else.
// docs/DEPLOY-AWS.md, "The GPU-fleet route".
import { CfnOutput, Duration, RemovalPolicy, Stack, StackProps, Tags } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as s3n from 'aws-cdk-lib/aws-s3-notifications';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subs from 'aws-cdk-lib/aws-sns-subscriptions';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { FleetSettings, nodeGroupOutputId } from './fleet-settings';
import {
  acknowledge,
  acknowledgeNotificationsHandler,
  makeLogBucket,
  OBJECTS_WILDCARD_REASON,
  objectsWildcardFinding,
} from './nag';

export interface FleetStackProps extends StackProps {
  readonly settings: FleetSettings;
}

// One node group: its queue, dead-letter queue, alarm and the managed policy for its node role.
export class NodeGroupQueue extends Construct {
  public readonly queue: sqs.Queue;
  public readonly deadLetterQueue: sqs.Queue;
  public readonly alarm: cloudwatch.Alarm;
  public readonly policy: iam.ManagedPolicy;

  constructor(
    scope: Construct,
    id: string,
    props: { name: string; topic: sns.ITopic; bucket: s3.IBucket; alarmAction: cwActions.SnsAction; cfg: FleetSettings },
  ) {
    super(scope, id);
    const { name, topic, bucket, cfg } = props;
    this.deadLetterQueue = new sqs.Queue(this, 'DeadLetterQueue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
      removalPolicy: cfg.removalPolicy,
    });
    this.queue = new sqs.Queue(this, 'Queue', {
      // SSE-SQS: SNS can deliver to it without a KMS key policy.
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      visibilityTimeout: cfg.visibilityTimeout,
      retentionPeriod: cfg.queueRetention,
      // Long polling by default, also for consumers that do not ask for it.
      receiveMessageWaitTime: Duration.seconds(20),
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: cfg.maxReceiveCount },
      removalPolicy: cfg.removalPolicy,
    });
    topic.addSubscription(
      new subs.SqsSubscription(this.queue, {
        rawMessageDelivery: cfg.rawMessageDelivery,
        // What SNS cannot deliver to the queue (a broken queue policy, a deleted queue) lands in
        // the same dead-letter queue, and raises the same alarm.
        deadLetterQueue: this.deadLetterQueue,
      }),
    );

    this.alarm = this.deadLetterQueue
      .metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(5), statistic: 'Maximum' })
      .createAlarm(this, 'DeadLetterQueueAlarm', {
        alarmDescription:
          `delete-sync fleet, node group ${name}: bucket events are in the dead-letter queue; the ` +
          "group's caches may hold data removed from the bucket. See docs/DEPLOY-AWS.md.",
        threshold: 0,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
    this.alarm.addAlarmAction(props.alarmAction);

    // What a node of this group may do: consume its own queue, read the bucket under the prefix.
    const prefix = cfg.prefix;
    this.policy = new iam.ManagedPolicy(this, 'NodePolicy', {
      description: `delete-sync fleet, node group ${name}: read its SQS queue and the bucket${prefix ? ` under ${prefix}` : ''}`,
      statements: [
        new iam.PolicyStatement({
          sid: 'ConsumeOwnQueue',
          actions: ['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:ChangeMessageVisibility', 'sqs:GetQueueAttributes'],
          resources: [this.queue.queueArn],
        }),
        new iam.PolicyStatement({
          sid: 'ReadObjects',
          actions: ['s3:GetObject', 's3:GetObjectVersion'],
          resources: [bucket.arnForObjects(`${prefix}*`)],
        }),
        new iam.PolicyStatement({
          sid: 'ListBucket',
          actions: ['s3:ListBucket'],
          resources: [bucket.bucketArn],
          conditions: prefix === '' ? undefined : { StringLike: { 's3:prefix': [`${prefix}*`] } },
        }),
      ],
    });
    acknowledge(this.policy, objectsWildcardFinding(bucket, prefix), OBJECTS_WILDCARD_REASON);
  }
}

export class FleetStack extends Stack {
  public readonly bucket: s3.IBucket;
  public readonly topic: sns.Topic;
  public readonly alarmTopic: sns.Topic;
  public readonly groups: Map<string, NodeGroupQueue> = new Map();
  public readonly logBucket?: s3.Bucket;

  constructor(scope: Construct, id: string, props: FleetStackProps) {
    super(scope, id, props);
    const cfg = props.settings;
    Tags.of(this).add('project', 'delete-sync');

    // ---- The bucket: an existing one (imported by name) or a new one with access logs.
    if (cfg.existingBucketName !== undefined) {
      this.bucket = s3.Bucket.fromBucketName(this, 'Bucket', cfg.existingBucketName);
    } else {
      this.logBucket = makeLogBucket(this, 'LogBucket', cfg.removalPolicy, cfg.logRetention);
      this.bucket = new s3.Bucket(this, 'Bucket', {
        bucketName: cfg.bucketName,
        encryption: s3.BucketEncryption.S3_MANAGED,
        blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
        enforceSSL: true,
        objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        removalPolicy: cfg.removalPolicy,
        autoDeleteObjects: cfg.removalPolicy === RemovalPolicy.DESTROY,
        serverAccessLogsBucket: this.logBucket,
        serverAccessLogsPrefix: 'access-logs/',
      });
    }

    // ---- The bucket's notifications, to one topic that fans them out to every node group.
    this.topic = new sns.Topic(this, 'EventTopic', {
      displayName: 'delete-sync bucket events',
      enforceSSL: true,
    });
    const filters: s3.NotificationKeyFilter[] = cfg.prefix === '' ? [] : [{ prefix: cfg.prefix }];
    const toTopic = new s3n.SnsDestination(this.topic);
    for (const type of [s3.EventType.OBJECT_CREATED, s3.EventType.OBJECT_REMOVED, s3.EventType.LIFECYCLE_EXPIRATION]) {
      this.bucket.addEventNotification(type, toTopic, ...filters);
    }

    // ---- Alarms of every group to one topic.
    this.alarmTopic = new sns.Topic(this, 'AlarmTopic', { displayName: 'delete-sync fleet alarms', enforceSSL: true });
    this.alarmTopic.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'AllowCloudWatchAlarmsOfThisAccount',
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['sns:Publish'],
        resources: [this.alarmTopic.topicArn],
        conditions: { StringEquals: { 'aws:SourceAccount': this.account } },
      }),
    );
    if (cfg.alarmEmail !== undefined) this.alarmTopic.addSubscription(new subs.EmailSubscription(cfg.alarmEmail));
    const alarmAction = new cwActions.SnsAction(this.alarmTopic);

    // ---- One queue, dead-letter queue, alarm and node policy per group.
    for (const name of cfg.nodeGroups) {
      const group = new NodeGroupQueue(this, `Group${nodeGroupOutputId(name)}`, {
        name,
        topic: this.topic,
        bucket: this.bucket,
        alarmAction,
        cfg,
      });
      this.groups.set(name, group);
      const oid = nodeGroupOutputId(name);
      new CfnOutput(this, `QueueUrl${oid}`, {
        description: `node group ${name}: the SQS queue its nodes consume`,
        value: group.queue.queueUrl,
      });
      new CfnOutput(this, `DeadLetterQueueUrl${oid}`, { value: group.deadLetterQueue.queueUrl });
      new CfnOutput(this, `NodePolicyArn${oid}`, {
        description: `node group ${name}: the managed policy to attach to its node role`,
        value: group.policy.managedPolicyArn,
      });
    }

    new CfnOutput(this, 'BucketName', { value: this.bucket.bucketName });
    new CfnOutput(this, 'EventTopicArn', { value: this.topic.topicArn });
    new CfnOutput(this, 'AlarmTopicArn', { value: this.alarmTopic.topicArn });
    if (this.logBucket !== undefined) new CfnOutput(this, 'LogBucketName', { value: this.logBucket.bucketName });

    acknowledgeNotificationsHandler(this);
  }
}
