"""The PySpark job of `--executor spark` and `--executor emr` (driver/executors/spark.ts).

    spark-submit [options] spark_job.py TASKS SPADE_CMD

TASKS      partition task lines (worker/emr-task.ts `EmrTaskLine`, one JSON object
           a line): a local file (client mode: the driver reads it) or a URL that
           Spark itself reads, e.g. s3://... on EMR.
SPADE_CMD  how a worker node runs spade, e.g. `spade` or `/usr/local/bin/spade`.

Every task line becomes one Spark partition; its Spark task pipes the line into
`SPADE_CMD worker run-tasks` on the executor's node, the worker entry point
every executor uses, so the partition runs exactly as it does elsewhere. That
process is kept for the next tasks of the same Python worker (see _Spade). The
submitter sets spark.task.cpus to spark.executor.cores: one partition at a time
per executor, using all its cores through spade's own thread pool.

Spark retries (spark.task.maxFailures) and speculative copies are safe: each run
of a line makes its own attempt id, writes under keys of its own, and only the
attempt whose success manifest the driver reads is ever loaded.

Lines this job writes for the submitter (stderr of spark-submit):
    spade-spark: partition ID failed: ERROR   the partition that failed every attempt
    spade-spark: job failed: REASON           any other reason the job ended
And on the executors' stderr (the worker's work dir), one record per attempt:
    spade-spark: partition ID start|running|end EPOCH_SECONDS pid PID
(running: spade has started and read its task)
Only the Python standard library is used: any python3 on the nodes will do.
"""

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time

FAILED_MARK = "SPADE_PARTITION_FAILED"


def _die_with_parent():
    """spade ends with the Python worker that started it (a killed Spark task, a lost executor)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:  # not Linux: the task's kill still reaches the worker
        pass


class _Spade:
    """One `spade worker run-tasks` process, kept for the tasks this Python worker
    runs next (spark.python.worker.reuse, on by default): no process start and a
    warm thread pool per partition, as the workers daemon has. It reads task lines
    on stdin and answers each with a summary line on stdout; a failed partition
    ends it (exit 1), and the next task starts a new one."""

    def __init__(self, cmd):
        self.proc = subprocess.Popen(
            shlex.split(cmd) + ["worker", "run-tasks"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            preexec_fn=_die_with_parent,
        )
        self.lock = threading.Lock()
        self.tail = []
        self.announce = None  # (partition id) whose first status line marks it running
        self.relay = threading.Thread(target=self._relay, daemon=True)
        self.relay.start()

    def _relay(self):
        """spade's status lines go to this executor's log as they come (live, for whoever follows it)."""
        err = sys.stderr
        for raw in self.proc.stderr:
            text = raw.decode("utf-8", "replace").rstrip("\n")
            with self.lock:
                if self.announce is not None:  # spade has read the task (bench:cluster's dispatch cost)
                    err.write("spade-spark: partition %s running %.3f pid %d\n" % (self.announce, time.time(), os.getpid()))
                    self.announce = None
                self.tail = (self.tail + [text])[-50:]
            err.write(text + "\n")
            err.flush()

    def alive(self):
        return self.proc.poll() is None

    def run(self, pid, line):
        """Returns (0, summary) or (exit code, last stderr lines)."""
        with self.lock:
            self.tail = []
            self.announce = pid
        try:
            self.proc.stdin.write(line.encode("utf-8") + b"\n")
            self.proc.stdin.flush()
            summary = self.proc.stdout.readline().decode("utf-8", "replace").strip()
        except BrokenPipeError:
            summary = ""
        if summary:
            return 0, summary
        try:
            self.proc.stdin.close()  # a failed partition ends the run: stdin's end lets the process exit
        except BrokenPipeError:
            pass
        code = self.proc.wait()
        self.relay.join(10)
        with self.lock:
            return (code or -1), list(self.tail)


def run_line(spade_cmd, line):
    """Runs one partition task on this node; returns spade's summary line or raises for a retry."""
    task = json.loads(line)
    pid = task["partition"]["id"]
    err = sys.stderr
    err.write("spade-spark: partition %s start %.3f pid %d\n" % (pid, time.time(), os.getpid()))
    err.flush()
    # On the sys module: cloudpickle gives each task a fresh copy of this file's globals.
    workers = sys.__dict__.setdefault("_spade_run_tasks", {})
    spade = workers.get(spade_cmd)
    if spade is None or not spade.alive():
        spade = workers[spade_cmd] = _Spade(spade_cmd)
    code, out = spade.run(pid, line)
    err.write("spade-spark: partition %s end %.3f pid %d\n" % (pid, time.time(), os.getpid()))
    err.flush()
    if code != 0:
        reason = next(
            (m.group(1) for m in (re.match(r"spade worker [\w-]+: (.*)", t) for t in reversed(out)) if m),
            out[-1] if out else "no output",
        )
        detail = {"partition": pid, "error": "spade worker run-tasks exited %s: %s" % (code, reason)}
        raise RuntimeError("%s %s" % (FAILED_MARK, json.dumps(detail)))
    return out


def read_lines(sc, tasks):
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", tasks) and not tasks.startswith("file://"):
        lines = sc.textFile(tasks, 1).collect()
    else:
        with open(tasks[len("file://") :] if tasks.startswith("file://") else tasks, encoding="utf-8") as f:
            lines = f.read().splitlines()
    return [l for l in lines if l.strip()]


def main(argv):
    if len(argv) != 3:
        sys.stderr.write("usage: spark-submit spark_job.py TASKS SPADE_CMD\n")
        return 2
    tasks, spade_cmd = argv[1], argv[2]
    from pyspark import SparkContext

    sc = SparkContext()
    try:
        lines = read_lines(sc, tasks)
        if not lines:
            return 0
        try:
            # One element per Spark partition: numSlices = number of lines.
            summaries = sc.parallelize(lines, len(lines)).map(lambda l: run_line(spade_cmd, l)).collect()
        except Exception as e:  # a stage aborted after spark.task.maxFailures attempts of one task
            text = str(e)
            m = re.search(FAILED_MARK + r" (\{.*?\})\s*$", text, re.M)
            if m:
                d = json.loads(m.group(1))
                sys.stderr.write("spade-spark: partition %s failed: %s\n" % (d["partition"], d["error"]))
            else:
                first = next((t for t in text.splitlines() if "Exception" in t or "Error" in t), text[:500])
                sys.stderr.write("spade-spark: job failed: %s\n" % first.strip())
            return 1
        for s in summaries:
            sys.stdout.write(s + "\n")
        return 0
    finally:
        sc.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
