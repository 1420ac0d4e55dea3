/**
 * `--executor emr`: partitions run as the tasks of one Spark application on
 * YARN, a `spark-submit` step (through command-runner.jar) on Amazon EMR, on an
 * existing cluster (`--emr-cluster j-...`) or on a transient cluster started for
 * the run, which terminates itself when the step ends. The job is the one
 * `--executor spark` submits (spark_job.py), so the code EMR runs is the code
 * the tests run on a real Spark cluster.
 *
 * Layout in the output store, one numbered directory per step launched for the
 * runtag (a resumed run launches a new step for the partitions still missing):
 *   <runtag>/_emr/<n>/config.json   the table config text, once (lines name it instead of repeating it)
 *   <runtag>/_emr/<n>/tasks.jsonl   one partition task per line (worker/emr-task.ts `EmrTaskLine`)
 *   <runtag>/_emr/<n>/spark_job.py  the job, as submitted
 *
 * One task per node: each executor asks for more than half of a node's YARN
 * memory (spark.executor.memory + memoryOverhead), so the default (memory-only)
 * capacity-scheduler calculator fits one per node, and spark.task.cpus =
 * spark.executor.cores = the node's vCPUs, so the executor runs one partition at
 * a time, using every core with spade's own thread pool. These are step
 * settings, not cluster ones: they work unchanged on existing clusters.
 *
 * Progress: the step is polled with DescribeStep; meanwhile the partitions'
 * success manifests are read from the output store as they appear.
 */
import {
  AddJobFlowStepsCommand,
  CancelStepsCommand,
  DescribeClusterCommand,
  DescribeStepCommand,
  EMRClient,
  ListStepsCommand,
  RunJobFlowCommand,
  type RunJobFlowCommandInput,
  type StepConfig,
} from '@aws-sdk/client-emr';
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import type { PartitionTask } from '../../worker/partition-task.js';
import { encodeTaskLine } from '../../worker/emr-task.js';
import { isS3Url, openStore } from '../../worker/store/location.js';
import type { ObjectStore } from '../../worker/store/objectstore.js';
import { formatBytes } from '../format.js';
import { collectSuccessManifests, nextNumberedDir, summarizeTasks, taskIterator, type Executor } from './executor.js';
import { SPARK_JOB_FILE, sparkSubmitArgs } from './spark.js';

export interface EmrExecutorOptions {
  /** Run on this existing cluster (AddJobFlowSteps) instead of starting one. */
  clusterId?: string;
  /** Core node instance type of a transient cluster; also what the task memory is computed from. */
  instanceType: string;
  /** Core nodes of a transient cluster. */
  instanceCount: number;
  /** Primary (master) node type; default m5.xlarge. */
  masterInstanceType?: string;
  releaseLabel: string;
  /** `s3://…/bootstrap.sh` (scripts/emr/package.sh puts it next to the package); needed for a transient cluster. */
  bootstrapUri?: string;
  /** Leave a transient cluster running after the step (it auto-terminates otherwise). */
  keepCluster?: boolean;
  /** EC2 instance profile of the nodes. */
  jobFlowRole: string;
  serviceRole: string;
  logUri?: string;
  subnetId?: string;
  ec2KeyName?: string;
  /** Memory of one executor (heap + overhead); default: 3/4 of the instance type's YARN memory. */
  taskMemoryMb?: number;
  /** Cores of one executor = spark.task.cpus; default: the instance type's vCPUs. */
  cores?: number;
  /** How the nodes run spade; default what scripts/emr/bootstrap.sh installs. */
  spadeCommand?: string;
  /** Attempts per partition (spark.task.maxFailures); default 4. */
  maxAttempts?: number;
  region?: string;
  /** EMR client; default one for `region` (or the environment's). */
  client?: EMRClient;
  /** Output store to write the manifest to and read success manifests from; default: opened from the tasks. */
  outputStore?: ObjectStore;
  /** Poll interval of DescribeStep and of success manifests; default 30 s. */
  pollMs?: number;
  /** Aborting it (Ctrl-C) cancels the step and ends `run` with the unfinished partitions failed. */
  signal?: AbortSignal;
  log?: (line: string) => void;
}

export interface EmrExecutor extends Executor {
  /** Cancels the running step (CancelSteps); a transient cluster then terminates itself. Idempotent. */
  cancel(): Promise<void>;
  /** The cluster of the current or last run, once known. */
  readonly clusterId: string | undefined;
}

export const DEFAULT_SPADE_COMMAND = '/usr/local/bin/spade';
export const DEFAULT_MASTER_TYPE = 'm5.xlarge';

/**
 * `yarn.nodemanager.resource.memory-mb` that EMR configures by default for
 * common instance types (EMR Release Guide, "Task configuration"). Other types:
 * pass `taskMemoryMb`.
 */
export const YARN_NODE_MEMORY_MB: Readonly<Record<string, number>> = {
  'm5.xlarge': 12288,
  'm5.2xlarge': 24576,
  'm5.4xlarge': 57344,
  'm5.8xlarge': 122880,
  'm5.12xlarge': 184320,
  'm5.16xlarge': 253952,
  'm5.24xlarge': 385024,
  'm6i.xlarge': 12288,
  'm6i.2xlarge': 24576,
  'm6i.4xlarge': 57344,
  'm6i.8xlarge': 122880,
  'r5.xlarge': 24576,
  'r5.2xlarge': 57344,
  'r5.4xlarge': 122880,
  'r5.8xlarge': 253952,
  'c5.2xlarge': 11520,
  'c5.4xlarge': 23552,
  'c5.9xlarge': 53248,
  'c5.18xlarge': 139264,
};

/** vCPUs of the EC2 types named `<family>.xlarge` (4) and `<family>.<N>xlarge` (4N). */
export function nodeCores(opts: Pick<EmrExecutorOptions, 'instanceType' | 'cores'>): number {
  if (opts.cores !== undefined) return opts.cores;
  const m = /\.(\d*)xlarge$/.exec(opts.instanceType);
  if (!m)
    throw new Error(`unknown vCPUs of instance type ${opts.instanceType}: pass a node's cores with --spark-cores`);
  return 4 * Number(m[1] || 1);
}

/**
 * More than half of the node's YARN memory, so no second map task fits beside
 * it, and a quarter left for the MapReduce application master, which EMR places
 * on a core node too.
 */
export function taskMemoryMb(opts: Pick<EmrExecutorOptions, 'instanceType' | 'taskMemoryMb'>): number {
  if (opts.taskMemoryMb !== undefined) return opts.taskMemoryMb;
  const node = YARN_NODE_MEMORY_MB[opts.instanceType];
  if (node === undefined) {
    throw new Error(
      `unknown YARN memory for instance type ${opts.instanceType}: pass the map task memory (more than half ` +
        `of yarn.nodemanager.resource.memory-mb of a node) with --emr-task-memory-mb`,
    );
  }
  return Math.floor((node * 3) / 4);
}

export interface StepSpec {
  runtag: string;
  n: number;
  tasksUrl: string;
  jobUrl: string;
  memoryMb: number;
  cores: number;
  spadeCommand: string;
  maxAttempts: number;
}

/**
 * `command-runner.jar` arguments of the step: spark-submit on YARN in client
 * mode (the driver runs on the primary node; cancelling the step ends it, and
 * with it the application). A fifth of the executor's memory is overhead:
 * spade runs outside the JVM heap.
 */
export function sparkStepArgs(s: StepSpec): string[] {
  const overhead = Math.max(384, Math.floor(s.memoryMb / 5));
  return [
    'spark-submit',
    ...sparkSubmitArgs({
      runtag: `${s.runtag} step ${s.n}`,
      master: 'yarn',
      cores: s.cores,
      maxFailures: s.maxAttempts,
      conf: [
        `spark.executor.memory=${s.memoryMb - overhead}m`,
        `spark.executor.memoryOverhead=${overhead}m`,
        'spark.speculation=true',
      ],
      jobFile: s.jobUrl,
      tasks: s.tasksUrl,
      spadeCmd: s.spadeCommand,
    }),
  ];
}

export function buildStep(s: StepSpec, actionOnFailure: StepConfig['ActionOnFailure']): StepConfig {
  return {
    Name: `spade replay ${s.runtag} (${s.n})`,
    ActionOnFailure: actionOnFailure,
    HadoopJarStep: { Jar: 'command-runner.jar', Args: sparkStepArgs(s) },
  };
}

/** The S3 directory holding bootstrap.sh and the package: the bootstrap action's argument. */
export function packagePrefix(bootstrapUri: string): string {
  return bootstrapUri.slice(0, bootstrapUri.lastIndexOf('/') + 1);
}

export function buildRunJobFlowInput(
  opts: EmrExecutorOptions,
  runtag: string,
  step: StepConfig,
): RunJobFlowCommandInput {
  if (!opts.bootstrapUri) throw new Error('a transient EMR cluster needs the bootstrap script: pass --emr-bootstrap');
  return {
    Name: `spade replay ${runtag}`,
    ReleaseLabel: opts.releaseLabel,
    LogUri: opts.logUri,
    Applications: [{ Name: 'Hadoop' }, { Name: 'Spark' }],
    Instances: {
      InstanceGroups: [
        {
          Name: 'primary',
          InstanceRole: 'MASTER',
          InstanceType: opts.masterInstanceType ?? DEFAULT_MASTER_TYPE,
          InstanceCount: 1,
          Market: 'ON_DEMAND',
        },
        {
          Name: 'core',
          InstanceRole: 'CORE',
          InstanceType: opts.instanceType,
          InstanceCount: opts.instanceCount,
          Market: 'ON_DEMAND',
        },
      ],
      // Without steps left the cluster terminates: the run's step is its only one.
      KeepJobFlowAliveWhenNoSteps: opts.keepCluster === true,
      TerminationProtected: false,
      Ec2SubnetId: opts.subnetId,
      Ec2KeyName: opts.ec2KeyName,
    },
    BootstrapActions: [
      {
        Name: 'install node 20 and spade',
        ScriptBootstrapAction: { Path: opts.bootstrapUri, Args: [packagePrefix(opts.bootstrapUri)] },
      },
    ],
    Steps: [step],
    JobFlowRole: opts.jobFlowRole,
    ServiceRole: opts.serviceRole,
    VisibleToAllUsers: true,
    Tags: [{ Key: 'spade:runtag', Value: runtag }],
  };
}

const TERMINAL = new Set(['COMPLETED', 'CANCELLED', 'FAILED', 'INTERRUPTED']);

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

export function createEmrExecutor(opts: EmrExecutorOptions): EmrExecutor {
  const log = opts.log ?? (() => {});
  let client = opts.client;
  const emr = (): EMRClient => (client ??= new EMRClient(opts.region ? { region: opts.region } : {}));
  let clusterId: string | undefined = opts.clusterId;
  let stepId: string | undefined;
  let cancelWanted = false;
  let cancelSent: Promise<void> | null = null;

  const sendCancel = (): Promise<void> => {
    if (!clusterId || !stepId) return Promise.resolve();
    const ids = { ClusterId: clusterId, StepIds: [stepId] };
    cancelSent ??= emr()
      .send(new CancelStepsCommand({ ...ids, StepCancellationOption: 'SEND_INTERRUPT' }))
      .then((out) => {
        const info = out.CancelStepsInfoList?.[0];
        log(`EMR step ${ids.StepIds[0]} on ${ids.ClusterId}: cancel ${info?.Status ?? 'sent'} ${info?.Reason ?? ''}`);
      });
    return cancelSent;
  };

  const stepSpec = (runtag: string, n: number, store: { urlOf(key: string): string }): StepSpec => ({
    runtag,
    n,
    tasksUrl: store.urlOf(`${runtag}/_emr/${n}/tasks.jsonl`),
    jobUrl: store.urlOf(`${runtag}/_emr/${n}/spark_job.py`),
    memoryMb: taskMemoryMb(opts),
    cores: nodeCores(opts),
    spadeCommand: opts.spadeCommand ?? DEFAULT_SPADE_COMMAND,
    maxAttempts: opts.maxAttempts ?? 4,
  });

  const executor: EmrExecutor = {
    name: 'emr',
    get clusterId() {
      return clusterId;
    },
    describe(tasks) {
      const { partitions, bytes, first } = summarizeTasks(tasks);
      const lines: string[] = [];
      const known = (f: () => number, unit: string): string => {
        try {
          return `${f()} ${unit}`;
        } catch (err) {
          return `unknown (${(err as Error).message})`;
        }
      };
      const memory = `${known(() => taskMemoryMb(opts), 'MB')}, ${known(() => nodeCores(opts), 'cores')}`;
      if (opts.clusterId) {
        lines.push(`executor emr: existing cluster ${opts.clusterId} (a step is added; the cluster is left running)`);
      } else {
        lines.push(
          `executor emr: transient cluster ${opts.releaseLabel}, 1 x ${opts.masterInstanceType ?? DEFAULT_MASTER_TYPE} primary + ` +
            `${opts.instanceCount} x ${opts.instanceType} core node(s), ` +
            (opts.keepCluster ? 'kept running afterwards (--keep-cluster)' : 'terminates itself when the step ends'),
        );
        lines.push(`bootstrap: ${opts.bootstrapUri ?? '(missing: --emr-bootstrap)'} (installs Node 20 and spade)`);
        lines.push(
          `roles: service ${opts.serviceRole}, instance profile ${opts.jobFlowRole}; logs ${opts.logUri ?? 'none'}`,
        );
      }
      lines.push(
        `a spark-submit step on YARN: one Spark task per partition, one task per node (executor ${memory} of ` +
          `${opts.instanceType}), ${opts.maxAttempts ?? 4} attempt(s), speculative copies on`,
      );
      const nodes = opts.clusterId ? null : opts.instanceCount;
      lines.push(
        `${partitions} partition(s), ${formatBytes(bytes)} compressed input` +
          (nodes ? `, about ${Math.ceil(partitions / Math.max(1, nodes))} partition(s) per node` : ''),
      );
      if (first) {
        let spec: StepSpec | null;
        try {
          spec = stepSpec(first.runtag, 0, openStore(first.output));
        } catch {
          spec = null; // unknown task memory or cores: already said above
        }
        if (spec) {
          const args = sparkStepArgs(spec).map((a) => (/[\s"]/.test(a) ? JSON.stringify(a) : a));
          lines.push(`step: command-runner.jar ${args.join(' ').replace(/\/_emr\/0\//g, '/_emr/<n>/')}`);
        }
      }
      return lines;
    },

    async run(tasks, hooks) {
      const source = taskIterator(tasks);
      const head = await source.next();
      if (head.done) return { failed: [] };
      const first = head.value;
      const checkS3 = (t: PartitionTask): void => {
        if (!isS3Url(t.edge) || !isS3Url(t.output)) {
          throw new Error(
            `--executor emr needs the edge logs and the output in S3 (s3://bucket/prefix); got edge ${t.edge}, output ${t.output}`,
          );
        }
      };
      checkS3(first);
      const store = opts.outputStore ?? openStore(first.output);
      const runtag = first.runtag;
      const n = await nextNumberedDir(store, `${runtag}/_emr/`);
      const spec = stepSpec(runtag, n, store);
      const dir = `${runtag}/_emr/${n}`;

      // The manifest: config text once, then one task per line, streamed from the plan;
      // only the partition ids stay in memory (to follow their success manifests).
      const configKey = `${dir}/config.json`;
      await store.put(configKey, first.settings.configText);
      const configUrl = store.urlOf(configKey);
      const pending = new Map<string, true>();
      async function* taskLines(): AsyncGenerator<string> {
        for (let r: IteratorResult<PartitionTask> = head; !r.done; r = await source.next()) {
          const t = r.value;
          checkS3(t);
          pending.set(t.partition.id, true);
          yield encodeTaskLine(t, t.settings.configText === first.settings.configText ? configUrl : null) + '\n';
        }
      }
      await store.upload(`${dir}/tasks.jsonl`, Readable.from(taskLines()));
      await store.put(`${dir}/spark_job.py`, readFileSync(SPARK_JOB_FILE, 'utf8'));
      log(`wrote ${pending.size} partition task(s) to ${spec.tasksUrl}`);

      if (opts.clusterId) {
        const out = await emr().send(
          new AddJobFlowStepsCommand({ JobFlowId: opts.clusterId, Steps: [buildStep(spec, 'CONTINUE')] }),
        );
        stepId = out.StepIds?.[0];
        if (!stepId) throw new Error(`AddJobFlowSteps on ${opts.clusterId} returned no step id`);
        log(`EMR step ${stepId} added to cluster ${opts.clusterId}`);
      } else {
        const action = opts.keepCluster ? 'CONTINUE' : 'TERMINATE_CLUSTER';
        const out = await emr().send(
          new RunJobFlowCommand(buildRunJobFlowInput(opts, runtag, buildStep(spec, action))),
        );
        clusterId = out.JobFlowId;
        if (!clusterId) throw new Error('RunJobFlow returned no cluster id');
        const steps = await emr().send(new ListStepsCommand({ ClusterId: clusterId }));
        stepId = steps.Steps?.[0]?.Id;
        if (!stepId) throw new Error(`cluster ${clusterId} lists no step`);
        log(`EMR cluster ${clusterId} starting (${opts.instanceCount} x ${opts.instanceType}), step ${stepId}`);
      }
      const cluster = clusterId!;
      const step = stepId;

      const collect = (): Promise<void> =>
        collectSuccessManifests(store, runtag, pending, (result) => hooks.onPartitionDone(result));

      const onAbort = (): void => {
        cancelWanted = true;
        void sendCancel().catch((err: unknown) => log(`cancelling EMR step ${step} failed: ${(err as Error).message}`));
      };
      if (opts.signal?.aborted) onAbort();
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      // Filled by the polling loop: the step's last state and why it ended there.
      const end = { state: 'PENDING', reason: '' };
      try {
        if (cancelWanted) await sendCancel();
        for (;;) {
          const out = await emr().send(new DescribeStepCommand({ ClusterId: cluster, StepId: step }));
          const status = out.Step?.Status;
          end.state = status?.State ?? 'UNKNOWN';
          await collect();
          if (TERMINAL.has(end.state)) {
            const f = status?.FailureDetails;
            end.reason = [
              f?.Reason,
              f?.Message,
              f?.LogFile ? `log ${f.LogFile}` : '',
              status?.StateChangeReason?.Message,
            ]
              .filter(Boolean)
              .join('; ');
            break;
          }
          if (opts.signal?.aborted) {
            // Do not wait for the cluster to wind down: what finished is reported.
            end.state = 'CANCELLED';
            end.reason = 'cancelled (interrupted)';
            break;
          }
          await sleep(opts.pollMs ?? 30_000, opts.signal);
        }
      } finally {
        opts.signal?.removeEventListener('abort', onAbort);
      }
      if (cancelSent) await cancelSent.catch(() => {});
      if (end.state !== 'COMPLETED' && !end.reason && !opts.signal?.aborted) {
        const c = await emr().send(new DescribeClusterCommand({ ClusterId: cluster }));
        end.reason = c.Cluster?.Status?.StateChangeReason?.Message ?? '';
      }
      log(`EMR step ${step} on ${cluster}: ${end.state}${end.reason ? ` (${end.reason})` : ''}`);
      if (!opts.clusterId && opts.keepCluster) log(`cluster ${cluster} is kept running (--keep-cluster)`);
      const error =
        end.state === 'COMPLETED'
          ? `EMR step ${step} completed without a success manifest for this partition`
          : `EMR step ${step} on ${cluster} ${end.state}${end.reason ? `: ${end.reason}` : ''}`;
      return { failed: [...pending.keys()].map((partition) => ({ partition, error })) };
    },

    async cancel() {
      cancelWanted = true;
      await sendCancel();
    },

    async close() {
      // The client is ours only when we made it.
      if (!opts.client) client?.destroy();
      client = opts.client;
    },
  };
  return executor;
}
