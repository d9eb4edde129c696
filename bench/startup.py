#!/usr/bin/env python3
"""Start-to-first-200 of `usersvc dev` on an existing data directory.

    bench/startup.py BINARY [RUNS] [PATH]

Creates a data directory once (first start, not counted), then RUNS times
starts `BINARY dev` on a free port and polls GET PATH every millisecond
until it answers 200; prints each time and the median, in ms. PATH is
/.well-known/jwks.json by default: the first real API answer, which crosses
gateway → API → service (and needs the gateway to have discovered the API);
/healthz is the gateway answering by itself, before it may know any API.
The binary is stopped with SIGTERM after each run; the data directory is
removed.
"""
import os, shutil, signal, socket, statistics, subprocess, sys, tempfile, time, urllib.request

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def run(binary, data, path):
    port = free_port()
    env = dict(os.environ, USERSVC_DATA_DIR=data, USERSVC_HTTP_ADDR=f"127.0.0.1:{port}", USERSVC_LOG_LEVEL="error", USERSVC_OPS_ADDR="127.0.0.1:0")
    start = time.monotonic()
    p = subprocess.Popen([binary, "dev"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=1) as r:
                    if r.status == 200:
                        return (time.monotonic() - start) * 1000
            except OSError:
                if p.poll() is not None:
                    sys.exit(f"{binary} dev exited with {p.returncode}")
                time.sleep(0.001)
    finally:
        p.send_signal(signal.SIGTERM); p.wait()

def main():
    binary, runs = os.path.abspath(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 10
    path = sys.argv[3] if len(sys.argv) > 3 else "/.well-known/jwks.json"
    data = tempfile.mkdtemp(prefix="usersvc-startup-")
    try:
        run(binary, data, path)  # creates the data dir: keys, schema, index
        times = [run(binary, data, path) for _ in range(runs)]
        print(" ".join(f"{t:.0f}" for t in times))
        print(f"median {statistics.median(times):.0f} ms, min {min(times):.0f}, max {max(times):.0f} ({runs} runs)")
    finally:
        shutil.rmtree(data)

main()
