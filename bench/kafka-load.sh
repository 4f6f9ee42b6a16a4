#!/usr/bin/env bash
# Puts `blueprint serve` in Kafka mode under signed load on loopback:
# `blueprint fake-kafka` (an in-memory broker) and serve --kafka-brokers, as
# one process of role all or split into ingest, process and N deliver
# processes, against a fake Button inside the load generator
# (bench/serveload -kafka). Reports events/s acknowledged and delivered end
# to end, ingest latency, consumer lag while loaded and after the load
# stops, and the CPU of every process. Not part of CI. Flags go to
# bench/serveload (see -h):
#   bench/kafka-load.sh                                             # 20 s, role all, 2000 events/s
#   bench/kafka-load.sh -roles split -deliverers 2 -rate 0          # split roles, two deliverers, flat out
#   bench/kafka-load.sh -batch 50 -rate 5000 -cpuprofile /tmp/prof  # POST /v1/batch; a CPU profile per process
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bin
go build -o bin/blueprint ./cmd/blueprint
go build -o bin/serveload ./bench/serveload
echo "$(nproc) CPUs ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)), load average $(cut -d' ' -f1-3 /proc/loadavg), $(go version | cut -d' ' -f3), $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
exec bin/serveload -blueprint bin/blueprint -kafka -duration 20s -rate 2000 -workers 32 -concurrency 64 "$@"
