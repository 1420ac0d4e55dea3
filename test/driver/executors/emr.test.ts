/**
 * The EMR executor against a mocked EMR API (the only mocked part): the exact
 * requests it sends, step polling to success and to failure, and cancellation.
 * The output store is an in-memory store standing in for s3://out.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  AddJobFlowStepsCommand,
  CancelStepsCommand,
  DescribeClusterCommand,
  DescribeStepCommand,
  EMRClient,
  ListStepsCommand,
  RunJobFlowCommand,
} from '@aws-sdk/client-emr';
import { mockClient } from 'aws-sdk-client-mock';
import { readFileSync } from 'node:fs';
import { createEmrExecutor, type EmrExecutorOptions } from '../../../driver/executors/emr.js';
import { SPARK_JOB_FILE } from '../../../driver/executors/spark.js';
import type { PartitionResult, PartitionTask } from '../../../worker/partition-task.js';
import { decodeTaskLine } from '../../../worker/emr-task.js';
import { emptyCounts } from '../../../worker/transform/outcomes.js';
import { MemStore } from '../../helpers/memstore.js';

const CONFIG_TEXT = JSON.stringify([{ EventName: 'login', Columns: [] }]);

function makeTasks(n: number): PartitionTask[] {
  return Array.from({ length: n }, (_, i) => ({
    runtag: 'rt1',
    partition: {
      id: `p${String(i).padStart(5, '0')}`,
      files: [{ key: `20231105/a/${i}.log.gz`, size: 1000 + i }],
      bytes: 1000 + i,
    },
    edge: 's3://edge',
    output: 's3://out',
    settings: { configText: CONFIG_TEXT, configSource: 'tables.json', tables: ['login'], prefilter: true },
  }));
}

function successManifest(store: MemStore, task: PartitionTask): void {
  const result: PartitionResult = {
    partition: task.partition.id,
    attempt: 'aTEST',
    files: [],
    counts: emptyCounts(),
    inputErrors: [],
  };
  store.set(`rt1/_success/${task.partition.id}.json`, JSON.stringify({ runtag: 'rt1', ...result }));
}

function setup(extra: Partial<EmrExecutorOptions> = {}) {
  const client = new EMRClient({ region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } });
  const emr = mockClient(client);
  const store = new MemStore('s3://out');
  const logs: string[] = [];
  const executor = createEmrExecutor({
    instanceType: 'm5.2xlarge',
    instanceCount: 3,
    releaseLabel: 'emr-7.5.0',
    bootstrapUri: 's3://deploy/spade/bootstrap.sh',
    jobFlowRole: 'SpadeEmrInstanceProfile',
    serviceRole: 'SpadeEmrServiceRole',
    logUri: 's3://deploy/emr-logs/',
    client,
    outputStore: store,
    pollMs: 1,
    log: (l) => logs.push(l),
    ...extra,
  });
  const done: string[] = [];
  const hooks = {
    onPartitionDone: (r: PartitionResult) => done.push(r.partition),
    onPartitionRetry: () => assert.fail('the EMR executor does not see YARN retries'),
  };
  return { client, emr, store, logs, executor, done, hooks };
}

const EXPECTED_ARGS = [
  'spark-submit',
  '--master',
  'yarn',
  '--deploy-mode',
  'client',
  '--name',
  'spade replay rt1 step 1',
  '--conf',
  // the 8 vCPUs of an m5.2xlarge: one partition at a time per executor
  'spark.executor.cores=8',
  '--conf',
  'spark.task.cpus=8',
  '--conf',
  'spark.task.maxFailures=4',
  '--conf',
  'spark.locality.wait=0s',
  '--conf',
  'spark.log.level=WARN',
  '--conf',
  // heap + overhead = 3/4 of the 24576 MB EMR gives YARN on an m5.2xlarge: more than half, so one executor per node.
  'spark.executor.memory=14746m',
  '--conf',
  'spark.executor.memoryOverhead=3686m',
  '--conf',
  'spark.speculation=true',
  's3://out/rt1/_emr/1/spark_job.py',
  's3://out/rt1/_emr/1/tasks.jsonl',
  '/usr/local/bin/spade',
];

test('transient cluster: the exact RunJobFlow request, polling to COMPLETED, progress from success manifests', async () => {
  const { emr, store, executor, done, hooks } = setup();
  const tasks = makeTasks(3);
  emr.on(RunJobFlowCommand).resolves({ JobFlowId: 'j-NEW' });
  emr.on(ListStepsCommand).resolves({ Steps: [{ Id: 's-STEP' }] });
  let polls = 0;
  emr.on(DescribeStepCommand).callsFake(() => {
    polls++;
    // The partitions finish one per poll, as a cluster would report them.
    if (polls <= 3) successManifest(store, tasks[polls - 1]!);
    return { Step: { Status: { State: polls <= 3 ? 'RUNNING' : 'COMPLETED' } } };
  });

  const { failed } = await executor.run(tasks, hooks);
  assert.deepEqual(failed, []);
  assert.deepEqual(done, ['p00000', 'p00001', 'p00002']);

  const run = emr.commandCalls(RunJobFlowCommand);
  assert.equal(run.length, 1);
  assert.deepEqual(run[0]!.args[0].input, {
    Name: 'spade replay rt1',
    ReleaseLabel: 'emr-7.5.0',
    LogUri: 's3://deploy/emr-logs/',
    Applications: [{ Name: 'Hadoop' }, { Name: 'Spark' }],
    Instances: {
      InstanceGroups: [
        { Name: 'primary', InstanceRole: 'MASTER', InstanceType: 'm5.xlarge', InstanceCount: 1, Market: 'ON_DEMAND' },
        { Name: 'core', InstanceRole: 'CORE', InstanceType: 'm5.2xlarge', InstanceCount: 3, Market: 'ON_DEMAND' },
      ],
      KeepJobFlowAliveWhenNoSteps: false,
      TerminationProtected: false,
      Ec2SubnetId: undefined,
      Ec2KeyName: undefined,
    },
    BootstrapActions: [
      {
        Name: 'install node 20 and spade',
        ScriptBootstrapAction: { Path: 's3://deploy/spade/bootstrap.sh', Args: ['s3://deploy/spade/'] },
      },
    ],
    Steps: [
      {
        Name: 'spade replay rt1 (1)',
        ActionOnFailure: 'TERMINATE_CLUSTER',
        HadoopJarStep: { Jar: 'command-runner.jar', Args: EXPECTED_ARGS },
      },
    ],
    JobFlowRole: 'SpadeEmrInstanceProfile',
    ServiceRole: 'SpadeEmrServiceRole',
    VisibleToAllUsers: true,
    Tags: [{ Key: 'spade:runtag', Value: 'rt1' }],
  });
  assert.deepEqual(emr.commandCalls(ListStepsCommand)[0]!.args[0].input, { ClusterId: 'j-NEW' });
  for (const c of emr.commandCalls(DescribeStepCommand)) {
    assert.deepEqual(c.args[0].input, { ClusterId: 'j-NEW', StepId: 's-STEP' });
  }
  assert.equal(emr.commandCalls(DescribeStepCommand).length, 4);
  assert.equal(emr.commandCalls(AddJobFlowStepsCommand).length, 0);
  assert.equal(emr.commandCalls(CancelStepsCommand).length, 0);
  assert.equal(executor.clusterId, 'j-NEW');

  // The manifest: config once, one decodable task per line referring to it.
  assert.equal((await store.readBytes('rt1/_emr/1/config.json')).toString(), CONFIG_TEXT);
  // The job the step submits is the one --executor spark submits.
  assert.equal((await store.readBytes('rt1/_emr/1/spark_job.py')).toString(), readFileSync(SPARK_JOB_FILE, 'utf8'));
  const lines = (await store.readBytes('rt1/_emr/1/tasks.jsonl')).toString().trimEnd().split('\n');
  assert.equal(lines.length, 3);
  for (const [i, l] of lines.entries()) {
    const t = decodeTaskLine(l, `line ${i + 1}`);
    assert.equal(t.configUrl, 's3://out/rt1/_emr/1/config.json');
    assert.equal(t.settings.configText, undefined);
    assert.deepEqual(t.partition, tasks[i]!.partition);
    assert.deepEqual(t.settings.tables, ['login']);
    assert.equal(l.includes('"attempt"'), false);
  }
});

test('--keep-cluster: the cluster stays alive and a failed step does not terminate it', async () => {
  const { emr, executor, hooks } = setup({ keepCluster: true });
  emr.on(RunJobFlowCommand).resolves({ JobFlowId: 'j-KEEP' });
  emr.on(ListStepsCommand).resolves({ Steps: [{ Id: 's-1' }] });
  emr.on(DescribeStepCommand).resolves({ Step: { Status: { State: 'COMPLETED' } } });
  const { failed } = await executor.run(makeTasks(1), hooks);
  const input = emr.commandCalls(RunJobFlowCommand)[0]!.args[0].input;
  assert.equal(input.Instances?.KeepJobFlowAliveWhenNoSteps, true);
  assert.equal(input.Steps?.[0]?.ActionOnFailure, 'CONTINUE');
  // Completed but no success manifest: reported, never silently taken as done.
  assert.equal(failed.length, 1);
  assert.match(failed[0]!.error, /completed without a success manifest/);
});

test('existing cluster: the exact AddJobFlowSteps request; a failed step reports the unfinished partitions', async () => {
  const { emr, store, executor, done, hooks } = setup({ clusterId: 'j-EXISTING', bootstrapUri: undefined });
  const tasks = makeTasks(3);
  // A step of an earlier run of this runtag exists: this one is number 2.
  store.set('rt1/_emr/1/tasks.jsonl', '{}\n');
  emr.on(AddJobFlowStepsCommand).resolves({ StepIds: ['s-ADDED'] });
  let polls = 0;
  emr.on(DescribeStepCommand).callsFake(() => {
    polls++;
    if (polls === 1) successManifest(store, tasks[1]!);
    if (polls < 3) return { Step: { Status: { State: polls === 1 ? 'PENDING' : 'RUNNING' } } };
    return {
      Step: {
        Status: {
          State: 'FAILED',
          FailureDetails: {
            Reason: 'Task failed',
            Message: 'map task attempts exhausted',
            LogFile: 's3://deploy/emr-logs/j-EXISTING/steps/s-ADDED/stderr.gz',
          },
        },
      },
    };
  });

  const { failed } = await executor.run(tasks, hooks);
  assert.deepEqual(done, ['p00001']);
  assert.deepEqual(
    failed.map((f) => f.partition),
    ['p00000', 'p00002'],
  );
  assert.match(failed[0]!.error, /s-ADDED on j-EXISTING FAILED: Task failed; map task attempts exhausted; log s3:/);

  const add = emr.commandCalls(AddJobFlowStepsCommand);
  assert.equal(add.length, 1);
  assert.deepEqual(add[0]!.args[0].input, {
    JobFlowId: 'j-EXISTING',
    Steps: [
      {
        Name: 'spade replay rt1 (2)',
        ActionOnFailure: 'CONTINUE',
        HadoopJarStep: {
          Jar: 'command-runner.jar',
          Args: EXPECTED_ARGS.map((a) => a.replace('step 1', 'step 2').replace('/_emr/1/', '/_emr/2/')),
        },
      },
    ],
  });
  assert.equal(emr.commandCalls(RunJobFlowCommand).length, 0);
  assert.equal(emr.commandCalls(CancelStepsCommand).length, 0);
  assert.ok(await store.exists('rt1/_emr/2/tasks.jsonl'));
});

test('a cluster that never ran the step: the cluster state reason is the error', async () => {
  const { emr, executor, hooks } = setup();
  emr.on(RunJobFlowCommand).resolves({ JobFlowId: 'j-BAD' });
  emr.on(ListStepsCommand).resolves({ Steps: [{ Id: 's-1' }] });
  emr.on(DescribeStepCommand).resolves({ Step: { Status: { State: 'CANCELLED' } } });
  emr.on(DescribeClusterCommand).resolves({
    Cluster: { Status: { StateChangeReason: { Message: 'bootstrap action 1 returned a non-zero return code' } } },
  });
  const { failed } = await executor.run(makeTasks(2), hooks);
  assert.equal(failed.length, 2);
  assert.match(failed[0]!.error, /CANCELLED: bootstrap action 1 returned a non-zero return code/);
});

test('aborting the signal (Ctrl-C) sends CancelSteps and ends the run', async () => {
  const abort = new AbortController();
  const { emr, store, executor, done, hooks } = setup({ signal: abort.signal });
  const tasks = makeTasks(2);
  emr.on(RunJobFlowCommand).resolves({ JobFlowId: 'j-C' });
  emr.on(ListStepsCommand).resolves({ Steps: [{ Id: 's-C' }] });
  emr.on(CancelStepsCommand).resolves({ CancelStepsInfoList: [{ StepId: 's-C', Status: 'SUBMITTED', Reason: 'ok' }] });
  let polls = 0;
  emr.on(DescribeStepCommand).callsFake(() => {
    polls++;
    if (polls === 2) {
      successManifest(store, tasks[0]!);
      abort.abort();
    }
    return { Step: { Status: { State: polls >= 3 ? 'CANCEL_PENDING' : 'RUNNING' } } };
  });
  const { failed } = await executor.run(tasks, hooks);
  assert.deepEqual(done, ['p00000']);
  assert.deepEqual(
    failed.map((f) => f.partition),
    ['p00001'],
  );
  const cancels = emr.commandCalls(CancelStepsCommand);
  assert.equal(cancels.length, 1);
  assert.deepEqual(cancels[0]!.args[0].input, {
    ClusterId: 'j-C',
    StepIds: ['s-C'],
    StepCancellationOption: 'SEND_INTERRUPT',
  });
});

test('cancel() sends CancelSteps for the running step', async () => {
  const { emr, executor, hooks } = setup({ clusterId: 'j-E' });
  emr.on(AddJobFlowStepsCommand).resolves({ StepIds: ['s-E'] });
  emr.on(CancelStepsCommand).resolves({});
  let cancelled = false;
  emr.on(DescribeStepCommand).callsFake(async () => {
    if (!cancelled) {
      cancelled = true;
      await executor.cancel();
      return { Step: { Status: { State: 'RUNNING' } } };
    }
    return { Step: { Status: { State: 'CANCELLED' } } };
  });
  emr.on(DescribeClusterCommand).resolves({ Cluster: { Status: {} } });
  const { failed } = await executor.run(makeTasks(1), hooks);
  assert.equal(failed.length, 1);
  assert.deepEqual(emr.commandCalls(CancelStepsCommand)[0]!.args[0].input, {
    ClusterId: 'j-E',
    StepIds: ['s-E'],
    StepCancellationOption: 'SEND_INTERRUPT',
  });
  await executor.cancel(); // idempotent: nothing more sent
  assert.equal(emr.commandCalls(CancelStepsCommand).length, 1);
});

test('describe (--plan) shows the cluster, the step and partitions per node without calling AWS', () => {
  const { emr, executor } = setup();
  const lines = executor.describe(makeTasks(7));
  const text = lines.join('\n');
  assert.match(text, /transient cluster emr-7\.5\.0, 1 x m5\.xlarge primary \+ 3 x m5\.2xlarge core/);
  assert.match(text, /terminates itself when the step ends/);
  assert.match(text, /bootstrap: s3:\/\/deploy\/spade\/bootstrap\.sh/);
  assert.match(text, /7 partition\(s\).*about 3 partition\(s\) per node/);
  assert.match(text, /executor 18432 MB, 8 cores of m5\.2xlarge/);
  assert.match(
    text,
    /step: command-runner\.jar spark-submit --master yarn .* s3:\/\/out\/rt1\/_emr\/<n>\/spark_job\.py s3:\/\/out\/rt1\/_emr\/<n>\/tasks\.jsonl \/usr\/local\/bin\/spade$/m,
  );
  assert.equal(emr.calls().length, 0);
});

test('local edge or output locations are refused before anything is launched', async () => {
  const { emr, executor, hooks } = setup();
  const tasks = makeTasks(1).map((t) => ({ ...t, output: '/tmp/out' }));
  await assert.rejects(executor.run(tasks, hooks), /needs the edge logs and the output in S3/);
  assert.equal(emr.calls().length, 0);
});

test('an instance type without known YARN memory needs the task memory flag', () => {
  const { executor } = setup({ instanceType: 'x9.huge' });
  assert.match(executor.describe(makeTasks(1)).join('\n'), /--emr-task-memory-mb/);
  assert.match(executor.describe(makeTasks(1)).join('\n'), /--spark-cores/);
  const { executor: e2 } = setup({ instanceType: 'x9.huge', taskMemoryMb: 9000, cores: 6 });
  assert.match(e2.describe(makeTasks(1)).join('\n'), /executor 9000 MB, 6 cores/);
});
