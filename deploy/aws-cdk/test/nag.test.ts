// cdk-nag's AwsSolutionsChecks on the synthesized stacks: no finding at all, error or warning,
// may be left unacknowledged, and every acknowledgement is one of the reasoned ones below.
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { IConstruct } from 'constructs';
import { nagSettings } from '../lib/nag';
import { cleanup, synth, synthFleet } from './helpers';

afterAll(cleanup);

function findings(app: App): string[] {
  const report = new AwsSolutionsChecks(undefined, { verbose: true }).validateScope(app);
  return report.violations.map(
    (v) => `${v.severity} ${v.ruleName} at ${v.violatingResources.map((r) => r.constructPath).join(', ')}: ${v.description}`,
  );
}

// Every acknowledgement in the tree: construct path -> rule id -> reason.
function acknowledgements(root: IConstruct): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {};
  for (const c of root.node.findAll()) {
    for (const m of c.node.metadata) {
      if (m.type !== Validations.ACKNOWLEDGED_RULES_METADATA_KEY) continue;
      for (const [id, reason] of Object.entries(m.data as Record<string, string>)) {
        // CDK's own CloudFormation-Validate acknowledgements (on the stack, the flow log) aside.
        if (!/^annotation::AwsSolutions-/i.test(id)) continue;
        (out[c.node.path] ??= {})[id.replace(/^annotation::/i, '')] = reason;
      }
    }
  }
  return out;
}

// Builds the app twice, with and without our acknowledgements, and checks that each acknowledgement
// of the first hides a finding of the second on that construct or below it.
function expectEveryAcknowledgementLive(build: () => App): void {
  const acks = acknowledgements(build());
  nagSettings.acknowledge = false;
  let bare: App;
  try {
    bare = build();
  } finally {
    nagSettings.acknowledge = true;
  }
  const report = new AwsSolutionsChecks().validateScope(bare);
  const found = report.violations.flatMap((v) => v.violatingResources.map((r) => `${v.ruleName} ${r.constructPath}`));
  const pairs = Object.entries(acks).flatMap(([p, r]) => Object.keys(r).map((id) => [p, id]));
  expect(pairs.length).toBeGreaterThan(0);
  for (const [p, id] of pairs) {
    expect({ ack: `${id} on ${p}`, live: found.some((f) => f.startsWith(`${id} ${p}/`)) }).toEqual({
      ack: `${id} on ${p}`,
      live: true,
    });
  }
  // And nothing else was found: the acknowledgements are all that stands between the stack and a
  // failed synth.
  expect(found.filter((f) => !pairs.some(([p, id]) => f.startsWith(`${id} ${p}/`)))).toEqual([]);
}

const lambdaVariants: [string, Record<string, unknown>][] = [
  ['the default stack', {}],
  ['destroy, a prefix, an e-mail, expiry', { removalPolicy: 'destroy', prefix: 'images/', alarmEmail: 'ops@example.com', expireAfterDays: '30' }],
  ['no Lambda endpoint, no schedule', { lambdaEndpoint: 'false', reconcileSchedule: 'off' }],
  [
    'an existing VPC and file system with endpoints',
    {
      existingVpcId: 'vpc-0123456789abcdef0',
      existingSubnetIds: 'subnet-0aaaaaaaaaaaaaaa1,subnet-0bbbbbbbbbbbbbbb2',
      existingAvailabilityZones: 'eu-west-1a,eu-west-1b',
      existingRouteTableIds: 'rtb-0aaaaaaaaaaaaaaa1,rtb-0bbbbbbbbbbbbbbb2',
      createEndpoints: 'true',
      existingFileSystemId: 'fs-0123456789abcdef0',
      existingFileSystemSecurityGroupId: 'sg-0123456789abcdef0',
    },
  ],
];

describe('the Lambda + EFS stack', () => {
  test.each(lambdaVariants)('%s: no unacknowledged AwsSolutions finding', (_name, context) => {
    const { app } = synth(context);
    expect(findings(app)).toEqual([]);
  });

  test('the acknowledgements are exactly these, each with its reason', () => {
    const { app } = synth({ prefix: 'images/' });
    const acks = acknowledgements(app);
    const ids = Object.entries(acks)
      .flatMap(([p, r]) => Object.keys(r).map((id) => `${p} ${id}`))
      .sort();
    expect(ids).toEqual(
      [
        'DeleteSync/BucketNotificationsHandler050a0587b7544547bf325f094a3db834 AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
        'DeleteSync/EraseFunctionServiceRole AwsSolutions-IAM5[Resource::*]',
        'DeleteSync/EraseFunctionServiceRole AwsSolutions-IAM5[Resource::<Bucket83908E77.Arn>/images/*]',
        'DeleteSync/SyncFunctionServiceRole AwsSolutions-IAM5[Resource::*]',
        'DeleteSync/SyncFunctionServiceRole AwsSolutions-IAM5[Resource::<Bucket83908E77.Arn>/images/*]',
        'DeleteSync/Vpc/LambdaEndpoint AwsSolutions-EC23',
      ].sort(),
    );
    for (const reasons of Object.values(acks)) {
      for (const reason of Object.values(reasons)) expect(reason.length).toBeGreaterThan(60);
    }
  });

  test.each(lambdaVariants)('%s: each acknowledgement hides a real finding, and only those', (_name, context) => {
    expectEveryAcknowledgementLive(() => synth({ prefix: 'images/', ...context }).app);
  });
});

const fleetVariants: [string, Record<string, unknown>][] = [
  ['a new bucket, two groups', {}],
  ['a new bucket, a prefix, destroy, an e-mail, SNS envelopes', { prefix: 'images/', removalPolicy: 'destroy', alarmEmail: 'ops@example.com', rawMessageDelivery: 'false' }],
  ['an existing bucket, a prefix', { existingBucketName: 'training-data', prefix: 'images/' }],
  ['an existing bucket, no prefix, one group', { existingBucketName: 'training-data', nodeGroups: 'h100' }],
];

describe('the GPU-fleet stack', () => {
  test.each(fleetVariants)('%s: no unacknowledged AwsSolutions finding', (_name, context) => {
    const { app } = synthFleet(context);
    expect(findings(app)).toEqual([]);
  });

  test('the acknowledgements are exactly these, each with its reason', () => {
    for (const [context, bucketArn] of [
      [{ prefix: 'images/' }, '<Bucket83908E77.Arn>'],
      [{ prefix: 'images/', existingBucketName: 'training-data' }, 'arn:<AWS::Partition>:s3:::training-data'],
    ] as [Record<string, unknown>, string][]) {
      const acks = acknowledgements(synthFleet(context).app);
      const ids = Object.entries(acks)
        .flatMap(([p, r]) => Object.keys(r).map((id) => `${p} ${id}`))
        .sort();
      expect(ids).toEqual(
        [
          'DeleteSyncFleet/BucketNotificationsHandler050a0587b7544547bf325f094a3db834 AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
          `DeleteSyncFleet/GroupGpuA/NodePolicy AwsSolutions-IAM5[Resource::${bucketArn}/images/*]`,
          `DeleteSyncFleet/GroupGpuB/NodePolicy AwsSolutions-IAM5[Resource::${bucketArn}/images/*]`,
        ].sort(),
      );
      for (const reasons of Object.values(acks)) {
        for (const reason of Object.values(reasons)) expect(reason.length).toBeGreaterThan(60);
      }
    }
  });

  test.each(fleetVariants)('%s: each acknowledgement hides a real finding, and only those', (_name, context) => {
    expectEveryAcknowledgementLive(() => synthFleet(context).app);
  });
});
