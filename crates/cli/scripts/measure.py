#!/usr/bin/env python3
"""Measures a running `logstore serve` (release build) from the same machine.

  cargo build --release -p logstore-cli
  target/release/logstore serve --data-dir /tmp/m --http 127.0.0.1:9470 --tcp 127.0.0.1:5260 &
  python3 crates/cli/scripts/measure.py [--http 127.0.0.1:9470] [--tcp 127.0.0.1:5260]

1. HTTP ingest: CLIENTS keep-alive connections POST NDJSON batches of 1,000 entries
   (~100-byte messages with metadata) for SECONDS; prints entries/s acknowledged.
2. TCP write latency: one connection, one `write` at a time, WRITES times; prints p50/p99/max.
3. The floor under it: 100-byte write + fdatasync in --sync-dir (put it on the data directory's
   file system), WRITES times, the cost of one durable append with nothing shared.
"""
import argparse, http.client, json, socket, threading, time

p = argparse.ArgumentParser()
p.add_argument("--http", default="127.0.0.1:9470")
p.add_argument("--tcp", default="127.0.0.1:5260")
p.add_argument("--clients", type=int, default=4)
p.add_argument("--seconds", type=float, default=10)
p.add_argument("--batch", type=int, default=1000)
p.add_argument("--writes", type=int, default=2000)
p.add_argument("--sync-dir", default=".")
args = p.parse_args()

body = "".join(
    json.dumps({"message": f"GET /api/v1/items/{i} 200 {i % 97} ms user=u{i % 13} request id {i:08x} " + "x" * 30,
                "metadata": {"host": f"web-{i % 8}", "level": "info"}}) + "\n"
    for i in range(args.batch)
).encode()
host, port = args.http.split(":")
written = [0] * args.clients
stop = time.monotonic() + args.seconds

def client(n):
    conn = http.client.HTTPConnection(host, int(port))
    while time.monotonic() < stop:
        conn.request("POST", "/api/v1/logs", body, {"Content-Type": "application/x-ndjson"})
        r = conn.getresponse()
        reply = r.read()
        assert r.status == 200, reply
        written[n] += json.loads(reply)["written"]

start = time.monotonic()
threads = [threading.Thread(target=client, args=(n,)) for n in range(args.clients)]
for t in threads: t.start()
for t in threads: t.join()
elapsed = time.monotonic() - start
total = sum(written)
print(f"http ingest: {total} entries in {elapsed:.1f} s = {total / elapsed:,.0f} entries/s "
      f"({args.clients} clients, batches of {args.batch}, {len(body)} bytes per body)")

host, port = args.tcp.split(":")
s = socket.create_connection((host, int(port)))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
f = s.makefile("rb")
line = (json.dumps({"action": "write", "message": "single entry latency probe", "metadata": {"k": 1}}) + "\n").encode()
lat = []
for _ in range(args.writes):
    t0 = time.perf_counter()
    s.sendall(line)
    reply = f.readline()
    lat.append(time.perf_counter() - t0)
    assert b'"ok"' in reply, reply
lat.sort()
us = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1e6
print(f"tcp single write: {len(lat)} writes, p50 {us(0.5):.0f} us, p99 {us(0.99):.0f} us, max {lat[-1] * 1e6:.0f} us")

import os
path = os.path.join(args.sync_dir, "measure-fdatasync.tmp")
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
lat = []
for _ in range(args.writes):
    t0 = time.perf_counter()
    os.write(fd, b"x" * 100)
    os.fdatasync(fd)
    lat.append(time.perf_counter() - t0)
os.close(fd)
os.remove(path)
lat.sort()
print(f"write+fdatasync floor: p50 {us(0.5):.0f} us, p99 {us(0.99):.0f} us")
