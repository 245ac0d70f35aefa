#!/usr/bin/env python3
"""The whole SwiftHES pipeline as processes, under fire, then checked against DESIGN.md §3.

    scripts/chaos.sh [--rounds N] [--seed S] [--round-seconds T] [--kinds a,b,…] [--keep]

Starts a private PostgreSQL cluster, kafka-dev (regions north and south), meter-sim, ims-sim,
config-service, two schedulers, two collectors per region and two uploaders. The configuration
(pushed by ims-sim as the IMS would) reads every meter each minute (clock, registers, the last
two hours of load profile). While collection runs, each round does one of these, at a random
moment, and undoes it:

  kill-collector, kill-uploader, kill-scheduler, kill-config-service  SIGKILL, restart 1–4 s later
  ims-outage              SIGKILL ims-sim 3 s before a slot, restart 13–18 s later (that slot's
                          collection must go on meanwhile)
  postgres-restart        PostgreSQL stopped (fast) for 5–8 s, then started again
  broker-outage           kafka-dev's broker down for 5–8 s (its messages stay); only with
                          --kinds: librdkafka's mock can abort on it (see DEFAULT_KINDS)
  region-without-collectors  every south collector SIGKILLed, restarted 15 s later
  meter-silent            a healthy meter stops answering for 8–12 s
  config-activation       a new configuration version is activated mid-collection
  disconnect-redelivery   a disconnect command; the moment the meter is disconnected, every
                          collector of its region is SIGKILLed (its task is redelivered); a
                          reconnect follows

Then it lets one clean slot finish, stops the schedulers, waits until the IMS holds a result for
every task the schedulers dispatched, and checks:

  1. no reading lost: every task in the schedulers' ledger has its result at the IMS, and every
     succeeded result's reading batch is at the IMS whole (its reading count) — per task, so a
     later slot's re-read cannot hide a loss; `meter-sim verify` finds every healthy meter's
     profile values of the last slot, with the simulator's values, and no gaps;
  2. nothing stored twice (the IMS's natural keys; redeliveries it absorbed are reported);
  4. collection went on while the IMS was down (results published by the collectors meanwhile);
  6. every command succeeded, and each disconnect/reconnect reached the meter at most once per
     command (the simulator counts remote_disconnect / remote_reconnect invocations);
  and: no process died except by our hand, every process stops cleanly (exit 0 on SIGTERM),
  no Kafka consumer fell off the log, the last configuration pushed is the active one.

The last line is `CHAOS {json}`; the exit code is 0 only when every check holds. Logs and the
figures stay in the run directory (printed; removed at the end unless --keep or a check failed).
"""

import argparse
import ctypes
import datetime as dt
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ALL_KINDS = [
    "kill-collector", "kill-uploader", "kill-scheduler", "kill-config-service", "ims-outage",
    "postgres-restart", "broker-outage", "region-without-collectors", "meter-silent",
    "config-activation", "disconnect-redelivery",
]
# broker-outage is asked for by name only: librdkafka's mock cluster (kafka-dev) can abort when
# a consumer group rejoins after its broker comes back (rd_kafka_mock_cgrp_member_add: Assertion
# `!member->resp' failed), and a restarted kafka-dev has lost every message — a limit of the
# development broker, not of the pipeline (a real cluster keeps its log).
DEFAULT_KINDS = [k for k in ALL_KINDS if k != "broker-outage"]
KILL_KINDS = {"kill-collector", "kill-uploader", "kill-scheduler", "kill-config-service", "ims-outage",
              "region-without-collectors", "disconnect-redelivery"}
REGIONS = ("north", "south")
LOOKBACK_HOURS = 2


def die_with_parent():
    """Child processes get SIGKILL when the harness dies (PR_SET_PDEATHSIG), so a harness killed
    by a test's timeout leaves no service behind holding the meters' ports."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)
    except OSError:
        pass


def log(message):
    print(f"{dt.datetime.now().strftime('%H:%M:%S')} {message}", flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method, url, body=None, timeout=5.0):
    """(status, text) of one request; (0, reason) when nothing answered."""
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")
    except Exception as error:  # refused, reset, timed out: the process is down or busy
        return 0, str(error)


def metric_sum(port, name, label_filter=""):
    status, text = http("GET", f"http://127.0.0.1:{port}/metrics")
    if status != 200:
        return None
    total = 0.0
    for line in text.splitlines():
        if line.startswith("#") or not (line.startswith(name + " ") or line.startswith(name + "{")):
            continue
        if label_filter and label_filter not in line:
            continue
        try:
            total += float(line.rsplit(" ", 1)[1])
        except ValueError:
            pass
    return total


class Process:
    """One service process: started, killed, restarted; its output goes to logs/<name>.log."""

    def __init__(self, harness, name, product, args, env=None, admin_port=None):
        self.harness, self.name, self.product, self.args = harness, name, product, args
        self.env = env or {}
        self.admin_port = admin_port or free_port()
        self.popen = None
        self.starts = 0
        self.killed_by_us = 0
        self.stopped = False  # terminated on purpose (the schedulers before the final checks)

    def start(self):
        self.starts += 1
        log_file = open(os.path.join(self.harness.logs, f"{self.name}.log"), "a")
        log_file.write(f"\n===== start {self.starts} at {dt.datetime.now().isoformat()} =====\n")
        log_file.flush()
        env = dict(self.harness.env)
        env.update(self.env)
        self.popen = subprocess.Popen([os.path.join(self.harness.bin, self.product)] + self.args + ["--admin-port", str(self.admin_port)],
                                      stdout=log_file, stderr=subprocess.STDOUT, env=env, start_new_session=True,
                                      preexec_fn=die_with_parent)
        log_file.close()

    def running(self):
        return self.popen is not None and self.popen.poll() is None

    def kill(self):
        if self.running():
            self.killed_by_us += 1
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait()

    def terminate(self, grace=20):
        """SIGTERM and wait; the exit code (None: did not stop within `grace`, then SIGKILLed)."""
        self.stopped = True
        if not self.running():
            return self.popen.returncode if self.popen else None
        self.popen.send_signal(signal.SIGTERM)
        try:
            return self.popen.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait()
            return None

    def ready(self):
        return http("GET", f"http://127.0.0.1:{self.admin_port}/readyz", timeout=2)[0] == 200

    def wait_ready(self, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.ready():
                return True
            if not self.running():
                return False
            time.sleep(0.2)
        return False


class Harness:
    def __init__(self, options):
        self.options = options
        self.random = random.Random(options.seed)
        self.bin = options.bin or subprocess.run(["swift", "build", "--show-bin-path"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
        self.dir = options.run_dir or tempfile.mkdtemp(prefix="hes-chaos-")
        self.logs = os.path.join(self.dir, "logs")
        os.makedirs(self.logs, exist_ok=True)
        self.pg_dir = tempfile.mkdtemp(prefix="hes-chaos-pg-")
        self.pg_port = free_port()
        self.processes = {}
        self.events = []          # what each round did
        self.commands = []        # (kind, meter, command id)
        self.silenced = set()     # meters made silent for a while
        self.config_versions = 0
        self.ims_outage_results = []  # results the collectors published during IMS outages
        self.failures = []        # checks that did not hold, in words
        self.unexpected_exits = []

    # --- set-up --------------------------------------------------------------------------

    def sh(self, *args, env=None, input=None, check=True):
        merged = dict(self.env if hasattr(self, "env") else os.environ)
        if env:
            merged.update(env)
        result = subprocess.run(list(args), cwd=ROOT, capture_output=True, text=True, env=merged, input=input)
        if check and result.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} exited {result.returncode}: {result.stderr.strip()[-2000:]}")
        return result

    def start_postgres(self):
        database_url = self.sh("scripts/local-postgres.sh", "start", self.pg_dir, str(self.pg_port)).stdout.strip()
        ims_url = self.sh("scripts/local-postgres.sh", "start", self.pg_dir, str(self.pg_port), env={"HES_LOCAL_DB_NAME": "ims_sim"}).stdout.strip()
        return database_url, ims_url

    def psql(self, database, query):
        bindir = sorted([d for d in os.listdir("/usr/lib/postgresql")], key=lambda v: int(v) if v.isdigit() else 0)[-1]
        result = subprocess.run([f"/usr/lib/postgresql/{bindir}/bin/psql", "-h", "127.0.0.1", "-p", str(self.pg_port), "-U", "postgres", "-d", database,
                                 "-At", "-F", "\t", "-c", query], capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"psql {database}: {result.stderr.strip()}")
        return [line.split("\t") for line in result.stdout.splitlines() if line]

    def fleet(self):
        """North: TCP wrapper meters, a gateway with two HDLC lines, HLS-GMAC meters. South: TCP
        HDLC meters, wrapper meters, and the broken ones (silent, garbage)."""
        base = self.options.port_base
        north_ports = (base, base + 100, base + 200)
        south_ports = (base + 500, base + 600, base + 700, base + 800)
        self.south_ports = set(range(base + 500, base + 1000))
        m = self.options.meters_per_group
        return {"seed": 0, "password": "12345678", "groups": [
            {"count": m, "transport": "tcp", "framing": "wrapper", "port": north_ports[0], "access": "lls", "faults": {"latency": "40ms"}},
            {"count": 8, "transport": "gateway-udp", "framing": "hdlc", "metersPerLine": 4, "port": north_ports[1], "access": "lls", "faults": {"latency": "20ms"}},
            {"count": 4, "transport": "tcp", "framing": "wrapper", "port": north_ports[2], "access": "hls-gmac", "faults": {"latency": "40ms"}},
            {"count": m, "transport": "tcp", "framing": "hdlc", "port": south_ports[0], "access": "lls", "faults": {"latency": "40ms"}},
            {"count": 4, "transport": "tcp", "framing": "wrapper", "port": south_ports[1], "access": "lls"},
            {"count": 2, "transport": "tcp", "framing": "wrapper", "port": south_ports[2], "faults": {"silent": 1.0}, "access": "lls"},
            {"count": 2, "transport": "tcp", "framing": "wrapper", "port": south_ports[3], "faults": {"garbage": 1.0}, "access": "lls"},
        ]}

    def configuration(self, version_note):
        """`meter-sim config` for the fleet, its lines split between the two regions."""
        text = self.sh(os.path.join(self.bin, "meter-sim"), "config", "--fleet", self.fleet_file, "--example-keys", "--region", "north",
                       "--cron", "* * * * *", "--window-minutes", "3", "--lookback-hours", str(LOOKBACK_HOURS)).stdout
        document = json.loads(text)
        for line in document["lines"]:
            if line.get("endpoint", {}).get("port") in self.south_ports:
                line["region"] = "south"
        document["regions"] = [{"id": "north", "name": f"chaos north ({version_note})"}, {"id": "south", "name": f"chaos south ({version_note})"}]
        return document

    def setup(self):
        log(f"run directory {self.dir}; binaries {self.bin}; seed {self.options.seed}")
        database_url, ims_database_url = self.start_postgres()
        master_key = os.path.join(self.dir, "master-key")
        with open(master_key, "w") as f:
            f.write(os.urandom(16).hex())
        self.api_port, self.ims_port = free_port(), free_port()
        bootstrap_file = os.path.join(self.dir, "kafka-bootstrap")
        self.env = dict(os.environ)
        self.env.update({
            "HES_DATABASE_URL": database_url, "HES_IMS_DATABASE_URL": ims_database_url,
            "HES_IMS_URL": f"http://127.0.0.1:{self.ims_port}", "HES_CONFIG_URL": f"http://127.0.0.1:{self.api_port}",
            "HES_API_TOKEN": "chaos-admin-token", "HES_MASTER_KEY_FILE": master_key,
            "HES_LOG_LEVEL": os.environ.get("HES_LOG_LEVEL", "info"),
        })
        self.fleet_file = os.path.join(self.dir, "fleet.json")
        with open(self.fleet_file, "w") as f:
            json.dump(self.fleet(), f)

        kafka = self.add("kafka-dev", "kafka-dev", ["--regions", ",".join(REGIONS), "--partitions", "6", "--bootstrap-file", bootstrap_file])
        kafka.start()
        for _ in range(200):
            if os.path.exists(bootstrap_file) and open(bootstrap_file).read().strip():
                break
            time.sleep(0.1)
        else:
            raise RuntimeError("kafka-dev wrote no bootstrap address")
        self.env["HES_KAFKA_BROKERS"] = open(bootstrap_file).read().strip()

        self.add("ims-sim", "ims-sim", ["serve", "--port", str(self.ims_port)])
        self.add("meter-sim", "meter-sim", ["--fleet", self.fleet_file, "--example-keys"])
        self.add("config-service", "config-service", ["--api-port", str(self.api_port)])
        for n in (1, 2):
            self.add(f"scheduler-{n}", "scheduler", ["--catch-up", "3m"])
        for region in REGIONS:
            for n in (1, 2):
                self.add(f"collector-{region}-{n}", "collector", ["--region", region, "--kafka-session-timeout", "6s", "--step-timeout", "3s", "--session-attempts", "2"])
        for n in (1, 2):
            self.add(f"uploader-{n}", "uploader", ["--kafka-session-timeout", "6"])
        for name, process in self.processes.items():
            if name != "kafka-dev":
                process.start()
        for name, process in self.processes.items():
            if not process.wait_ready(90):
                raise RuntimeError(f"{name} did not become ready; see {self.logs}/{name}.log")
        log("every process is ready: " + ", ".join(f"{n} :{p.admin_port}" for n, p in self.processes.items()))

        self.push_configuration("v1")
        self.meters = json.loads(http("GET", f"http://127.0.0.1:{self.processes['meter-sim'].admin_port}/meters")[1])
        self.healthy = [m["serial"] for m in self.meters if not m["faults"]["silent"] and not m["faults"]["garbage"] and not m["refusesAssociation"]]

    def add(self, name, product, args):
        process = Process(self, name, product, args)
        self.processes[name] = process
        return process

    def push_configuration(self, note):
        path = os.path.join(self.dir, f"config-{note}.json")
        with open(path, "w") as f:
            json.dump(self.configuration(note), f)
        result = self.sh(os.path.join(self.bin, "ims-sim"), "push", "config", path, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"configuration {note} refused: {result.stdout}{result.stderr}")
        self.config_versions += 1
        return result.stdout

    def push_command(self, request):
        result = self.sh(os.path.join(self.bin, "ims-sim"), "push", "command", "-", input=json.dumps(request), check=False)
        if result.returncode != 0:
            raise RuntimeError(f"command {request} refused: {result.stdout}{result.stderr}")
        answer = json.loads(result.stdout)
        return answer.get("id") or answer.get("command", {}).get("id")

    # --- chaos ---------------------------------------------------------------------------

    def meter_status(self, serial):
        status, text = http("GET", f"http://127.0.0.1:{self.processes['meter-sim'].admin_port}/meters/{serial}")
        return json.loads(text) if status == 200 else None

    def collectors(self, region=None):
        return [p for n, p in self.processes.items() if n.startswith("collector-") and (region is None or f"-{region}-" in n)]

    def restart_later(self, processes, low, high):
        time.sleep(self.random.uniform(low, high))
        for process in processes:
            process.start()

    def results_published(self):
        return sum(metric_sum(p.admin_port, "hes_collector_task_results_total") or 0 for p in self.collectors())

    def round(self, number, kind):
        started = time.time()
        detail = ""
        if kind.startswith("kill-"):
            prefix = kind[len("kill-"):]
            victims = [p for n, p in self.processes.items() if n.startswith(prefix) and p.running()]
            victim = self.random.choice(victims)
            victim.kill()
            detail = victim.name
            self.restart_later([victim], 1, 4)
        elif kind == "ims-outage":
            # Down across a slot's start, so the slot's collection happens while the IMS is away.
            time.sleep((60 - time.time() % 60 - 3) % 60)
            ims = self.processes["ims-sim"]
            before = self.results_published()
            ims.kill()
            time.sleep(self.random.uniform(13, 18))
            during = self.results_published() - before
            self.ims_outage_results.append(during)
            ims.start()
            detail = f"{during:.0f} task results published by the collectors while the IMS was down"
        elif kind == "postgres-restart":
            self.sh("scripts/local-postgres.sh", "stop", self.pg_dir, str(self.pg_port))
            time.sleep(self.random.uniform(5, 8))
            self.sh("scripts/local-postgres.sh", "start", self.pg_dir, str(self.pg_port))
        elif kind == "broker-outage":
            port = self.processes["kafka-dev"].admin_port
            status, text = http("POST", f"http://127.0.0.1:{port}/brokers/1/down")
            if status != 200:
                raise RuntimeError(f"kafka-dev refused the outage switch: {status} {text}")
            time.sleep(self.random.uniform(5, 8))
            http("POST", f"http://127.0.0.1:{port}/brokers/1/up")
        elif kind == "region-without-collectors":
            south = self.collectors("south")
            for process in south:
                process.kill()
            detail = f"{len(south)} south collectors down 15 s"
            time.sleep(15)
            for process in south:
                process.start()
        elif kind == "meter-silent":
            serial = self.random.choice(self.healthy)
            port = self.processes["meter-sim"].admin_port
            http("POST", f"http://127.0.0.1:{port}/meters/{serial}/faults", {"silent": True})
            self.silenced.add(serial)
            time.sleep(self.random.uniform(8, 12))
            http("POST", f"http://127.0.0.1:{port}/meters/{serial}/faults", {"silent": False})
            detail = serial
        elif kind == "config-activation":
            self.push_configuration(f"v{self.config_versions + 1}")
            detail = f"version {self.config_versions} active"
        elif kind == "disconnect-redelivery":
            detail = self.disconnect_redelivery()
        else:
            raise RuntimeError(f"unknown kind {kind}")
        self.events.append({"round": number, "kind": kind, "detail": detail, "seconds": round(time.time() - started, 1)})
        log(f"round {number:2d} {kind:26s} {detail}")

    def disconnect_redelivery(self):
        # A north TCP meter: its collectors are the ones killed.
        candidates = [m["serial"] for m in self.meters if m["serial"] in self.healthy and m["transport"] == "tcp"
                      and int(m["address"].rsplit(":", 1)[1]) < self.options.port_base + 500
                      and m["serial"] not in {c[1] for c in self.commands}]
        serial = self.random.choice(candidates)
        command = self.push_command({"kind": "disconnect", "meterID": serial})
        self.commands.append(("disconnect", serial, command))
        deadline = time.time() + 90
        while time.time() < deadline:
            status = self.meter_status(serial)
            if status and status["disconnectState"] == "disconnected":
                break
            time.sleep(0.02)
        else:
            return f"{serial}: not disconnected within 90 s"
        north = self.collectors("north")
        for process in north:
            process.kill()
        time.sleep(self.random.uniform(1, 3))
        for process in north:
            process.start()
        reconnect = self.push_command({"kind": "reconnect", "meterID": serial})
        self.commands.append(("reconnect", serial, reconnect))
        return f"{serial}: disconnected, north collectors SIGKILLed at once; reconnect sent"

    def check_alive(self):
        for name, process in self.processes.items():
            if process.popen and not process.stopped and process.popen.poll() is not None:
                code = process.popen.returncode
                if code != -signal.SIGKILL:
                    self.unexpected_exits.append(f"{name} exited {code} (start {process.starts})")
                    log(f"!! {name} died by itself (exit {code}); restarting it")
                    process.start()

    def chaos(self, kinds):
        gap = self.options.round_seconds
        for number, kind in enumerate(kinds, 1):
            time.sleep(self.random.uniform(0, gap / 2))
            self.round(number, kind)
            self.check_alive()
            time.sleep(self.random.uniform(gap / 4, gap / 2))
            self.check_alive()

    # --- settling and checks -------------------------------------------------------------

    def wait_for(self, what, predicate, timeout, every=2.0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            self.check_alive()
            value = predicate()
            if value:
                return value
            time.sleep(every)
        log(f"!! {what}: not within {timeout:.0f} s")
        return None

    def ledger(self):
        return {row[0]: row for row in self.psql("hes", "SELECT task_id::text, kind, meter_id, extract(epoch FROM slot)::bigint, coalesce(command_id::text, '') FROM dispatched_tasks")}

    def ims_results(self):
        return {row[0]: row for row in self.psql("ims_sim", "SELECT lower(task_id), outcome, coalesce(failure_code, ''), reading_count, meter_id FROM ims_results")}

    def settle(self):
        # Every process back up, then a slot that starts after the chaos runs clean.
        for process in self.processes.values():
            if not process.running():
                process.start()
        for name, process in self.processes.items():
            if not process.wait_ready(120):
                self.failures.append(f"{name} not ready after the chaos")
        chaos_end = time.time()
        clean_slot = (int(chaos_end) // 60 + 1) * 60
        log(f"chaos over; waiting for the clean slot {dt.datetime.utcfromtimestamp(clean_slot).strftime('%H:%M')} UTC to be dispatched and done")

        def clean_slot_done():
            ledger = self.ledger()
            slot_tasks = [t for t, row in ledger.items() if row[1] == "scheduled" and int(row[3]) >= clean_slot]
            if len(slot_tasks) < len(self.meters):
                return False
            results = self.ims_results()
            return all(t in results for t in slot_tasks)
        if not self.wait_for("the clean slot's results at the IMS", clean_slot_done, timeout=60 + 240):
            self.failures.append("the clean slot after the chaos did not complete: collection did not resume")
        # No new slots from here on; everything dispatched must reach the IMS.
        for n in (1, 2):
            code = self.processes[f"scheduler-{n}"].terminate()
            if code != 0:
                self.failures.append(f"scheduler-{n} did not stop cleanly (exit {code})")

        def drained():
            ledger, results = self.ledger(), self.ims_results()
            missing = [t for t in ledger if t not in results]
            return (ledger, results) if not missing else None
        settled = self.wait_for("every dispatched task's result at the IMS", drained, timeout=240)
        ledger, results = settled or (self.ledger(), self.ims_results())
        # Readings may trail their results by a request or two.
        previous = None
        for _ in range(30):
            count = self.psql("ims_sim", "SELECT count(*) FROM ims_readings")[0][0]
            if count == previous:
                break
            previous = count
            time.sleep(2)
        return ledger, results

    def check(self, ledger, results):
        figures = {}
        missing = sorted(t for t in ledger if t not in results)
        figures["tasks_dispatched"] = len(ledger)
        figures["tasks_by_kind"] = {k: sum(1 for r in ledger.values() if r[1] == k) for k in ("scheduled", "command", "gap-recovery")}
        figures["results_at_ims"] = len(results)
        figures["tasks_without_result"] = len(missing)
        if missing:
            self.failures.append(f"{len(missing)} dispatched tasks have no result at the IMS, e.g. {missing[:3]}")
        outcomes = {}
        for row in results.values():
            key = row[1] + (":" + row[2] if row[2] else "")
            outcomes[key] = outcomes.get(key, 0) + 1
        figures["outcomes"] = dict(sorted(outcomes.items()))

        # Invariant 1, per task: each succeeded result's batch is at the IMS with all its readings.
        batches = {row[0]: int(row[1]) for row in self.psql("ims_sim", "SELECT lower(task_id), sum(reading_count) FROM ims_batches GROUP BY 1")}
        short = []
        for task, row in results.items():
            expected = int(row[3])
            if row[1] in ("succeeded", "partial") and expected > 0 and batches.get(task, 0) < expected:
                short.append(f"{task} ({row[4]}): {batches.get(task, 0)} of {expected}")
        figures["succeeded_tasks_with_readings"] = sum(1 for r in results.values() if r[1] in ("succeeded", "partial") and int(r[3]) > 0)
        figures["tasks_with_readings_missing"] = len(short)
        if short:
            self.failures.append(f"{len(short)} succeeded tasks' readings are not all at the IMS: {short[:3]}")
        # Healthy meters that were never silenced must have succeeded in every scheduled slot
        # after the first minute of chaos; failures of others are by reason.
        healthy_failed = sorted({r[4] for r in results.values() if r[1] not in ("succeeded",) and r[4] in self.healthy and r[4] not in self.silenced})
        figures["healthy_meters_with_a_failed_task"] = healthy_failed

        counters = dict((row[0], int(row[1])) for row in self.psql("ims_sim", "SELECT name, value FROM ims_counters"))
        figures["readings_at_ims"] = int(self.psql("ims_sim", "SELECT count(*) FROM ims_readings")[0][0])
        figures["ims_duplicates_absorbed"] = {"readings": counters.get("duplicate_readings", 0), "results": counters.get("duplicate_results", 0)}
        figures["ims_replayed_requests"] = counters.get("replayed_requests", 0)

        # meter-sim verify: the last scheduled slot's profile range, every healthy meter.
        last_slot = max(int(r[3]) for r in ledger.values() if r[1] == "scheduled")
        to = dt.datetime.utcfromtimestamp(last_slot)
        start = to - dt.timedelta(hours=LOOKBACK_HOURS)
        verify = self.sh(os.path.join(self.bin, "meter-sim"), "verify", "--ims-url", f"http://127.0.0.1:{self.ims_port}",
                         "--sim-url", f"http://127.0.0.1:{self.processes['meter-sim'].admin_port}",
                         "--from", start.strftime("%Y-%m-%dT%H:%M:%SZ"), "--to", to.strftime("%Y-%m-%dT%H:%M:%SZ"), "--verbose", check=False)
        with open(os.path.join(self.dir, "verify.txt"), "w") as f:
            f.write(verify.stdout + verify.stderr)
        summary_line = next((l for l in reversed(verify.stdout.splitlines()) if l.startswith("SUMMARY ")), None)
        verify_summary = json.loads(summary_line[8:]) if summary_line else {"ok": False}
        figures["verify"] = {k: verify_summary.get(k) for k in ("ok", "meters_expected", "meters_read", "meters_failed", "meters_failed_by_reason",
                                                                 "readings_expected", "readings_confirmed", "readings_wrong", "duplicates", "gaps")}
        if not verify_summary.get("ok"):
            self.failures.append(f"meter-sim verify: {verify.stdout.strip().splitlines()[-3:] if verify.stdout.strip() else verify.stderr[-500:]}")

        # Invariant 6: commands succeeded, each executed at most once on its meter.
        listing = self.sh(os.path.join(self.bin, "hesctl"), "commands", "list", "--json", check=False).stdout
        try:
            items = json.loads(listing)
            items = items.get("commands", items) if isinstance(items, dict) else items
        except json.JSONDecodeError:
            items = []
        states = {c["id"].lower(): c["state"] for c in items}
        command_figures = []
        for kind, serial, command in self.commands:
            state = states.get(str(command).lower(), "unknown")
            meter = self.meter_status(serial) or {}
            sent = sum(1 for k, s, _ in self.commands if k == kind and s == serial)
            executed = meter.get("disconnectActions" if kind == "disconnect" else "reconnectActions", -1)
            item = next((c for c in items if c["id"].lower() == str(command).lower()), {})
            try:
                details = json.loads(item.get("result") or "{}").get("details") or {}
            except (json.JSONDecodeError, AttributeError):
                details = {}
            command_figures.append({"kind": kind, "meter": serial, "state": state, "executed_on_meter": executed, "commands_sent": sent,
                                    "supply_action_of_the_reported_run": details.get("supplyAction")})
            if state != "succeeded":
                self.failures.append(f"{kind} command {command} on {serial} is {state}, not succeeded")
            if executed > sent:
                self.failures.append(f"{kind} on {serial} executed {executed} times for {sent} command(s)")
            if kind == "disconnect" and executed < 1:
                self.failures.append(f"disconnect on {serial} never reached the meter")
        figures["commands"] = command_figures

        # Invariant 4: the collectors went on while the IMS was down.
        figures["results_published_during_ims_outages"] = self.ims_outage_results
        if any(n <= 0 for n in self.ims_outage_results):
            self.failures.append(f"no task result was published during an IMS outage: {self.ims_outage_results}")

        lost = sum(metric_sum(p.admin_port, "hes_kafka_messages_lost_total") or 0 for n, p in self.processes.items() if n.startswith(("collector", "uploader")))
        figures["kafka_messages_lost"] = lost
        if lost:
            self.failures.append(f"{lost:.0f} Kafka messages fell off the log before a consumer read them")

        versions = self.sh(os.path.join(self.bin, "hesctl"), "config", "versions", check=False).stdout
        figures["config_versions_pushed"] = self.config_versions
        active = [l for l in versions.splitlines() if "active" in l]
        if not active or not active[0].split()[0].lstrip("v").isdigit() or int(active[0].split()[0].lstrip("v")) != self.config_versions:
            self.failures.append(f"the active configuration is not the last one pushed ({self.config_versions}): {versions.strip()[-400:]}")
        return figures

    def stop(self):
        codes = {}
        for name in reversed(list(self.processes)):
            process = self.processes[name]
            if process.popen is None:
                continue
            codes[name] = process.terminate()
        self.sh("scripts/local-postgres.sh", "purge", self.pg_dir, str(self.pg_port), check=False)
        return codes


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=20, help="chaos rounds (default 20: every default kind twice)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: from the clock; printed)")
    parser.add_argument("--round-seconds", type=float, default=14, help="mean seconds between rounds' starts (default 14)")
    parser.add_argument("--kinds", default=",".join(DEFAULT_KINDS), help="comma-separated round kinds to use, in turn (default: all but broker-outage)")
    parser.add_argument("--meters-per-group", type=int, default=12, help="meters in each of the two large groups (default 12)")
    parser.add_argument("--port-base", type=int, default=17000, help="first meter port (default 17000, below the range tests pick free ports from; uses base … base+999)")
    parser.add_argument("--bin", default=None, help="directory of the executables (default: swift build --show-bin-path)")
    parser.add_argument("--run-dir", default=None, help="where logs and figures go (default: a temporary directory)")
    parser.add_argument("--keep", action="store_true", help="keep the run directory")
    options = parser.parse_args()
    if options.seed is None:
        options.seed = int(time.time())
    kinds = [k for k in options.kinds.split(",") if k]
    unknown = [k for k in kinds if k not in ALL_KINDS]
    if unknown or not kinds:
        parser.error(f"unknown kinds {unknown}; they are {', '.join(ALL_KINDS)}")
    # SIGTERM (a test's timeout, Ctrl-C's cousin) stops the services through the finally below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    harness = Harness(options)
    # Each kind in turn, in an order shuffled per pass, so every kind is covered.
    plan = []
    while len(plan) < options.rounds:
        batch = list(kinds)
        harness.random.shuffle(batch)
        plan.extend(batch)
    plan = plan[:options.rounds]
    started = time.time()
    summary = {"seed": options.seed, "rounds": len(plan), "run_dir": harness.dir}
    try:
        harness.setup()
        log(f"configuration active; {len(harness.meters)} meters ({len(harness.healthy)} healthy) in regions {', '.join(REGIONS)}")
        # Collection under way before the first round.
        harness.wait_for("the first results at the IMS", lambda: len(harness.ims_results()) > 0, timeout=120)
        harness.chaos(plan)
        ledger, results = harness.settle()
        summary.update(harness.check(ledger, results))
    except Exception as error:  # the harness itself failed: say so, keep the logs
        harness.failures.append(f"harness: {error}")
        log(f"!! {error}")
    finally:
        codes = harness.stop()
    unclean = {n: c for n, c in codes.items() if c not in (0,)}
    if unclean:
        harness.failures.append(f"processes did not stop cleanly: {unclean}")
    if harness.unexpected_exits:
        harness.failures.append(f"processes died by themselves: {harness.unexpected_exits}")
    kills = {n: p.killed_by_us for n, p in harness.processes.items() if p.killed_by_us}
    summary.update({
        "kill_rounds": sum(1 for e in harness.events if e["kind"] in KILL_KINDS),
        "sigkills": kills, "events": harness.events, "seconds": round(time.time() - started),
        "failures": harness.failures, "ok": not harness.failures,
    })
    print()
    print("== rounds")
    for event in harness.events:
        print(f"{event['round']:3d} {event['kind']:26s} {event['detail']}")
    print("== checks: " + ("all hold" if not harness.failures else f"{len(harness.failures)} failed"))
    for failure in harness.failures:
        print(f"  FAIL {failure}")
    print(f"logs: {harness.logs}")
    if not options.keep and not harness.failures and not options.run_dir:
        subprocess.run(["rm", "-rf", harness.dir])
    print("CHAOS " + json.dumps(summary, sort_keys=True))
    sys.exit(0 if summary["ok"] else 1)


if __name__ == "__main__":
    main()
