#!/usr/bin/env bash
# rgw-local.sh: a throw-away single-node Ceph RADOS Gateway (Debian's radosgw 16.2.x)
# on 127.0.0.1, for delete-sync's integration tests and demo.
#
# Usage:
#   scripts/rgw-local.sh install    apt-get the packages if any is missing (no-op otherwise)
#   scripts/rgw-local.sh start      install, start mon + osd + radosgw, create the test user,
#                                   warm up; prints the path of the env file. Idempotent.
#   scripts/rgw-local.sh env        print the env file (eval "$(scripts/rgw-local.sh env)")
#   scripts/rgw-local.sh status     exit 0 when S3 answers
#   scripts/rgw-local.sh stop       stop every daemon of the lab, remove the lab directory
#   scripts/rgw-local.sh notify BUCKET TOPIC PUSH_ENDPOINT [--persistent]
#                                   (re)create topic TOPIC pushing to PUSH_ENDPOINT and send
#                                   s3:ObjectCreated:* and s3:ObjectRemoved:* of BUCKET to it
#   scripts/rgw-local.sh aws ARGS...
#                                   /usr/bin/aws --endpoint-url <lab endpoint> ARGS... with
#                                   the lab's credentials
#
# Environment:
#   DS_RGW_DIR          lab directory                      (default /tmp/delete-sync-rgw)
#   DS_RGW_PORT         S3 port on 127.0.0.1               (default 17480)
#   DS_RGW_MON_PORT     mon msgr2 port; msgr1 is this+1     (default 17300)
#   DS_RGW_OSD_PORTS    first of 32 ports for the OSD      (default 17320)
#   DS_RGW_MEMSTORE_MB  cap of the in-memory OSD, in MiB   (default 4096; RAM is used on demand)
#
# The lab has a certificate authority of its own ($DS_RGW_DIR/tls/ca.pem and ca.key, named in
# the env file as DS_RGW_CA_CERT and DS_RGW_CA_KEY) that radosgw trusts, so that tests can push
# to an https:// endpoint with verify-ssl on: radosgw runs in a mount namespace of its own in
# which /etc/ssl/certs (where its libcurl-gnutls looks) is the system's bundle plus that CA.
# The machine's trust store is not changed. This needs root (unshare, mount); without it the
# lab starts without a trusted CA and the env file names none.
#
# Everything listens on 127.0.0.1 only. Daemons run detached (setsid, stdin from /dev/null,
# stdout/stderr to $DS_RGW_DIR/log/*.out, no inherited descriptors), so a caller that pipes
# our output (CI) never waits on them.
#
# Pitfalls of Debian's radosgw 16.2.15 that shape this script:
#   * civetweb and not beast: beast + synchronous HTTP/AMQP push asserts and kills radosgw.
#   * `ms mon client mode = crc secure`: without it radosgw loops on
#     "get_initial_auth_request returned -13" (its built-in default is "secure").
#   * At most ONE persistent topic: with two, radosgw segfaults ~30 s after start. `notify`
#     refuses to create a second one.
#   * A new persistent topic is picked up by radosgw's queue manager only on its next
#     periodic scan (hard-coded 30 s): its first deliveries came 14-24 s late here.
#   * /usr/bin/aws and /usr/bin/python3 explicitly: pyenv shims may come first in PATH.
#   * Proxy variables of the caller are dropped for the daemons, curl and aws (everything
#     here talks to 127.0.0.1); apt-get still gets them.
#
# Region: RGW (16.2) verifies SigV4 with whatever region the client put in its credential
# scope: "us-east-1", "default" (the zonegroup's name) and even "eu-west-9" all worked. We
# export us-east-1, which also keeps SDKs from sending a LocationConstraint on CreateBucket.
set -euo pipefail

# ---------------------------------------------------------------- settings
DIR="${DS_RGW_DIR:-/tmp/delete-sync-rgw}"
case "$DIR" in /*) ;; *) DIR="$PWD/$DIR" ;; esac
DIR="${DIR%/}"
PORT="${DS_RGW_PORT:-17480}"
MON_V2_PORT="${DS_RGW_MON_PORT:-17300}"
MON_V1_PORT=$((MON_V2_PORT + 1))
OSD_PORT_MIN="${DS_RGW_OSD_PORTS:-17320}"
OSD_PORT_MAX=$((OSD_PORT_MIN + 31))
MEMSTORE_BYTES=$(( ${DS_RGW_MEMSTORE_MB:-4096} * 1024 * 1024 ))

ACCESS_KEY="DSRGWTESTACCESSKEY01"
SECRET_KEY="dsrgwTestSecretKey0000000000000000000001"
RGW_UID="delete-sync-test"
REGION="us-east-1"
ENDPOINT="http://127.0.0.1:${PORT}"

CONF="$DIR/ceph.conf"
MARKER="$DIR/.delete-sync-rgw-lab"
ENV_FILE="$DIR/env"
# Serialises start/stop/notify of one lab between concurrent callers (parallel test jobs).
# It lives beside the lab directory because stop removes that directory.
LOCK_FILE="$DIR.lock"
AWS_BIN=/usr/bin/aws
PY_BIN=/usr/bin/python3
PACKAGES=(radosgw ceph-mon ceph-osd awscli curl python3 openssl ca-certificates)
NO_PROXY_ENV=(-u http_proxy -u https_proxy -u HTTP_PROXY -u HTTPS_PROXY -u ALL_PROXY -u all_proxy)

unset CEPH_ARGS
export CEPH_CONF="$CONF"

log() { printf 'rgw-local: %s\n' "$*" >&2; }
die() { printf 'rgw-local: ERROR: %s\n' "$*" >&2; exit 1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"
    elif command -v sudo >/dev/null 2>&1; then sudo -n "$@"
    else die "need root (or sudo) to run: $*"; fi
}

lock_lab() {
    exec 9>>"$LOCK_FILE" || die "cannot open $LOCK_FILE"
    flock -w 300 9 || die "timed out waiting for $LOCK_FILE (another start/stop still running?)"
}

# ---------------------------------------------------------------- install
pkg_installed() {
    [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)" = installed ]
}

cmd_install() {
    local missing=() p
    for p in "${PACKAGES[@]}"; do pkg_installed "$p" || missing+=("$p"); done
    for p in /usr/bin/radosgw /usr/bin/radosgw-admin /usr/bin/ceph-mon /usr/bin/ceph-osd \
             /usr/bin/ceph /usr/bin/monmaptool "$AWS_BIN" "$PY_BIN" /usr/bin/curl; do
        [ -x "$p" ] || { missing+=("${PACKAGES[@]}"); break; }
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    # Dedupe, keep order.
    mapfile -t missing < <(printf '%s\n' "${missing[@]}" | awk '!seen[$0]++')
    log "installing: ${missing[*]}"
    local t0; t0=$(now)
    # Keep apt from starting ceph's system services (Docker images ship such a policy-rc.d;
    # bare CI machines may not). Only a policy we created is removed afterwards.
    local policy=/usr/sbin/policy-rc.d made_policy=0
    if [ ! -e "$policy" ]; then
        as_root sh -c "printf '#!/bin/sh\nexit 101\n' > $policy && chmod 755 $policy"
        made_policy=1
    fi
    local rc=0
    {
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q -o DPkg::Lock::Timeout=300 &&
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
            --no-install-recommends -o DPkg::Lock::Timeout=300 \
            -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
            "${missing[@]}"
    } >&2 || rc=$?
    if [ "$made_policy" -eq 1 ]; then as_root rm -f "$policy"; fi
    [ "$rc" -eq 0 ] || die "apt-get install failed (exit $rc)"
    # Never `apt-get autoremove` here: on some images it removes sudo and unrelated libraries.
    log "installed in $(elapsed "$t0") s"
}

# ---------------------------------------------------------------- helpers
s3_answers() {
    # Anonymous ListBuckets: RGW answers 200 with an empty ListAllMyBucketsResult.
    local body
    body=$(curl -s -m 3 --noproxy '*' "$ENDPOINT/" 2>/dev/null) || return 1
    case "$body" in *ListAllMyBucketsResult*) return 0 ;; *) return 1 ;; esac
}

# Our three daemons alive, the env file written and S3 answering.
is_running() {
    local n pid
    [ -f "$ENV_FILE" ] || return 1
    for n in mon osd rgw; do
        pid=$(cat "$DIR/pids/$n.pid" 2>/dev/null) || return 1
        pid_is_ours "$pid" || return 1
    done
    s3_answers
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Pids of live processes whose command line names our ceph.conf (daemons, stuck CLI calls).
# (A zombie has an empty cmdline, so it is not listed.)
lab_pids() {
    local f pid
    while IFS= read -r f; do
        pid=${f#/proc/}; pid=${pid%/cmdline}
        # (re-checked here, so the grep itself, gone by now, is never listed)
        if [ "$pid" != "$$" ] && pid_is_ours "$pid"; then echo "$pid"; fi
    done < <(grep -lsF -- "$CONF" /proc/[0-9]*/cmdline 2>/dev/null || true)
}

pid_is_ours() { grep -qsF -- "$CONF" "/proc/$1/cmdline" 2>/dev/null; }

ceph_cli() { timeout 30 /usr/bin/ceph --conf "$CONF" --connect-timeout 20 "$@"; }
rgw_admin() { timeout 60 /usr/bin/radosgw-admin --conf "$CONF" "$@"; }

# spawn NAME CMD...: start CMD detached; stdout/stderr to $DIR/log/NAME.out.
spawn() {
    local name=$1; shift
    (
        # Close every descriptor above 2 so the daemon holds none of the caller's pipes.
        for fd in "/proc/$BASHPID/fd/"*; do
            fd=${fd##*/}
            if [ "$fd" -gt 2 ] 2>/dev/null; then eval "exec $fd>&-" 2>/dev/null || true; fi
        done
        cd /
        # setsid: new session, no controlling terminal. As this subshell is not a process
        # group leader, setsid(1) does not fork, so $! below is the daemon's pid.
        exec env "${NO_PROXY_ENV[@]}" setsid "$@" </dev/null >>"$DIR/log/$name.out" 2>&1
    ) &
    echo $! >"$DIR/pids/$name.pid"
    disown $!   # not our job any more: no "Killed" notices from bash
}

fail_with_log() {
    local name=$1 msg=$2 f
    printf 'rgw-local: ERROR: %s\n' "$msg" >&2
    for f in "$DIR/log/$name.log" "$DIR/log/$name.out"; do
        if [ -s "$f" ]; then
            printf -- '----- last lines of %s -----\n' "$f" >&2
            tail -n 40 "$f" >&2
        fi
    done
    # Leave no half-started daemons behind (they would hold the ports), but keep the logs.
    kill_lab_daemons
    printf 'rgw-local: daemons stopped; logs kept in %s/log (run "%s stop" to remove)\n' \
        "$DIR" "$0" >&2
    exit 1
}

alive() { local p; p=$(cat "$DIR/pids/$1.pid" 2>/dev/null) && kill -0 "$p" 2>/dev/null; }

# wait_for NAME SECONDS CMD...: poll CMD until it succeeds, daemon NAME must stay alive.
wait_for() {
    local name=$1 secs=$2; shift 2
    local deadline=$(( $(date +%s) + secs ))
    while :; do
        if "$@" >/dev/null 2>&1; then return 0; fi
        alive "$name" || fail_with_log "$name" "$name daemon died during start-up"
        [ "$(date +%s)" -lt "$deadline" ] || fail_with_log "$name" "$name not ready after ${secs} s"
        sleep 0.2
    done
}

osd_up() { ceph_cli osd stat 2>/dev/null | grep -q '1 up'; }

# ---------------------------------------------------------------- curl with SigV4
s3curl() {
    curl -sS -m 30 --noproxy '*' --fail-with-body --aws-sigv4 "aws:amz:${REGION}:s3" \
        --user "${ACCESS_KEY}:${SECRET_KEY}" -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' "$@"
}

write_conf() {
    local fsid=$1
    cat >"$CONF" <<EOF
# Generated by scripts/rgw-local.sh; throw-away single-node lab, loopback only.
[global]
fsid = $fsid
mon host = [v2:127.0.0.1:$MON_V2_PORT,v1:127.0.0.1:$MON_V1_PORT]
mon initial members = a
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind ipv6 = false
ms bind port min = $OSD_PORT_MIN
ms bind port max = $OSD_PORT_MAX
# radosgw's built-in default is "secure" only, which with auth none loops on
# "get_initial_auth_request returned -13".
ms mon client mode = crc secure
auth cluster required = none
auth service required = none
auth client required = none
keyring = $DIR/keyring
run dir = $DIR/run
admin socket = $DIR/run/\$cluster-\$name.asok
pid file = $DIR/run/\$name.ceph.pid
log file = $DIR/log/\$name.log
log to stderr = false
err to stderr = true
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon max pg per osd = 1000
mon data avail warn = 2
mon data avail crit = 1
# Commit monitor changes at once instead of batching them for 1 s: every pool radosgw
# creates costs two or three mon commands, so this roughly halves the cold start.
paxos propose interval = 0.05
paxos min wait = 0.01

[mon]
mon data = $DIR/mon/\$cluster-\$id

[osd]
osd data = $DIR/osd/\$cluster-\$id
osd objectstore = memstore
memstore device bytes = $MEMSTORE_BYTES

[client.rgw.a]
# civetweb, not beast: beast asserts under synchronous notification push.
# tcp_nodelay=1: civetweb writes a response's headers and body separately; with Nagle on, a
# GET on a kept-alive connection waits ~40 ms for the client's delayed ACK.
rgw frontends = civetweb port=127.0.0.1:$PORT num_threads=64 tcp_nodelay=1
rgw data = $DIR/rgw/\$cluster-\$id
EOF
}

write_env() {
    local tmp="$ENV_FILE.tmp"
    {
        printf 'export AWS_ACCESS_KEY_ID=%q\n' "$ACCESS_KEY"
        printf 'export AWS_SECRET_ACCESS_KEY=%q\n' "$SECRET_KEY"
        printf 'export AWS_REGION=%q\n' "$REGION"
        printf 'export AWS_ENDPOINT_URL_S3=%q\n' "$ENDPOINT"
        printf 'export AWS_ENDPOINT_URL=%q\n' "$ENDPOINT"
        printf 'export DS_RGW_ENDPOINT=%q\n' "$ENDPOINT"
        if [ -f "$DIR/tls/trusted" ]; then
            printf 'export DS_RGW_CA_CERT=%q\n' "$DIR/tls/ca.pem"
            printf 'export DS_RGW_CA_KEY=%q\n' "$DIR/tls/ca.key"
        fi
    } >"$tmp"
    mv -f "$tmp" "$ENV_FILE"
}

# ---------------------------------------------------------------- lab CA
# make_lab_ca: the lab's CA and the trust folder radosgw sees as /etc/ssl/certs. Fails (and
# the lab goes on without it) when not root or mount namespaces are not available.
make_lab_ca() {
    if [ "$(id -u)" -ne 0 ] || ! unshare -m --propagation private true 2>/dev/null; then
        log "not root or no mount namespaces: radosgw will not trust a lab CA (https push endpoints with verify-ssl will fail)"
        return 1
    fi
    mkdir -p "$DIR/tls/trust"
    if ! openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
            -subj "/CN=delete-sync RGW lab CA" -keyout "$DIR/tls/ca.key" -out "$DIR/tls/ca.pem" \
            >"$DIR/log/lab-ca.out" 2>&1; then
        log "openssl could not make the lab CA (see $DIR/log/lab-ca.out)"
        return 1
    fi
    chmod 600 "$DIR/tls/ca.key"
    if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
        cp /etc/ssl/certs/ca-certificates.crt "$DIR/tls/trust/"
    fi
    cp "$DIR/tls/ca.pem" "$DIR/tls/trust/delete-sync-rgw-lab-ca.pem"
}

# ---------------------------------------------------------------- start
cmd_start() {
    cmd_install
    if is_running; then
        log "already running at $ENDPOINT"
        echo "$ENV_FILE"
        return 0
    fi
    local t0; t0=$(now)

    # Leftovers of an earlier, broken run: clean them first.
    if [ -e "$DIR" ]; then
        if [ -e "$MARKER" ]; then
            log "cleaning up a previous lab in $DIR"
            cmd_stop >/dev/null
        elif [ -n "$(ls -A "$DIR" 2>/dev/null)" ]; then
            die "$DIR exists, is not empty and is not a rgw-local lab; set DS_RGW_DIR elsewhere"
        fi
    fi
    local p
    for p in "$PORT" "$MON_V2_PORT" "$MON_V1_PORT"; do
        port_busy "$p" && die "port 127.0.0.1:$p is already in use (set DS_RGW_PORT / DS_RGW_MON_PORT)"
    done

    mkdir -p "$DIR"/{log,pids,run,mon,osd/ceph-0,rgw/ceph-rgw.a}
    : >"$MARKER"
    : >"$DIR/keyring"
    local fsid osd_uuid
    fsid=$(cat /proc/sys/kernel/random/uuid)
    osd_uuid=$(cat /proc/sys/kernel/random/uuid)
    write_conf "$fsid"

    # --- mon
    /usr/bin/monmaptool --create --fsid "$fsid" \
        --addv a "[v2:127.0.0.1:$MON_V2_PORT,v1:127.0.0.1:$MON_V1_PORT]" \
        "$DIR/monmap" >"$DIR/log/monmaptool.out" 2>&1 ||
        fail_with_log monmaptool "monmaptool failed"
    /usr/bin/ceph-mon --conf "$CONF" --mkfs -i a --monmap "$DIR/monmap" \
        >"$DIR/log/mon.mkfs.out" 2>&1 || fail_with_log mon.mkfs "ceph-mon --mkfs failed"
    spawn mon /usr/bin/ceph-mon --conf "$CONF" -i a -f
    # mon's log file is mon.a.log
    ln -sf mon.a.log "$DIR/log/mon.log"
    wait_for mon 30 ceph_cli mon stat
    log "mon up after $(elapsed "$t0") s"

    # --- osd
    ceph_cli osd new "$osd_uuid" >"$DIR/log/osd.new.out" 2>&1 ||
        fail_with_log mon "ceph osd new failed: $(cat "$DIR/log/osd.new.out")"
    /usr/bin/ceph-osd --conf "$CONF" -i 0 --mkfs --osd-uuid "$osd_uuid" \
        >"$DIR/log/osd.mkfs.out" 2>&1 || fail_with_log osd.mkfs "ceph-osd --mkfs failed"
    spawn osd /usr/bin/ceph-osd --conf "$CONF" -i 0 -f
    ln -sf osd.0.log "$DIR/log/osd.log"
    wait_for osd 60 osd_up
    log "osd up after $(elapsed "$t0") s"

    # --- radosgw (creates its pools on first start: 9 s with the default paxos interval,
    # under 1 s with the one in ceph.conf)
    local rgw_cmd=(/usr/bin/radosgw --conf "$CONF" -n client.rgw.a -f)
    if make_lab_ca; then
        # unshare and sh exec, so the pid recorded is radosgw's.
        # shellcheck disable=SC2016
        spawn rgw unshare -m --propagation private /bin/sh -c \
            'mount --bind "$0" /etc/ssl/certs && exec "$@"' "$DIR/tls/trust" "${rgw_cmd[@]}"
        : >"$DIR/tls/trusted"
    else
        spawn rgw "${rgw_cmd[@]}"
    fi
    ln -sf client.rgw.a.log "$DIR/log/rgw.log"
    wait_for rgw 90 s3_answers
    log "radosgw answers after $(elapsed "$t0") s"

    # --- test user
    rgw_admin user create --uid="$RGW_UID" --display-name="delete-sync tests" \
        --access-key="$ACCESS_KEY" --secret-key="$SECRET_KEY" \
        >"$DIR/log/user-create.out" 2>&1 ||
        fail_with_log user-create "radosgw-admin user create failed"

    # --- warm-up: the first bucket creates the index pool, the first PUT the data pool
    local wb="ds-warmup-$$-$RANDOM" out
    out=$( {
        s3curl -X PUT "$ENDPOINT/$wb" &&
        s3curl -X PUT --data-binary 'warm-up' "$ENDPOINT/$wb/warm-up" &&
        s3curl -X DELETE "$ENDPOINT/$wb/warm-up" &&
        s3curl -X DELETE "$ENDPOINT/$wb"
    } 2>&1 ) || fail_with_log rgw "warm-up through S3 failed: $out"
    s3_answers || fail_with_log rgw "S3 stopped answering after the warm-up"
    write_env
    log "RGW ready at $ENDPOINT in $(elapsed "$t0") s (logs in $DIR/log)"
    echo "$ENV_FILE"
}

# ---------------------------------------------------------------- stop
# stop_pids NAME:SIGNAL...: signal our daemons, wait up to 5 s, then KILL what is left.
stop_pids() {
    local spec name sig pidf pid i pids=()
    for spec in "$@"; do
        name=${spec%%:*}; sig=${spec#*:}; pidf="$DIR/pids/$name.pid"
        [ -f "$pidf" ] || continue
        pid=$(cat "$pidf" 2>/dev/null || true)
        # Only a live process that still runs with our ceph.conf (pids get reused).
        if [ -n "$pid" ] && pid_is_ours "$pid"; then
            kill -s "$sig" "$pid" 2>/dev/null || true
            pids+=("$pid")
        fi
        rm -f "$pidf"
    done
    local all=(${pids[@]+"${pids[@]}"})
    for ((i = 0; i < 50; i++)); do
        local left=()
        for pid in ${pids[@]+"${pids[@]}"}; do pid_is_ours "$pid" && left+=("$pid"); done
        if [ "${#left[@]}" -eq 0 ]; then wait_reaped ${all[@]+"${all[@]}"}; return 0; fi
        pids=("${left[@]}")
        sleep 0.1
    done
    kill -KILL "${pids[@]}" 2>/dev/null || true
}

# Give init a moment to reap our killed daemons, so `pgrep ceph-osd` right after stop
# does not find their zombies.
wait_reaped() {
    local i pid busy
    for ((i = 0; i < 20; i++)); do
        busy=0
        for pid in "$@"; do [ -e "/proc/$pid" ] && busy=1; done
        [ "$busy" -eq 0 ] && return 0
        sleep 0.05
    done
}

kill_lab_daemons() {
    # KILL, not TERM: the lab is thrown away, so a clean shutdown buys nothing (memstore
    # would only dump its RAM into the directory being removed), and with the OSD gone radosgw
    # hangs in its TERM handler for 5 s or more.
    stop_pids rgw:KILL osd:KILL mon:KILL
    # Whatever else still runs with our ceph.conf (lost pid files, stuck CLI calls).
    local pids pid i
    for i in 1 2 3 4 5 6 7 8 9 10; do
        pids=$(lab_pids)
        [ -z "$pids" ] && break
        for pid in $pids; do kill -KILL "$pid" 2>/dev/null || true; done
        sleep 0.2
    done
}

cmd_stop() {
    if [ ! -e "$DIR" ]; then
        [ -z "$(lab_pids)" ] && { log "not running"; return 0; }
    elif [ ! -e "$MARKER" ]; then
        die "$DIR is not a rgw-local lab (no $MARKER); refusing to touch it"
    fi
    kill_lab_daemons
    local pids
    pids=$(lab_pids)
    [ -z "$pids" ] || die "processes still running: $pids"
    if [ -e "$DIR" ]; then rm -rf -- "$DIR"; fi
    log "stopped"
}

# ---------------------------------------------------------------- env / status / aws
require_running() {
    is_running || die "RGW lab is not running at $ENDPOINT (run: $0 start)"
}

cmd_env() { require_running; cat "$ENV_FILE"; }

cmd_status() {
    if is_running; then log "running at $ENDPOINT (lab $DIR)"; return 0; fi
    log "not running"
    return 1
}

run_aws() {
    env -u AWS_PROFILE -u AWS_DEFAULT_PROFILE -u AWS_SESSION_TOKEN -u AWS_SECURITY_TOKEN \
        "${NO_PROXY_ENV[@]}" \
        AWS_ACCESS_KEY_ID="$ACCESS_KEY" AWS_SECRET_ACCESS_KEY="$SECRET_KEY" \
        AWS_REGION="$REGION" AWS_DEFAULT_REGION="$REGION" \
        AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null \
        AWS_PAGER="" AWS_EC2_METADATA_DISABLED=true \
        "$AWS_BIN" --endpoint-url "$ENDPOINT" "$@"
}

cmd_aws() { require_running; run_aws "$@"; }

# ---------------------------------------------------------------- notify
# Behaviour seen with radosgw 16.2.15 (civetweb) and a python3 http.server as endpoint:
#   * Non-persistent topic = synchronous push. For a PUT RGW sends
#     `POST /?token=secret` (the push-endpoint's path and query string verbatim),
#     Content-Type: application/json, body {"Records":[{..."eventName":"ObjectCreated:Put"...}]}
#     with exactly one record, keys raw UTF-8 (not URL-encoded), and only then answers the S3
#     call: the POST arrived ~65 ms before the PUT returned, and an endpoint that slept 2 s
#     before answering made the PUT take 2.4 s. DELETE gives ObjectRemoved:Delete the same way;
#     a DeleteObjects of 2 keys sent 2 POSTs, one per key, before answering. With two topics on
#     a bucket they are pushed one after the other.
#   * Persistent topic (--persistent): the S3 call is not held (~0.4 s for an aws-cli PUT,
#     same as with no topic); the POST came within ~0.1 s of the call returning, except that
#     a topic created on a running radosgw is only picked up at the queue manager's next 30 s
#     scan (the first POST came 14-24 s after the PUT; later ones were prompt).
#   * put-bucket-notification-configuration on RGW adds/replaces the configuration with the
#     given Id (we use Id = TOPIC); other configurations already on the bucket stay (unlike AWS).
cmd_notify() {
    if [ $# -lt 3 ] || [ $# -gt 4 ]; then
        die "usage: $0 notify BUCKET TOPIC PUSH_ENDPOINT [--persistent]"
    fi
    local bucket=$1 topic=$2 push=$3 persistent=false
    if [ $# -eq 4 ]; then
        [ "$4" = --persistent ] || die "unknown option: $4"
        persistent=true
    fi
    require_running
    case "$push" in http://*|https://*|amqp://*|kafka://*) ;; *)
        die "PUSH_ENDPOINT must be a URL (http://127.0.0.1:PORT/...)" ;; esac

    # Topics that exist now and whether they are persistent. radosgw-admin reads RADOS
    # directly; besides the real topics it lists one internal copy per bucket notification,
    # named "<notification id>_<topic>", whose dest.push_endpoint_topic is the real topic.
    local topics_json info
    topics_json=$(rgw_admin topic list 2>/dev/null) || topics_json='{}'
    info=$(TOPIC="$topic" "$PY_BIN" -c '
import json, os, sys
try:
    data = json.load(sys.stdin)
except ValueError:
    data = {}
exists, arn, others = "no", "-", set()
for entry in data.get("topics", []):
    t = entry.get("topic", {})
    dest = t.get("dest", {})
    name = t.get("name", "")
    if name != dest.get("push_endpoint_topic", name):
        continue  # a per-notification copy
    persistent = str(dest.get("persistent", "false")).lower() == "true"
    if name == os.environ["TOPIC"]:
        exists = "persistent" if persistent else "yes"
        arn = t.get("arn") or "-"
    elif persistent:
        others.add(name)
print(exists, arn, ",".join(sorted(others)))
' <<<"$topics_json")
    local exists old_arn other_persistent
    read -r exists old_arn other_persistent <<<"$info"
    if [ "$persistent" = true ] && [ -n "$other_persistent" ]; then
        die "refusing a second persistent topic (existing: $other_persistent): radosgw 16.2 crashes with two or more"
    fi
    # Switching a topic between persistent and not: delete it first (DeleteTopic also removes
    # a persistent topic's queue), so no stale queue stays behind.
    if { [ "$exists" = persistent ] && [ "$persistent" = false ]; } ||
       { [ "$exists" = yes ] && [ "$persistent" = true ]; }; then
        run_aws sns delete-topic --topic-arn "$old_arn" >/dev/null 2>&1 ||
            rgw_admin topic rm --topic="$topic" >/dev/null 2>&1 || true
    fi

    local attrs
    attrs=$(PUSH="$push" PERS="$persistent" "$PY_BIN" -c '
import json, os
print(json.dumps({"push-endpoint": os.environ["PUSH"], "persistent": os.environ["PERS"]}))')
    local arn
    arn=$(run_aws sns create-topic --name "$topic" --attributes "$attrs" \
        --query TopicArn --output text) || die "sns create-topic $topic failed"
    if [ -z "$arn" ] || [ "$arn" = None ]; then die "sns create-topic returned no TopicArn"; fi

    local conf
    conf=$(ARN="$arn" ID="$topic" "$PY_BIN" -c '
import json, os
print(json.dumps({"TopicConfigurations": [{
    "Id": os.environ["ID"],
    "TopicArn": os.environ["ARN"],
    "Events": ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]}]}))')
    run_aws s3api put-bucket-notification-configuration --bucket "$bucket" \
        --notification-configuration "$conf" ||
        die "put-bucket-notification-configuration on $bucket failed"
    log "bucket $bucket -> topic $arn -> $push (persistent=$persistent)"
}

# ---------------------------------------------------------------- main
usage() {
    sed -n '5,17p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit "${1:-2}"
}

[ $# -ge 1 ] || usage
cmd=$1; shift
case "$cmd" in
    install) cmd_install ;;
    start)   lock_lab; cmd_start ;;
    stop)    lock_lab; cmd_stop ;;
    status)  cmd_status ;;
    env)     cmd_env ;;
    notify)  lock_lab; cmd_notify "$@" ;;
    aws)     cmd_aws "$@" ;;
    -h|--help|help) usage 0 ;;
    *) log "unknown command: $cmd"; usage ;;
esac
