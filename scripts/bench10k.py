#!/usr/bin/env python3
"""Scale benchmark driver (PRODUCT 3.9): simulator + daemon on loopback, N images.

Started by scripts/bench-10k.sh, which builds the release binary first. Standard library only.
Measures, per poll cycle: duration (daemon gauge and as the simulator saw it), daemon CPU per
1,000 polls, RSS, /metrics render time and size, and the SQLite state size. Scenario "steady":
no image changes. Scenario "churn": 1 % of the images change status before every cycle
(ERROR, then back to ACTIVE, ...), which exercises the write path (events, alert state).
Prints numbers only; asserts nothing. Everything it starts is stopped on exit.
"""

import argparse
import json
import math
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

PROJECT_ID = "0bf8e7b0c1a94b6a9d1c2f3e4a5b6c7d"  # the simulator's default project
AK = "SIMDEMOACCESSKEY0000"  # simulator demo key, not a secret
SK = "simdemosecretkey0000000000000000000000000"  # simulator demo key, not a secret
CLK_TCK = os.sysconf("SC_CLK_TCK")
SPREAD_FRACTION = 0.8  # src/watch/cycle.rs: requests spread over 80 % of the interval


def die_with_parent():
    """preexec_fn: the child gets SIGTERM if this driver dies, even by SIGKILL (Linux)."""
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def generated_id(i: int) -> str:
    """Mirror of crate::sim::config::generated_id."""
    return f"{i:08x}-0000-4000-8000-{i:012x}"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method: str, url: str, body=None, timeout=5.0):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.status, r.read()


def cpu_secs(pid: int) -> float:
    """utime + stime of a process (all threads), seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # fields 14, 15 of stat(5)


def status_kb(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def thread_cpu(pid: int) -> dict:
    """CPU seconds per thread name (summed over threads of the same name)."""
    out: dict = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                raw = f.read()
        except OSError:
            continue
        name = raw[raw.index("(") + 1 : raw.rindex(")")]
        fields = raw.rsplit(")", 1)[1].split()
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / CLK_TCK
    return out


class RssSampler(threading.Thread):
    """Samples VmRSS of a process once a second."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid = pid
        self.samples = []  # (t, rss_kb)
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            try:
                self.samples.append((time.monotonic(), status_kb(self.pid, "VmRSS")))
            except OSError:
                return
            self.stop.wait(1.0)


def show_count(sim: str) -> int:
    _, body = http("GET", f"{sim}/_sim/stats")
    stats = json.loads(body)
    return sum(stats.get("requests", {}).get("show_image", {}).values())


def gauge(text: str, name: str) -> float:
    m = re.search(rf"^{name}(?:{{[^}}]*}})? ([0-9.eE+-]+)$", text, re.M)
    return float(m.group(1)) if m else 0.0  # counters with labels appear on first use


def curl_metrics(url: str, gzip: bool):
    cmd = ["curl", "-s", "-o", "/dev/null", "-w", "%{time_total} %{size_download}", url]
    if gzip:
        cmd[1:1] = ["-H", "Accept-Encoding: gzip"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=30).stdout
    t, size = out.split()
    return float(t), int(size)


def write_config(path, sim_url, n, interval, rate, concurrency, state_path, listen):
    lines = [
        "# Written by scripts/bench10k.py; simulator values, not secrets.",
        "[[clouds]]",
        'name = "sim"',
        'provider = "otc"',
        'region = "eu-de"',
        f'project_id = "{PROJECT_ID}"',
        f'endpoint = "{sim_url}"',
        f'iam_endpoint = "{sim_url}"',
        f"max_requests_per_second = {rate}",
        "[clouds.auth]",
        'type = "aksk"',
        f'access_key = "{AK}"',
        f'secret_key = "{SK}"',
        "",
        "[poll]",
        f'interval = "{interval}s"',
        'timeout = "10s"',
        f"concurrency = {concurrency}",
        f"max_requests_per_second = {rate}",
        "",
        "[web]",
        f'listen = "{listen}"',
        "",
        "[state]",
        f'path = "{state_path}"',
        "",
    ]
    for i in range(n):
        lines += ["[[images]]", f'id = "{generated_id(i)}"']
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def wait_for(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if pred():
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.2)
    raise SystemExit(f"bench: timed out waiting for {what}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--images", type=int, default=10000)
    ap.add_argument("--interval", type=int, default=60, help="poll interval, seconds")
    ap.add_argument("--steady", type=int, default=3, help="steady cycles after the first")
    ap.add_argument("--churn", type=int, default=3, help="cycles with 1 %% status changes")
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--state-dir", default=None, help="default: a new temp dir under /var/tmp")
    ap.add_argument("--keep", action="store_true", help="keep config, state and logs")
    ap.add_argument(
        "--no-scrape",
        action="store_true",
        help="never fetch /metrics (to tell scrape memory from poll memory); gauge shows 0",
    )
    args = ap.parse_args()

    n, iv = args.images, args.interval
    # Headroom: twice what spreading N requests over 80 % of the interval needs, at least 400.
    rate = max(400, math.ceil(2 * n / (SPREAD_FRACTION * iv)))
    work = tempfile.mkdtemp(prefix="bench10k-", dir=args.state_dir or "/var/tmp")
    procs = []

    def cleanup(*_):
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(130))
    try:
        run(args, n, iv, rate, work, procs)
    finally:
        cleanup()


def run(args, n, iv, rate, work, procs):
    sim_port, web_port = free_port(), free_port()
    sim_url = f"http://127.0.0.1:{sim_port}"
    web_url = f"http://127.0.0.1:{web_port}"
    sim = subprocess.Popen(
        [args.bin, "simulate", "--images", str(n), "--listen", f"127.0.0.1:{sim_port}"],
        stdout=open(f"{work}/sim.out", "w"),
        stderr=subprocess.STDOUT,
        preexec_fn=die_with_parent,
    )
    procs.append(sim)
    wait_for(lambda: http("GET", f"{sim_url}/_sim/stats")[0] == 200, 30, "the simulator")

    state = f"{work}/state.db"
    cfg = f"{work}/config.toml"
    write_config(cfg, sim_url, n, iv, rate, args.concurrency, state, f"127.0.0.1:{web_port}")
    log = open(f"{work}/daemon.log", "w")
    t_start = time.monotonic()
    daemon = subprocess.Popen(
        [args.bin, "--config.file", cfg, "run"],
        stdout=log,
        stderr=subprocess.STDOUT,
        preexec_fn=die_with_parent,
    )
    procs.append(daemon)
    pid = daemon.pid
    rss = RssSampler(pid)
    rss.start()
    wait_for(lambda: http("GET", f"{web_url}/healthz")[0] == 200, 60, "the daemon")
    t_ready = time.monotonic()
    rss_after_start = status_kb(pid, "VmRSS")

    total = 1 + args.steady + args.churn
    cycles = []
    churn_ids = [generated_id(i) for i in range(0, n, 100)][: max(1, n // 100)]
    count = 0
    for k in range(1, total + 1):
        kind = "first" if k == 1 else ("steady" if k <= 1 + args.steady else "churn")
        # Wait for the cycle to start (first request seen), then for all N requests.
        wait_until = time.monotonic() + iv * 2 + 60
        while count <= (k - 1) * n:
            if daemon.poll() is not None:
                raise SystemExit(f"bench: daemon exited ({daemon.returncode}); rerun with --keep")
            if time.monotonic() > wait_until:
                raise SystemExit(f"bench: cycle {k} did not start")
            time.sleep(0.05)
            count = show_count(sim_url)
        t0 = time.monotonic()
        cpu0 = cpu_secs(pid)
        thr0 = thread_cpu(pid)
        while count < k * n:
            if daemon.poll() is not None:
                raise SystemExit(f"bench: daemon exited ({daemon.returncode}); see its log")
            if time.monotonic() > wait_until:
                raise SystemExit(f"bench: cycle {k} did not finish ({count} requests)")
            time.sleep(0.1)
            count = show_count(sim_url)
        t1 = time.monotonic()
        time.sleep(0.5)  # let the last answers be applied and the gauge be set
        cpu1 = cpu_secs(pid)
        thr1 = thread_cpu(pid)
        rss_now = status_kb(pid, "VmRSS")
        # /metrics: plain then gzip (daemon CPU of the scrapes measured separately).
        if args.no_scrape:
            plain = gz = (0.0, 0)
            cpu2 = cpu1
            text = ""
        else:
            plain = curl_metrics(f"{web_url}/metrics", False)
            gz = curl_metrics(f"{web_url}/metrics", True)
            cpu2 = cpu_secs(pid)
            _, body = http("GET", f"{web_url}/metrics", timeout=30)
            text = body.decode()
        poll_dur = gauge(text, "modelarts_poll_duration_seconds")
        skipped = gauge(text, "modelarts_poll_cycles_skipped_total")
        failures = sum(
            float(v) for v in re.findall(r"^modelarts_poll_failures_total{[^}]*} (\S+)$", text, re.M)
        )
        db, wal = (os.path.getsize(p) if os.path.exists(p) else 0 for p in (state, state + "-wal"))
        changed = 0
        if k < total and k >= 1 + args.steady:
            # The next cycle is a churn cycle: flip 1 % of the images before its tick.
            status = "ERROR" if (k - args.steady) % 2 == 1 else "ACTIVE"
            for id_ in churn_ids:
                http("PATCH", f"{sim_url}/_sim/images/{id_}", {"status": status})
            changed = len(churn_ids)
        cycles.append(
            dict(
                k=k,
                kind=kind,
                sim_secs=t1 - t0,
                poll_secs=poll_dur,
                cpu=cpu1 - cpu0,
                cpu_per_1k=(cpu1 - cpu0) * 1000 / n,
                scrape_cpu=cpu2 - cpu1,
                rss_mb=rss_now / 1024,
                plain=plain,
                gzip=gz,
                db_mb=db / 1e6,
                wal_mb=wal / 1e6,
                skipped=skipped,
                failures=failures,
                threads={t: thr1.get(t, 0) - thr0.get(t, 0) for t in thr1},
                lines=text.count("\n"),
                changed_before_next=changed,
            )
        )
        print(
            f"cycle {k} ({kind}): sim saw {n} requests in {t1 - t0:.1f}s, "
            f"gauge {poll_dur:.1f}s, CPU {cpu1 - cpu0:.2f}s, RSS {rss_now / 1024:.1f} MB",
            flush=True,
        )

    rss.stop.set()
    hwm = status_kb(pid, "VmHWM")
    report(args, n, iv, rate, cycles, t_ready - t_start, rss_after_start, hwm, rss.samples, work)


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def report(args, n, iv, rate, cycles, startup, rss_start, hwm, samples, work):
    def group(kind):
        return [c for c in cycles if c["kind"] == kind]

    print()
    print(f"== modelarts-image-exporter scale benchmark: {n} images, interval {iv}s ==")
    print(
        f"machine: {os.cpu_count()} CPUs ({cpu_model()}), kernel {os.uname().release}; "
        f"rate limit {rate}/s, concurrency {args.concurrency}, state in {work}"
    )
    print(f"daemon start to /healthz: {startup:.2f}s; RSS then {rss_start / 1024:.1f} MB")
    print()
    hdr = (
        f"{'cycle':>5} {'kind':<6} {'sim s':>6} {'gauge s':>7} {'CPU s':>6} {'CPU/1k':>7} "
        f"{'RSS MB':>7} {'plain ms':>8} {'plain KB':>8} {'gz ms':>6} {'gz KB':>6} "
        f"{'scrape CPU':>10} {'db MB':>6} {'wal MB':>6} {'fail':>4} {'skip':>4}"
    )
    print(hdr)
    for c in cycles:
        print(
            f"{c['k']:>5} {c['kind']:<6} {c['sim_secs']:>6.1f} {c['poll_secs']:>7.1f} "
            f"{c['cpu']:>6.2f} {c['cpu_per_1k']:>7.3f} {c['rss_mb']:>7.1f} "
            f"{c['plain'][0] * 1000:>8.0f} {c['plain'][1] / 1024:>8.0f} "
            f"{c['gzip'][0] * 1000:>6.0f} {c['gzip'][1] / 1024:>6.0f} "
            f"{c['scrape_cpu']:>10.2f} {c['db_mb']:>6.1f} {c['wal_mb']:>6.1f} {c['failures']:>4.0f} "
            f"{c['skipped']:>4.0f}"
        )
    print()
    rss_vals = [kb for _, kb in samples]
    print("summary (medians):")
    for kind in ("first", "steady", "churn"):
        g = group(kind)
        if not g:
            continue
        print(
            f"  {kind:<6}: CPU {med([c['cpu_per_1k'] for c in g]):.3f} s per 1,000 polls "
            f"({med([c['cpu'] for c in g]) / iv * 100:.1f} % of one core at this interval), "
            f"sim-seen cycle {med([c['sim_secs'] for c in g]):.1f}s, "
            f"gauge {med([c['poll_secs'] for c in g]):.1f}s"
        )
    print(
        f"  RSS: peak (VmHWM) {hwm / 1024:.1f} MB; sampled 1/s min {min(rss_vals) / 1024:.1f} "
        f"max {max(rss_vals) / 1024:.1f} MB; end of each cycle "
        + ", ".join(f"{c['rss_mb']:.1f}" for c in cycles)
    )
    print(
        f"  /metrics: {cycles[-1]['lines']} lines; plain {med([c['plain'][0] for c in cycles]) * 1000:.0f} ms "
        f"{med([c['plain'][1] for c in cycles]) / 1e6:.2f} MB; gzip "
        f"{med([c['gzip'][0] for c in cycles]) * 1000:.0f} ms "
        f"{med([c['gzip'][1] for c in cycles]) / 1e6:.2f} MB; daemon CPU for both "
        f"{med([c['scrape_cpu'] for c in cycles]):.2f} s"
    )
    print(
        f"  state: db {cycles[-1]['db_mb']:.1f} MB + WAL {cycles[-1]['wal_mb']:.1f} MB at the end"
    )
    busiest = {}
    for c in cycles:
        if c["kind"] == "steady":
            for t, v in c["threads"].items():
                busiest[t] = busiest.get(t, 0) + v
    if busiest:
        top = sorted(busiest.items(), key=lambda kv: -kv[1])[:4]
        print("  steady CPU by thread: " + ", ".join(f"{t} {v:.2f}s" for t, v in top))


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


if __name__ == "__main__":
    main()
