#!/usr/bin/env bash
# Build the images and run the whole compose stack once, end to end, on this machine:
#   bash scripts/compose_smoke.sh
# 1. a Docker engine: the one that answers (DOCKER_HOST or the default socket), else a
#    throwaway dockerd (overlay2 storage where the kernel mounts overlay, else vfs; no
#    bridge, no iptables; data root in a temp folder)
# 2. a local base image (debootstrap bookworm minbase + python3/pip, `docker import`),
#    since no image registry may be reachable; pip inside trusts this machine's CA bundle
# 3. a local pip index on 127.0.0.1 holding the CPU torch wheel (`pip download torch`
#    with this machine's pip configuration; it must give a +cpu build)
# 4. docker-compose.yml + docker/compose.local.yml: build, then up redis, api, worker,
#    torchserve, flower (host networking, every port on 127.0.0.1, ports of their own)
# 5. every health check healthy, and each depends_on condition held (a dependent started
#    only after its dependency's first passing health check)
# 6. the sample video uploaded through the API (POST /v1/analyze), the job polled to
#    `succeeded` with inference on TorchServe (its access log shows the predictions),
#    the API's /metrics counting it, Flower's API listing the worker
# 7. teardown: containers, volumes, the local index, the dockerd it started, temp folders
# Each step's time is printed; any failure exits non-zero with the logs of the containers.
# Needs: root, docker.io (dockerd 20.10+), docker-compose (v1.29, Debian) or `docker
# compose` (v2), debootstrap, curl, python3 with pip. On Debian bookworm:
#   apt-get install -y --no-install-recommends docker.io docker-compose debootstrap
# (with a policy-rc.d that forbids starting services, as here, apt starts no system
# dockerd; one started by the init system would create its docker0 bridge).
# Environment (all optional):
#   MER_SMOKE_SAMPLE        the video to upload (default: samples/single_face.mp4, else
#                           $MER_SHARED_DATA_DIR/videos/single_face.mp4, else
#                           ../shared/data/videos/single_face.mp4 beside the checkout or
#                           beside the one it was cloned from)
#   MER_SMOKE_CACHE_DIR     keep the started engine's data root and the debootstrap root
#                           here between runs (warm builds); default: a temp folder, removed
#   MER_SMOKE_TORCH_INDEX   a pip index with torch 2.13.0 for the builds instead of the
#                           local one (e.g. https://download.pytorch.org/whl/cpu)
#   MER_SMOKE_STORAGE_DRIVER the started engine's storage driver: overlay2 or vfs (default:
#                           overlay2 when an overlay mount works here, else vfs; vfs copies
#                           the whole image for every build step and every container)
#   MER_SMOKE_JOB_TIMEOUT_S how long the job may take (default 600)
#   MER_SMOKE_HEALTH_TIMEOUT_S how long the stack may take to become healthy once `compose
#                           up` has returned (default 600; up itself waits for each
#                           depends_on condition before it starts the dependent)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PROJECT=mer-smoke-$$
BASE_IMAGE=mer-local-base:bookworm
SERVICES=(redis api worker torchserve flower)
JOB_TIMEOUT_S=${MER_SMOKE_JOB_TIMEOUT_S:-600}
HEALTH_TIMEOUT_S=${MER_SMOKE_HEALTH_TIMEOUT_S:-600}
WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/mer-smoke.XXXXXX")
CACHE=${MER_SMOKE_CACHE_DIR:-$WORK/cache}
mkdir -p "$CACHE"
DOCKERD_PID="" INDEX_PID="" CHILD_PID="" STACK_UP=0 T_START=$(date +%s) T_STEP=$(date +%s)
TIMINGS=()

log() { printf '[smoke %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
step_done() {
  local now; now=$(date +%s)
  TIMINGS+=("$(printf '%-34s %5ss' "$1" $((now - T_STEP)))")
  log "done: $1 ($((now - T_STEP)) s)"
  T_STEP=$now
}
print_timings() {
  echo "---- compose smoke: time per step ----"
  local t
  for t in "${TIMINGS[@]}"; do echo "  $t"; done
  echo "  $(printf '%-34s %5ss' total $(($(date +%s) - T_START)))"
}
COMPOSE_FILES=(-f docker-compose.yml -f docker/compose.local.yml)
compose() { "${COMPOSE[@]}" -p "$PROJECT" "${COMPOSE_FILES[@]}" "$@"; }
cid() { compose ps -q "$1" 2>/dev/null | head -n1; }
dump_logs() {  # the logs of the given services (all when none)
  local s
  for s in "${@:-${SERVICES[@]}}"; do
    echo "==== logs of $s (last 150 lines) ====" >&2
    compose logs --no-color --tail 150 "$s" >&2 2>&1 || true
    local c; c=$(cid "$s")
    [ -n "$c" ] && docker inspect -f '{{.Name}} state={{.State.Status}} exit={{.State.ExitCode}} health={{if .State.Health}}{{.State.Health.Status}}{{end}}' "$c" >&2 || true
  done
}
fail() {  # fail MESSAGE [SERVICE...]
  log "FAILED: $1"
  shift
  [ "$STACK_UP" = 1 ] && dump_logs "$@"
  exit 1
}
cleanup() {
  local rc=$? t0 left
  set +e
  t0=$(date +%s)
  # a long step stopped by a signal (see in_bg)
  if [ -n "$CHILD_PID" ]; then
    pkill -TERM -P "$CHILD_PID" 2>/dev/null; kill "$CHILD_PID" 2>/dev/null; wait "$CHILD_PID" 2>/dev/null
  fi
  [ "$rc" = 0 ] || TIMINGS+=("$(printf '%-34s %5ss' "(the failing step)" $((t0 - T_STEP)))")
  if [ "$STACK_UP" = 1 ]; then
    log "teardown: containers and volumes"
    compose down --volumes --remove-orphans --timeout 20 >/dev/null 2>&1 || log "compose down failed"
    # whatever compose left of this project (e.g. when compose itself failed)
    left=$(docker ps -aq --filter "label=com.docker.compose.project=$PROJECT")
    [ -z "$left" ] || { log "removing leftover containers"; docker rm -f -v $left >/dev/null; }
    left=$(docker volume ls -q --filter "label=com.docker.compose.project=$PROJECT")
    [ -z "$left" ] || { log "removing leftover volumes"; docker volume rm -f $left >/dev/null; }
  fi
  [ -n "$INDEX_PID" ] && kill "$INDEX_PID" 2>/dev/null
  if [ -n "$DOCKERD_PID" ]; then
    log "teardown: the dockerd this run started (pid $DOCKERD_PID)"
    kill "$DOCKERD_PID" 2>/dev/null
    for _ in $(seq 60); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 1; done
    kill -9 "$DOCKERD_PID" 2>/dev/null
  fi
  # dockerd leaves its default network namespace mounted under the exec root
  grep -o "$WORK/[^ ]*" /proc/mounts 2>/dev/null | sort -r | xargs -r -n1 umount 2>/dev/null
  rm -rf "$WORK"
  TIMINGS+=("$(printf '%-34s %5ss' teardown $(($(date +%s) - t0)))")
  [ "$rc" = 0 ] || log "exit status $rc"
  print_timings
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# bash runs a trap only after the foreground command ends: the long steps (build, up) run
# in the background and are waited for, so that a TERM (e.g. from `timeout`) tears down at once.
# in_bg LOG COMMAND...: the output goes to LOG (redirecting the call itself would send the
# trap's own output there too)
in_bg() {
  local out=$1
  shift
  "$@" >"$out" 2>&1 &
  CHILD_PID=$!
  local rc=0
  wait "$CHILD_PID" || rc=$?
  CHILD_PID=""
  return "$rc"
}

free_port() {  # free_port FIRST [COUNT]: the first of COUNT consecutive free ports >= FIRST
  python3 - "$1" "${2:-1}" <<'EOF'
import socket, sys
first, count = int(sys.argv[1]), int(sys.argv[2])
def free(p):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", p))
        except OSError:
            return False
    return True
p = first
while not all(free(p + i) for i in range(count)):
    p += count
print(p)
EOF
}

# ---- 0. tools -----------------------------------------------------------------------
for tool in docker curl python3; do
  command -v "$tool" >/dev/null || fail "$tool is not installed (docker: apt-get install docker.io)"
done
if docker compose version >/dev/null 2>&1; then
  COMPOSE=(docker compose)
elif command -v docker-compose >/dev/null; then
  COMPOSE=(docker-compose)
else
  fail "neither 'docker compose' nor docker-compose is installed (apt-get install docker-compose)"
fi
export DOCKER_BUILDKIT=0 COMPOSE_DOCKER_CLI_BUILD=0  # the classic builder: no buildx needed
# creating a container copies its whole image with the vfs storage driver: minutes when busy
export COMPOSE_HTTP_TIMEOUT=${COMPOSE_HTTP_TIMEOUT:-900}
PY_YAML=python3
python3 -c 'import yaml' 2>/dev/null || PY_YAML=/usr/bin/python3  # docker-compose's own
SAMPLE=${MER_SMOKE_SAMPLE:-}
if [ -z "$SAMPLE" ]; then
  # a throwaway clone looks beside the checkout it was cloned from too (as .ci/run does)
  origin=$(git config --get remote.origin.url 2>/dev/null || true)
  for c in samples/single_face.mp4 "${MER_SHARED_DATA_DIR:-/nonexistent}/videos/single_face.mp4" \
           ../shared/data/videos/single_face.mp4 "${origin:-/nonexistent}/../shared/data/videos/single_face.mp4"; do
    [ -f "$c" ] && { SAMPLE=$c; break; }
  done
fi
[ -n "$SAMPLE" ] && [ -f "$SAMPLE" ] || fail "no sample video (samples/single_face.mp4; or set MER_SMOKE_SAMPLE)"
SAMPLE=$(cd "$(dirname "$SAMPLE")" && pwd)/$(basename "$SAMPLE")
log "compose: ${COMPOSE[*]} ($("${COMPOSE[@]}" version --short 2>/dev/null || echo '?')); sample: $SAMPLE"

# ---- 1. a Docker engine -------------------------------------------------------------
if docker info >/dev/null 2>&1; then
  log "using the Docker engine that answers ($(docker info -f '{{.ServerVersion}}'))"
else
  command -v dockerd >/dev/null || fail "no Docker engine answers and dockerd is not installed (apt-get install docker.io)"
  mkdir -p "$CACHE/docker" "$WORK/exec"
  export DOCKER_HOST=unix://$WORK/docker.sock
  driver=${MER_SMOKE_STORAGE_DRIVER:-}
  if [ -z "$driver" ]; then  # overlay2 where the kernel mounts overlay on this filesystem
    o=$CACHE/overlay-probe
    mkdir -p "$o/lower" "$o/upper" "$o/work" "$o/merged"
    if mount -t overlay overlay -o "lowerdir=$o/lower,upperdir=$o/upper,workdir=$o/work" \
        "$o/merged" 2>/dev/null; then
      umount "$o/merged" && driver=overlay2
    else
      driver=vfs
    fi
    rm -rf "$o"
  fi
  log "starting a throwaway dockerd ($driver storage, data root $CACHE/docker)"
  dockerd --storage-driver "$driver" --bridge=none --iptables=false --ip-masq=false \
    --data-root "$CACHE/docker" --exec-root "$WORK/exec" --pidfile "$WORK/docker.pid" \
    -H "$DOCKER_HOST" >"$WORK/dockerd.log" 2>&1 &
  DOCKERD_PID=$!
  for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { tail -n 30 "$WORK/dockerd.log" >&2; fail "dockerd did not start"; }
fi
step_done "docker engine"

# ---- 2. the local base image --------------------------------------------------------
if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  log "base image $BASE_IMAGE already there"
else
  command -v debootstrap >/dev/null || fail "debootstrap is not installed (apt-get install debootstrap)"
  rootfs=$WORK/rootfs
  log "debootstrap bookworm (minbase + python3, pip) into $rootfs"
  debootstrap --variant=minbase \
    --include=python3,python3-venv,python3-pip,python-is-python3,ca-certificates \
    bookworm "$rootfs" http://deb.debian.org/debian >"$WORK/debootstrap.log" 2>&1 \
    || { tail -n 30 "$WORK/debootstrap.log" >&2; fail "debootstrap failed"; }
  # pip installs into the system Python as in python:3.11-slim (no PEP 668 marker), and
  # trusts this machine's CA bundle (the one pip here is configured with)
  rm -f "$rootfs"/usr/lib/python3*/EXTERNALLY-MANAGED
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  ca=${PIP_CERT:-${REQUESTS_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}}
  cp "$ca" "$rootfs/etc/ssl/host-ca.crt"
  tar -C "$rootfs" -c . | docker import \
    -c 'ENV PIP_CERT=/etc/ssl/host-ca.crt REQUESTS_CA_BUNDLE=/etc/ssl/host-ca.crt SSL_CERT_FILE=/etc/ssl/host-ca.crt LANG=C.UTF-8' \
    -c 'CMD ["python3"]' - "$BASE_IMAGE" >/dev/null
  rm -rf "$rootfs"
fi
step_done "local base image"

# ---- 3. torch for the builds --------------------------------------------------------
if [ -n "${MER_SMOKE_TORCH_INDEX:-}" ]; then
  TORCH_INDEX=$MER_SMOKE_TORCH_INDEX
else
  wheels=$WORK/wheels index=$WORK/index/simple
  python3 -m pip download -q --only-binary=:all: --python-version 3.11 \
    "torch==2.13.0" -d "$wheels" >"$WORK/pip-download.log" 2>&1 \
    || { cat "$WORK/pip-download.log" >&2; fail "pip download torch==2.13.0 failed"; }
  ls "$wheels"/torch-2.13.0+cpu-*.whl >/dev/null 2>&1 \
    || fail "pip download torch==2.13.0 gave no +cpu wheel; set MER_SMOKE_TORCH_INDEX"
  for f in "$wheels"/*; do  # PEP 503 layout: simple/<normalised name>/<file>
    b=$(basename "$f") && n=$(echo "${b%%-*}" | tr 'A-Z_.' 'a-z--')
    mkdir -p "$index/$n" && ln -f "$f" "$index/$n/$b"
  done
  port=$(free_port 18799)
  python3 -m http.server "$port" --bind 127.0.0.1 --directory "$WORK/index" \
    >"$WORK/index.log" 2>&1 &
  INDEX_PID=$!
  TORCH_INDEX=http://127.0.0.1:$port/simple
  for _ in $(seq 20); do curl -fs "$TORCH_INDEX/torch/" >/dev/null && break; sleep 0.5; done
fi
export MER_LOCAL_BASE_IMAGE=$BASE_IMAGE MER_LOCAL_TORCH_INDEX=$TORCH_INDEX
step_done "torch index ($TORCH_INDEX)"

# ---- 4. build -----------------------------------------------------------------------
export MER_SMOKE_REDIS_PORT MER_SMOKE_API_PORT MER_SMOKE_TS_PORT MER_SMOKE_TS_MANAGEMENT_PORT \
  MER_SMOKE_FLOWER_PORT
MER_SMOKE_REDIS_PORT=$(free_port 16379)
MER_SMOKE_API_PORT=$(free_port 18000)
MER_SMOKE_TS_PORT=$(free_port 18080 3)
MER_SMOKE_TS_MANAGEMENT_PORT=$((MER_SMOKE_TS_PORT + 1))
MER_SMOKE_FLOWER_PORT=$(free_port 15555)
API_KEY=smoke_$(python3 -c 'import secrets; print(secrets.token_urlsafe(24))')
export MER_API_KEYS="smoke:$(printf %s "$API_KEY" | sha256sum | cut -d' ' -f1)"
export MER_AUTH_ENABLED=true MER_INFERENCE_BACKEND=torchserve
# Flower's API answers only with authentication (docker-compose.yml passes this through)
export FLOWER_BASIC_AUTH="smoke:$(python3 -c 'import secrets; print(secrets.token_hex(12))')"
# docker-compose.yml publishes ports, which docker-compose (v1) refuses with host
# networking, and an override cannot remove them: run the merged configuration without
# the `ports` of the host-networked services (with host networking they mean nothing)
compose config >"$WORK/compose.merged.yml" || fail "compose config refused the files"
"$PY_YAML" - "$WORK/compose.merged.yml" <<'EOF' || fail "could not drop the published ports"
import sys, yaml
path = sys.argv[1]
doc = yaml.safe_load(open(path))
for svc in doc["services"].values():
    assert svc.get("network_mode") == "host", svc
    svc.pop("ports", None)
yaml.safe_dump(doc, open(path, "w"), sort_keys=False)
EOF
COMPOSE_FILES=(-f "$WORK/compose.merged.yml" --project-directory "$ROOT")
# worker shares api's image (mer-service:cpu): build it once; the four images in parallel
in_bg "$WORK/build.log" compose build --parallel --force-rm redis api torchserve flower \
  || { tail -n 80 "$WORK/build.log" >&2; fail "compose build failed"; }
step_done "build images"

# ---- 5. up, health, depends_on ------------------------------------------------------
STACK_UP=1
log "ports: redis $MER_SMOKE_REDIS_PORT, api $MER_SMOKE_API_PORT, torchserve $MER_SMOKE_TS_PORT-$((MER_SMOKE_TS_PORT + 2)), flower $MER_SMOKE_FLOWER_PORT"
T_UP=$(date +%s)
in_bg "$WORK/up.log" compose up -d --no-build || { cat "$WORK/up.log" >&2; fail "compose up failed"; }
# host networking only: neither compose nor the engine made a bridge network
bridges=$(docker network ls -q --filter driver=bridge)
[ -z "$bridges" ] || fail "a bridge network exists: $(docker network ls --filter driver=bridge)"
deadline=$(($(date +%s) + HEALTH_TIMEOUT_S))
while :; do
  pending=()
  for s in "${SERVICES[@]}"; do
    c=$(cid "$s")
    [ -n "$c" ] || { pending+=("$s(not created)"); continue; }
    st=$(docker inspect -f '{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$c")
    case "$st" in
      "running healthy") ;;
      "running none") fail "$s has no health check" "$s" ;;
      *unhealthy) fail "$s is unhealthy" "$s" ;;
      exited*|dead*) fail "$s stopped ($st)" "$s" ;;
      *) pending+=("$s($st)") ;;
    esac
  done
  [ ${#pending[@]} = 0 ] && break
  [ "$(date +%s)" -lt "$deadline" ] || fail "not healthy after ${HEALTH_TIMEOUT_S}s: ${pending[*]}"
  sleep 3
done
step_done "stack healthy"
# TorchServe's /ping said Healthy: both models are registered there
curl -fsS -o "$WORK/models.json" "http://127.0.0.1:$MER_SMOKE_TS_MANAGEMENT_PORT/models" \
  || fail "TorchServe's management API does not answer" torchserve
python3 - "$WORK/models.json" <<'EOF' || fail "TorchServe is healthy without both models" torchserve
import json, sys
names = {m["modelName"] for m in json.load(open(sys.argv[1]))["models"]}
assert {"sma_stn", "au_detector"} <= names, names
EOF
# each dependent started after its dependency's first passing health check (the engine's
# events since `up`: "start" and "health_status: healthy" per container)
docker events --since "$T_UP" --until "$(date +%s)" --filter type=container \
  --format '{{.TimeNano}} {{.Actor.Attributes.name}} {{.Action}}' >"$WORK/events.txt"
first_event() {  # first_event SERVICE ACTION: the time (ns) of its first such event
  local name; name=$(docker inspect -f '{{.Name}}' "$(cid "$1")") && name=${name#/}
  awk -v n="$name" -v a="$2" '{ t = $1; c = $2; $1 = $2 = ""; sub(/^ +/, "") }
    c == n && $0 == a { print t; exit }' \
    "$WORK/events.txt"
}
for pair in api:redis worker:redis worker:torchserve flower:redis; do
  svc=${pair%%:*} dep=${pair#*:}
  h=$(first_event "$dep" "health_status: healthy") s=$(first_event "$svc" start)
  [ -n "$h" ] && [ -n "$s" ] || fail "no start/healthy events of $svc/$dep" "$svc" "$dep"
  [ "$s" -ge "$h" ] || fail "$svc started before $dep was healthy" "$svc" "$dep"
  log "depends_on held: $svc started $(((s - h) / 1000000)) ms after $dep was healthy"
done
step_done "depends_on conditions"

# ---- 6. a job through the API, inference on TorchServe ------------------------------
API=http://127.0.0.1:$MER_SMOKE_API_PORT
code=$(curl -s -o "$WORK/no-key.json" -w '%{http_code}' -F "file=@$SAMPLE" "$API/v1/analyze")
[ "$code" = 401 ] || fail "POST /v1/analyze without a key answered $code, not 401" api
curl -fsS -o "$WORK/submit.json" -H "X-API-Key: $API_KEY" -F "file=@$SAMPLE;type=video/mp4" \
  "$API/v1/analyze" || fail "POST /v1/analyze failed: $(cat "$WORK/submit.json" 2>/dev/null)" api
job=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["job_id"])' "$WORK/submit.json")
log "job $job submitted ($(basename "$SAMPLE"))"
deadline=$(($(date +%s) + JOB_TIMEOUT_S))
while :; do
  curl -fsS -o "$WORK/job.json" -H "X-API-Key: $API_KEY" "$API/v1/jobs/$job" \
    || fail "GET /v1/jobs/$job failed" api
  state=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["state"])' "$WORK/job.json")
  case "$state" in
    succeeded) break ;;
    failed|cancelled) fail "job $state: $(cat "$WORK/job.json")" worker torchserve ;;
  esac
  [ "$(date +%s)" -lt "$deadline" ] || fail "job still $state after ${JOB_TIMEOUT_S}s" worker torchserve
  sleep 2
done
python3 - "$WORK/job.json" <<'EOF' || fail "the job's result is incomplete" worker
import json, sys
r = json.load(open(sys.argv[1]))["result"]
assert r["frames"], "no frames"
assert r["models"], "no models"
print("[smoke] result: %d frames, models %s" % (
    len(r["frames"]), ", ".join(f"{m['name']} {m['version']}" for m in r["models"])), file=sys.stderr)
EOF
# inference went to TorchServe: its access log has the predictions (2xx) of both models
ts_log=$(docker exec "$(cid torchserve)" sh -c 'cat /srv/torchserve/logs/access_log.log' 2>/dev/null || true)
for model in sma_stn au_detector; do
  n=$(printf '%s\n' "$ts_log" | grep -c "/predictions/$model HTTP/1.1\" 200" || true)
  [ "$n" -gt 0 ] || fail "TorchServe's access log shows no prediction of $model" torchserve worker
  log "TorchServe answered $n prediction request(s) for $model"
done
step_done "job succeeded via TorchServe"

# ---- 7. /metrics and Flower's API ---------------------------------------------------
curl -fsS -o "$WORK/metrics.txt" "$API/metrics" || fail "GET /metrics failed" api
grep -Eq '^mer_jobs_finished_total\{.*state="succeeded".*\} [1-9]' "$WORK/metrics.txt" \
  || fail "/metrics does not count the succeeded job" api
grep -Eq '^mer_http_requests_total\{.*route="/v1/analyze".*status="202".*\} [1-9]' "$WORK/metrics.txt" \
  || fail "/metrics does not count the accepted upload" api
FLOWER=http://127.0.0.1:$MER_SMOKE_FLOWER_PORT
code=$(curl -s -o /dev/null -w '%{http_code}' "$FLOWER/api/workers")
[ "$code" = 401 ] || fail "Flower's API answered $code without credentials, not 401" flower
curl -fsS -u "$FLOWER_BASIC_AUTH" -o "$WORK/workers.json" "$FLOWER/api/workers?refresh=1" || fail "Flower's /api/workers failed" flower
python3 - "$WORK/workers.json" <<'EOF' || fail "Flower's API lists no worker@ worker" flower
import json, sys
workers = json.load(open(sys.argv[1]))
names = [w for w in workers if w.startswith("worker@")]
assert names, workers
print("[smoke] flower lists " + ", ".join(names), file=sys.stderr)
EOF
curl -fsS -u "$FLOWER_BASIC_AUTH" -o "$WORK/tasks.json" "$FLOWER/api/tasks" || fail "Flower's /api/tasks failed" flower
python3 - "$WORK/tasks.json" <<'EOF' || fail "Flower's API has no succeeded task" flower
import json, sys
tasks = json.load(open(sys.argv[1]))
assert any(t.get("state") == "SUCCESS" for t in tasks.values()), tasks
EOF
step_done "/metrics and Flower API"
log "PASSED"
