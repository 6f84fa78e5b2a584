#!/usr/bin/env bash
# cephfs-local.sh: a throw-away shared file system (CephFS) with several "hosts" on one
# machine, for delete-sync's multi-host tests and benchmarks (docs/SEMANTICS.md section 9).
#
# Usage:
#   scripts/cephfs-local.sh start              start the RGW lab's mon + OSD (scripts/rgw-local.sh
#                                              start), add an MDS and a file system; idempotent;
#                                              prints the path of the env file
#   scripts/cephfs-local.sh env                print the env file (DS_CEPHFS_MNT, ...)
#   scripts/cephfs-local.sh status             exit 0 when the MDS is active
#   scripts/cephfs-local.sh host-start NAME    start host NAME: its own PID, UTS and mount
#                                              namespace, hostname NAME, CephFS mounted with
#                                              ceph-fuse at $DS_CEPHFS_MNT; idempotent
#   scripts/cephfs-local.sh host-exec NAME CMD...
#                                              run CMD inside host NAME (its exit code; the
#                                              working directory is /: use absolute paths)
#   scripts/cephfs-local.sh host-pid NAME      pid (in our namespace) of host NAME's init
#   scripts/cephfs-local.sh host-kill NAME     SIGKILL every process of host NAME, ceph-fuse
#                                              included: the host dies. Its MDS session (and the
#                                              locks it held) stays until the MDS evicts it
#                                              (session_autoclose, 30 s) or `evict NAME`
#   scripts/cephfs-local.sh host-stop NAME     stop host NAME cleanly (its processes, unmount)
#   scripts/cephfs-local.sh hosts              list running hosts
#   scripts/cephfs-local.sh evict NAME         evict now the client sessions host NAME had when
#                                              host-kill killed it (not a restarted NAME's)
#   scripts/cephfs-local.sh stop               stop every host and the MDS (the RGW lab keeps
#                                              running; `scripts/rgw-local.sh stop` stops all)
#
# Environment: as scripts/rgw-local.sh (DS_RGW_DIR, ports), and
#   DS_CEPHFS_MNT   where every host sees the file system  (default $DS_RGW_DIR/cephfs/mnt)
#
# Needs root (namespaces, FUSE). Facts this script is built on (../design/CEPHFS-LAB.md of the
# project's design notes, measured with Debian 12's Ceph 16.2.15):
#   * `mds tick interval = 0.1`: with the default (5 s) two clients renaming onto one target wait
#     for the MDS journal flush: 100 renames took 102 s; with 0.1 s, 200 took 3.1 s.
#   * `fuse disable pagecache = true`: without it one client does not see another's writes
#     (198 of 200 reads stale) and SQLite in rollback mode loses updates. Never SQLite WAL
#     across hosts (it needs shared memory; here it fails with "disk I/O error").
#   * session_timeout/session_autoclose 30 s (the monitor refuses less): a host that dies
#     holding a lock blocks the others for 26-29 s, until the MDS evicts it.
#   * The OSD is memstore: fsync costs almost nothing; figures are relative, not EFS's.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
RGW_LOCAL="$HERE/rgw-local.sh"
DIR="${DS_RGW_DIR:-/tmp/delete-sync-rgw}"
case "$DIR" in /*) ;; *) DIR="$PWD/$DIR" ;; esac
DIR="${DIR%/}"
RGW_CONF="$DIR/ceph.conf"
# The name starts with the RGW lab's ceph.conf path, so `rgw-local.sh stop` (which kills every
# process whose command line names that path) also stops the MDS, ceph-fuse and the hosts.
CONF="$DIR/ceph.conf.cephfs"
FS_DIR="$DIR/cephfs"
MNT="${DS_CEPHFS_MNT:-$FS_DIR/mnt}"
ENV_FILE="$FS_DIR/env"
LOCK_FILE="$DIR.cephfs.lock"
PACKAGES=(ceph-mds ceph-fuse util-linux fuse3)

unset CEPH_ARGS

log() { printf 'cephfs-local: %s\n' "$*" >&2; }
die() { printf 'cephfs-local: ERROR: %s\n' "$*" >&2; exit 1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

[ "$(id -u)" -eq 0 ] || die "needs root (PID/mount namespaces and FUSE mounts)"

lock_lab() {
    mkdir -p "$(dirname "$LOCK_FILE")"
    exec 8>>"$LOCK_FILE" || die "cannot open $LOCK_FILE"
    flock -w 300 8 || die "timed out waiting for $LOCK_FILE"
}

pkg_installed() {
    [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)" = installed ]
}

cmd_install() {
    local missing=() p
    for p in "${PACKAGES[@]}"; do pkg_installed "$p" || missing+=("$p"); done
    [ "${#missing[@]}" -eq 0 ] && return 0
    log "installing: ${missing[*]}"
    local policy=/usr/sbin/policy-rc.d made_policy=0 rc=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy"
        made_policy=1
    fi
    {
        DEBIAN_FRONTEND=noninteractive apt-get update -q -o DPkg::Lock::Timeout=300 &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
            -o DPkg::Lock::Timeout=300 -o Dpkg::Options::=--force-confdef \
            -o Dpkg::Options::=--force-confold "${missing[@]}"
    } >&2 || rc=$?
    if [ "$made_policy" -eq 1 ]; then rm -f "$policy"; fi
    [ "$rc" -eq 0 ] || die "apt-get install failed (exit $rc)"
}

ceph_cli() { timeout 30 env -u CEPH_ARGS /usr/bin/ceph --conf "$CONF" --connect-timeout 20 "$@"; }

pid_is_ours() { grep -qsF -- "$CONF" "/proc/$1/cmdline" 2>/dev/null; }

mds_pid() {
    local p
    p=$(cat "$FS_DIR/pids/mds.pid" 2>/dev/null) || return 1
    pid_is_ours "$p" || return 1
    echo "$p"
}

mds_active() { ceph_cli mds stat 2>/dev/null | grep -q 'up:active'; }

is_running() { [ -f "$ENV_FILE" ] && mds_pid >/dev/null && mds_active; }

write_conf() {
    # The RGW lab's settings (mon address, auth none, run/log dirs) plus what CephFS needs.
    {
        cat "$RGW_CONF"
        cat <<EOF

# ---- added by scripts/cephfs-local.sh
[mds]
mds data = $FS_DIR/mds/\$cluster-\$id
# Flush the MDS journal every 0.1 s instead of 5 s: two clients renaming onto one target wait
# for it (100 renames: 102 s with the default, 200 renames: 3.1 s with this).
mds tick interval = 0.1

[client]
# Without it one ceph-fuse client does not see the other's writes and SQLite loses updates.
fuse disable pagecache = true
client mount timeout = 30
EOF
    } >"$CONF.tmp"
    mv -f "$CONF.tmp" "$CONF"
}

write_env() {
    {
        printf 'export DS_CEPHFS_MNT=%q\n' "$MNT"
        printf 'export DS_CEPHFS_SCRIPT=%q\n' "$HERE/cephfs-local.sh"
    } >"$ENV_FILE.tmp"
    mv -f "$ENV_FILE.tmp" "$ENV_FILE"
}

# spawn NAME PIDFILE CMD...: start CMD detached (new session, no inherited descriptors), output
# to $DIR/log/NAME.out; records its pid in PIDFILE.
spawn() {
    local name=$1 pidfile=$2; shift 2
    (
        for fd in "/proc/$BASHPID/fd/"*; do
            fd=${fd##*/}
            if [ "$fd" -gt 2 ] 2>/dev/null; then eval "exec $fd>&-" 2>/dev/null || true; fi
        done
        cd /
        exec env -u http_proxy -u https_proxy -u HTTP_PROXY -u HTTPS_PROXY setsid "$@" \
            </dev/null >>"$DIR/log/$name.out" 2>&1
    ) &
    echo $! >"$pidfile"
    disown $!
}

cmd_start() {
    cmd_install
    "$RGW_LOCAL" start >/dev/null
    if is_running; then
        log "already running (mount point $MNT)"
        echo "$ENV_FILE"
        return 0
    fi
    local t0; t0=$(now)
    stop_hosts
    stop_mds
    mkdir -p "$FS_DIR"/{pids,hosts,mds/ceph-a} "$MNT"
    write_conf
    local pool
    for pool in cephfs_metadata cephfs_data; do
        ceph_cli osd pool ls | grep -qx "$pool" ||
            ceph_cli osd pool create "$pool" 8 8 >/dev/null 2>&1 ||
            die "ceph osd pool create $pool failed"
    done
    if ! ceph_cli fs ls 2>/dev/null | grep -q 'name: cephfs,'; then
        ceph_cli fs new cephfs cephfs_metadata cephfs_data >/dev/null 2>&1 ||
            die "ceph fs new failed: $(ceph_cli fs new cephfs cephfs_metadata cephfs_data 2>&1)"
    fi
    # The monitor refuses less than 30 s.
    ceph_cli fs set cephfs session_timeout 30 >/dev/null 2>&1 || true
    ceph_cli fs set cephfs session_autoclose 30 >/dev/null 2>&1 || true
    spawn mds "$FS_DIR/pids/mds.pid" /usr/bin/ceph-mds --conf "$CONF" -i a -f
    local i
    for ((i = 0; i < 300; i++)); do
        mds_active && break
        mds_pid >/dev/null || { tail -n 30 "$DIR/log/mds.out" "$DIR/log/mds.a.log" >&2 2>/dev/null; die "ceph-mds died during start-up"; }
        sleep 0.1
    done
    mds_active || die "MDS not active after 30 s (log: $DIR/log/mds.a.log)"
    write_env
    log "CephFS ready in $(elapsed "$t0") s; hosts mount it at $MNT (host-start NAME)"
    echo "$ENV_FILE"
}

# ---------------------------------------------------------------- hosts
check_name() {
    [[ "$1" =~ ^[a-z][a-z0-9-]{0,30}$ ]] || die "host name must match [a-z][a-z0-9-]*: '$1'"
}

# Pid of host NAME's init (the child of the recorded unshare), if it runs.
host_pid() {
    local name=$1 u c
    u=$(cat "$FS_DIR/hosts/$name.pid" 2>/dev/null) || return 1
    pid_is_ours "$u" || return 1
    c=$(cat "/proc/$u/task/$u/children" 2>/dev/null) || return 1
    c=${c%% *}
    [ -n "$c" ] && pid_is_ours "$c" || return 1
    echo "$c"
}

host_mounted() {
    local p=$1
    awk -v m="$MNT" '$2 == m && $3 ~ /fuse/ { found = 1 } END { exit !found }' "/proc/$p/mounts" 2>/dev/null
}

# The host's init: hostname, mount, then reap children until killed. Its command line names
# $CONF (so rgw-local.sh stop finds it) and the host's name.
HOST_INIT='
set -u
name=$1 conf=$2 mnt=$3
hostname "$name"
mount --make-rprivate / 2>/dev/null || true
log=${conf%/*}/log/ceph-fuse.$name.log
if ! /usr/bin/ceph-fuse --conf "$conf" --id "$name" --log-file="$log" \
        --admin-socket="${conf%/*}/run/ceph-fuse.$name.asok" "$mnt" >/dev/null 2>&1; then
    echo "ceph-fuse failed" >&2; exit 1
fi
trap "fusermount3 -u -z \"$mnt\" 2>/dev/null || umount -l \"$mnt\" 2>/dev/null; exit 0" TERM
while :; do sleep 3600 & wait $!; done
'

cmd_host_start() {
    local name=$1
    check_name "$name"
    is_running || die "CephFS lab is not running (run: $0 start)"
    local p
    if p=$(host_pid "$name") && host_mounted "$p"; then
        log "host $name already running (init pid $p)"
        return 0
    fi
    host_stop_quiet "$name"
    local t0; t0=$(now)
    spawn "host-$name" "$FS_DIR/hosts/$name.pid" \
        unshare -p -f -u -m --mount-proc --propagation private \
        /bin/bash -c "$HOST_INIT" "cephfs-host" "$name" "$CONF" "$MNT"
    local i
    for ((i = 0; i < 300; i++)); do
        if p=$(host_pid "$name") && host_mounted "$p"; then
            log "host $name up in $(elapsed "$t0") s (init pid $p)"
            return 0
        fi
        kill -0 "$(cat "$FS_DIR/hosts/$name.pid")" 2>/dev/null ||
            die "host $name failed to start: $(tail -n 5 "$DIR/log/host-$name.out" 2>/dev/null)"
        sleep 0.1
    done
    die "host $name: CephFS not mounted after 30 s ($DIR/log/host-$name.out)"
}

cmd_host_exec() {
    local name=$1; shift
    [ $# -ge 1 ] || die "usage: $0 host-exec NAME CMD..."
    local p
    p=$(host_pid "$name") || die "host $name is not running"
    exec nsenter -t "$p" -m -u -p -- "$@"
}

cmd_host_pid() {
    host_pid "$1" || die "host $1 is not running"
}

# Every process of the host dies at once: SIGKILL of a PID namespace's init kills them all.
cmd_host_kill() {
    local name=$1 p
    p=$(host_pid "$name") || { log "host $name is not running"; return 0; }
    host_sessions "$name" >"$FS_DIR/hosts/$name.dead-sessions" || true
    kill -KILL "$p" 2>/dev/null || true
    wait_gone "$p"
    rm -f "$FS_DIR/hosts/$name.pid"
    log "host $name killed (its client session stays until evicted)"
}

wait_gone() {
    local i
    for ((i = 0; i < 100; i++)); do
        [ -e "/proc/$1" ] || return 0
        sleep 0.05
    done
}

host_stop_quiet() {
    local name=$1 p u
    if p=$(host_pid "$name"); then
        # The host's processes other than init and ceph-fuse first, then unmount, then init.
        nsenter -t "$p" -m -u -p -- /bin/sh -c \
            'for d in /proc/[0-9]*; do q=${d#/proc/}; [ "$q" = 1 ] || [ "$q" = $$ ] && continue; \
               case "$(cat $d/comm 2>/dev/null)" in ceph-fuse|sleep) ;; *) kill -TERM "$q" 2>/dev/null;; esac; done' \
            2>/dev/null || true
        sleep 0.2
        kill -TERM "$p" 2>/dev/null || true
        local i
        for ((i = 0; i < 50; i++)); do [ -e "/proc/$p" ] || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null || true
        wait_gone "$p"
    fi
    u=$(cat "$FS_DIR/hosts/$name.pid" 2>/dev/null || true)
    if [ -n "$u" ] && pid_is_ours "$u"; then kill -KILL "$u" 2>/dev/null || true; fi
    rm -f "$FS_DIR/hosts/$name.pid"
}

cmd_host_stop() { check_name "$1"; host_stop_quiet "$1"; log "host $1 stopped"; }

cmd_hosts() {
    local f name p
    for f in "$FS_DIR"/hosts/*.pid; do
        [ -e "$f" ] || continue
        name=${f##*/}; name=${name%.pid}
        if p=$(host_pid "$name"); then echo "$name $p"; fi
    done
}

# Session ids of host NAME's ceph-fuse clients, from the MDS.
host_sessions() {
    ceph_cli tell mds.a client ls 2>/dev/null | /usr/bin/python3 -c '
import json, sys
for s in json.load(sys.stdin):
    if s.get("client_metadata", {}).get("entity_id") == sys.argv[1]:
        print(s["id"])' "$1"
}

# Evicts the sessions host NAME had when it was killed (host-kill records them), never the
# session of a host started again under the same name.
cmd_evict() {
    local name=$1 ids id f="$FS_DIR/hosts/$1.dead-sessions"
    ids=$(cat "$f" 2>/dev/null || true)
    for id in $ids; do
        ceph_cli tell mds.a client evict "id=$id" >/dev/null 2>&1 || die "evict of session $id failed"
    done
    rm -f "$f"
    log "evicted $(echo $ids | wc -w) session(s) of the killed host $name"
}

stop_hosts() {
    local f name
    for f in "$FS_DIR"/hosts/*.pid; do
        [ -e "$f" ] || continue
        name=${f##*/}; name=${name%.pid}
        host_stop_quiet "$name"
    done
}

stop_mds() {
    local p
    if p=$(mds_pid); then
        kill -KILL "$p" 2>/dev/null || true
        wait_gone "$p"
    fi
    rm -f "$FS_DIR/pids/mds.pid"
}

cmd_stop() {
    [ -d "$FS_DIR" ] || { log "not running"; return 0; }
    stop_hosts
    stop_mds
    # Whatever else still names our conf (ceph-fuse of a host whose pid file was lost).
    local f pid
    while IFS= read -r f; do
        pid=${f#/proc/}; pid=${pid%/cmdline}
        [ "$pid" != "$$" ] && pid_is_ours "$pid" && kill -KILL "$pid" 2>/dev/null || true
    done < <(grep -lsF -- "$CONF" /proc/[0-9]*/cmdline 2>/dev/null || true)
    # The file system itself stays in the (memory) OSD until the RGW lab stops; a later start
    # reuses it.
    rm -f "$ENV_FILE"
    log "stopped (hosts and MDS)"
}

cmd_status() {
    if is_running; then log "running (mount point $MNT; hosts: $(cmd_hosts | awk '{print $1}' | xargs))"; return 0; fi
    log "not running"
    return 1
}

cmd_env() { is_running || die "CephFS lab is not running (run: $0 start)"; cat "$ENV_FILE"; }

usage() {
    sed -n '5,27p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit "${1:-2}"
}

[ $# -ge 1 ] || usage
cmd=$1; shift
need_name() { [ $# -ge 1 ] || die "usage: $0 $cmd NAME"; }
case "$cmd" in
    install)    cmd_install ;;
    start)      lock_lab; cmd_start ;;
    stop)       lock_lab; cmd_stop ;;
    status)     cmd_status ;;
    env)        cmd_env ;;
    host-start) need_name "$@"; lock_lab; cmd_host_start "$1" ;;
    host-stop)  need_name "$@"; lock_lab; cmd_host_stop "$1" ;;
    host-kill)  need_name "$@"; cmd_host_kill "$1" ;;
    host-exec)  need_name "$@"; cmd_host_exec "$@" ;;
    host-pid)   need_name "$@"; cmd_host_pid "$1" ;;
    hosts)      cmd_hosts ;;
    evict)      need_name "$@"; cmd_evict "$1" ;;
    -h|--help|help) usage 0 ;;
    *) log "unknown command: $cmd"; usage ;;
esac
