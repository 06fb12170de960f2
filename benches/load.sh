#!/usr/bin/env bash
# Load benchmark: podgate against the floor (examples/floor.rs), side by side in one run.
#
# Builds both in release mode, gives both the same ECDSA P-256 certificate, and drives each
# with h2load over HTTP/1.1 keep-alive (--h1, how kube-apiserver calls Service webhooks) and
# h2, at concurrency 1, 16 and 64, REPEATS times, floor and podgate runs interleaved (the order
# alternates per repeat). Per run: requests/s, p50/p99/p99.9 latency (from h2load's per-request
# log), server CPU time per request (utime+stime from /proc/<pid>/stat before and after), and
# errors; per server: idle RSS and peak RSS (VmHWM) after each concurrency level.
# Loopback only (127.0.0.1). Results: $OUT/runs.tsv (every run), $OUT/summary.md (medians and
# podgate/floor ratios).
#
# Usage: benches/load.sh            (from the repository root)
# Env:   N=20000 REPEATS=3 CONCS="1 16 64" PROTOS="h1 h2" ENDPOINTS="validate mutate"
#        LARGE=1 (also a 1 MiB review, h1, c=4)  OUT=target/load  SERVER=podgate|floor-only
#        SKIP_BUILD=1
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
N=${N:-20000}
REPEATS=${REPEATS:-3}
CONCS=${CONCS:-"1 16 64"}
PROTOS=${PROTOS:-"h1 h2"}
ENDPOINTS=${ENDPOINTS:-"validate mutate"}
LARGE=${LARGE:-1}
OUT=${OUT:-$ROOT/target/load}
FLOOR_PORT=${FLOOR_PORT:-19443}
PODGATE_PORT=${PODGATE_PORT:-19444}
PROBE_PORT=${PROBE_PORT:-19090}
# SERVER=floor-only measures the floor alone (used before `podgate serve` existed).
SERVER=${SERVER:-podgate}

log() { printf '[load %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

# --- tools ------------------------------------------------------------------------------
if ! command -v h2load >/dev/null; then
    log "installing h2load (nghttp2-client)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nghttp2-client >/dev/null
fi
command -v python3 >/dev/null || { log "python3 is needed for the summary"; exit 1; }

# --- build --------------------------------------------------------------------------------
if [[ -z ${SKIP_BUILD:-} ]]; then
    log "building release binaries"
    cargo build --release --bin podgate --example floor --example bench_input
fi
BIN=$ROOT/target/release
mkdir -p "$OUT"
rm -f "$OUT"/runs.tsv "$OUT"/rss.tsv "$OUT"/*.log

# --- inputs -------------------------------------------------------------------------------
DATA=$OUT/data
mkdir -p "$DATA"
for input in typical-validate typical-mutate large-validate large-mutate; do
    "$BIN/examples/bench_input" "$input" >"$DATA/$input.json"
done
log "typical review: $(wc -c <"$DATA/typical-mutate.json") B, large: $(wc -c <"$DATA/large-mutate.json") B"

# --- certificate (ECDSA P-256, SANs 127.0.0.1 and localhost) -------------------------------
CERTS=$OUT/certs
rm -rf "$CERTS"
if "$BIN/podgate" certs --help >/dev/null 2>&1; then
    "$BIN/podgate" certs --out "$CERTS" --host 127.0.0.1 --host localhost --force >/dev/null
    CERT_TOOL="podgate certs"
else
    mkdir -p "$CERTS"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
        -subj /CN=podgate-bench -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
        -keyout "$CERTS/tls.key" -out "$CERTS/tls.crt" 2>/dev/null
    CERT_TOOL="openssl"
fi
log "certificate from $CERT_TOOL: $(openssl x509 -in "$CERTS/tls.crt" -noout -text | grep -m1 'Public Key Algorithm' | sed 's/^ *//')"

# --- servers ------------------------------------------------------------------------------
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT

wait_port() { # port
    for _ in $(seq 1 300); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    log "port $1 never opened"
    return 1
}

"$BIN/examples/floor" --listen "127.0.0.1:$FLOOR_PORT" \
    --tls-cert "$CERTS/tls.crt" --tls-key "$CERTS/tls.key" >"$OUT/floor.log" 2>&1 &
FLOOR_PID=$!
PIDS+=("$FLOOR_PID")
wait_port "$FLOOR_PORT"

SERVERS="floor"
if [[ $SERVER == podgate ]]; then
    # Logs go to /dev/null but are still formatted: one JSON line per decision, as deployed.
    "$BIN/podgate" serve --listen "127.0.0.1:$PODGATE_PORT" --probe-listen "127.0.0.1:$PROBE_PORT" \
        --tls-cert "$CERTS/tls.crt" --tls-key "$CERTS/tls.key" --policies "$ROOT/policies" \
        >/dev/null 2>"$OUT/podgate.log" &
    PODGATE_PID=$!
    PIDS+=("$PODGATE_PID")
    wait_port "$PODGATE_PORT"
    for _ in $(seq 1 100); do
        curl -sf "http://127.0.0.1:$PROBE_PORT/readyz" >/dev/null && break
        sleep 0.1
    done
    SERVERS="floor podgate"
fi

port_of() { [[ $1 == floor ]] && echo "$FLOOR_PORT" || echo "$PODGATE_PORT"; }
pid_of() { [[ $1 == floor ]] && echo "$FLOOR_PID" || echo "$PODGATE_PID"; }
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; } # utime + stime, all threads
status_kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
CLK_TCK=$(getconf CLK_TCK)

# Sanity: each server answers each input as expected (allowed, patch only from podgate /mutate).
for s in $SERVERS; do
    for e in validate mutate; do
        body=$(curl -sk --http1.1 -H 'content-type: application/json' \
            --data-binary "@$DATA/typical-$e.json" "https://127.0.0.1:$(port_of "$s")/$e")
        if [[ $body != *'"allowed":true'* ]]; then
            log "$s /$e did not allow the typical Pod: $body"
            exit 1
        fi
        if [[ $s == podgate && $e == mutate && $body != *'"patchType":"JSONPatch"'* ]]; then
            log "podgate /mutate did not patch the typical Pod: $body"
            exit 1
        fi
    done
done

for s in $SERVERS; do
    printf '%s\tidle\t%s\t%s\n' "$s" "$(status_kb "$(pid_of "$s")" VmRSS)" \
        "$(status_kb "$(pid_of "$s")" VmHWM)" >>"$OUT/rss.tsv"
done

# One h2load run; appends a row to runs.tsv.
# args: server proto conc endpoint input rep n
run() {
    local s=$1 proto=$2 conc=$3 endpoint=$4 input=$5 rep=$6 n=$7
    local pid port clients streams flags=() reqlog=$OUT/req.log out before after
    pid=$(pid_of "$s")
    port=$(port_of "$s")
    if [[ $proto == h1 ]]; then
        # One request in flight per connection, as the apiserver's HTTP/1.1 client.
        clients=$conc
        streams=1
        flags=(--h1)
    else
        # Multiplexed: up to 16 streams per connection.
        streams=$((conc < 16 ? conc : 16))
        clients=$((conc / streams))
    fi
    rm -f "$reqlog"
    before=$(ticks "$pid")
    out=$(h2load "${flags[@]}" -n "$n" -c "$clients" -m "$streams" -t 1 \
        -H 'content-type: application/json' -H 'accept: application/json, */*' \
        -d "$DATA/$input.json" --log-file="$reqlog" \
        "https://127.0.0.1:$port/$endpoint?timeout=10s" 2>&1) || true
    after=$(ticks "$pid")
    echo "$out" >"$OUT/last.out"
    cat "$OUT/last.out" >>"$OUT/h2load.log"
    python3 - "$s" "$proto" "$conc" "$endpoint" "$input" "$rep" "$n" "$before" "$after" \
        "$CLK_TCK" "$reqlog" "$OUT/last.out" <<'PY' >>"$OUT/runs.tsv"
import re, sys
s, proto, conc, endpoint, inp, rep, n, before, after, tck, reqlog, outfile = sys.argv[1:]
out = open(outfile).read()
m = re.search(r"finished in [\d.]+\w*, ([\d.]+) req/s", out)
rps = float(m.group(1)) if m else 0.0
m = re.search(r"requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout", out)
succeeded = int(m.group(3)) if m else 0
m2 = re.search(r"status codes: (\d+) 2xx", out)
ok2xx = int(m2.group(1)) if m2 else 0
errors = int(n) - min(succeeded, ok2xx)
lat = []
with open(reqlog) as f:
    for line in f:
        parts = line.split("\t")
        if len(parts) >= 3 and parts[1].startswith("2"):
            lat.append(int(parts[2]))
lat.sort()
def pct(p):
    if not lat:
        return 0
    return lat[min(len(lat) - 1, int(p / 100.0 * len(lat)))]
cpu_us = (int(after) - int(before)) * 1e6 / int(tck)
done = max(1, min(succeeded, ok2xx))
print("\t".join(map(str, [s, proto, conc, endpoint, inp, rep, n, f"{rps:.0f}", pct(50), pct(99), pct(99.9),
                          f"{cpu_us / done:.1f}", errors])))
PY
}

log "warm-up"
for s in $SERVERS; do
    h2load --h1 -n 2000 -c 4 -t 1 -H 'content-type: application/json' -d "$DATA/typical-mutate.json" \
        "https://127.0.0.1:$(port_of "$s")/mutate" >/dev/null 2>&1 || true
done

printf 'server\tproto\tconc\tendpoint\tinput\trep\tn\treq_s\tp50_us\tp99_us\tp999_us\tcpu_us_req\terrors\n' >"$OUT/runs.tsv"
for conc in $CONCS; do
    for proto in $PROTOS; do
        for endpoint in $ENDPOINTS; do
            for rep in $(seq 1 "$REPEATS"); do
                order=$SERVERS
                if ((rep % 2 == 0)); then order=$(echo "$SERVERS" | tr ' ' '\n' | tac | tr '\n' ' '); fi
                for s in $order; do
                    log "$s $proto c=$conc /$endpoint rep $rep"
                    run "$s" "$proto" "$conc" "$endpoint" "typical-$endpoint" "$rep" "$N"
                done
            done
        done
    done
    for s in $SERVERS; do
        printf '%s\tafter c=%s\t%s\t%s\n' "$s" "$conc" "$(status_kb "$(pid_of "$s")" VmRSS)" \
            "$(status_kb "$(pid_of "$s")" VmHWM)" >>"$OUT/rss.tsv"
    done
done

if [[ $LARGE == 1 ]]; then
    for endpoint in $ENDPOINTS; do
        for rep in $(seq 1 "$REPEATS"); do
            for s in $SERVERS; do
                log "$s h1 c=4 /$endpoint 1 MiB rep $rep"
                run "$s" h1 4 "$endpoint" "large-$endpoint" "$rep" 200
            done
        done
    done
    for s in $SERVERS; do
        printf '%s\tafter 1 MiB\t%s\t%s\n' "$s" "$(status_kb "$(pid_of "$s")" VmRSS)" \
            "$(status_kb "$(pid_of "$s")" VmHWM)" >>"$OUT/rss.tsv"
    done
fi

# --- summary ------------------------------------------------------------------------------
python3 - "$OUT/runs.tsv" "$OUT/rss.tsv" >"$OUT/summary.md" <<'PY'
import csv, statistics, sys
from collections import defaultdict
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
groups = defaultdict(list)
for r in rows:
    groups[(r["proto"], int(r["conc"]), r["endpoint"], r["input"], r["server"])].append(r)
def med(rs, k):
    return statistics.median(float(r[k]) for r in rs)
keys = sorted({k[:4] for k in groups}, key=lambda k: (k[3].startswith("large"), k[0], k[1], k[2]))
print("Medians of the repeats; ratio = podgate / floor.\n")
print("| proto | c | endpoint | input | server | req/s | p50 µs | p99 µs | p99.9 µs | CPU µs/req | errors |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for k in keys:
    for s in ("floor", "podgate"):
        rs = groups.get(k + (s,))
        if not rs:
            continue
        errs = sum(int(r["errors"]) for r in rs)
        print(f"| {k[0]} | {k[1]} | /{k[2]} | {k[3]} | {s} | {med(rs,'req_s'):.0f} | {med(rs,'p50_us'):.0f} | "
              f"{med(rs,'p99_us'):.0f} | {med(rs,'p999_us'):.0f} | {med(rs,'cpu_us_req'):.1f} | {errs} |")
    f, p = groups.get(k + ("floor",)), groups.get(k + ("podgate",))
    if f and p:
        def ratio(key):
            d = med(f, key)
            return med(p, key) / d if d else float("nan")
        print(f"| | | | | **ratio** | {ratio('req_s'):.2f} | {ratio('p50_us'):.2f} | {ratio('p99_us'):.2f} | "
              f"{ratio('p999_us'):.2f} | {ratio('cpu_us_req'):.2f} | |")
print("\nRSS (KiB): VmRSS now, VmHWM = peak so far\n")
print("| server | when | VmRSS | VmHWM |")
print("|---|---|---|---|")
for line in open(sys.argv[2]):
    s, when, rss, hwm = line.rstrip("\n").split("\t")
    print(f"| {s} | {when} | {rss} | {hwm} |")
PY
cat "$OUT/summary.md"
log "done: $OUT/runs.tsv, $OUT/summary.md"
