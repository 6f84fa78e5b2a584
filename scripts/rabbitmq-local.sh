#!/usr/bin/env bash
# rabbitmq-local.sh: a throw-away RabbitMQ broker (Debian's rabbitmq-server) on 127.0.0.1,
# with the consistent-hash exchange plugin, for delete-sync's AMQP tests, demo and benchmarks.
#
# Usage:
#   scripts/rabbitmq-local.sh install   apt-get rabbitmq-server and amqp-tools if missing
#   scripts/rabbitmq-local.sh start     install, start the broker detached, wait until it
#                                       answers, create the test user. Idempotent.
#   scripts/rabbitmq-local.sh stop      stop the broker, remove its directory
#   scripts/rabbitmq-local.sh restart   stop and start the broker, KEEPING its data (durable
#                                       queues and persistent messages survive)
#   scripts/rabbitmq-local.sh status    exit 0 when the broker answers
#   scripts/rabbitmq-local.sh env       print the env file (eval "$(scripts/rabbitmq-local.sh env)")
#   scripts/rabbitmq-local.sh ctl ARGS  rabbitmqctl ARGS against this broker
#
# Environment:
#   DS_RMQ_DIR    broker directory (data, logs, cookie)   (default /tmp/delete-sync-rabbitmq)
#   DS_RMQ_PORT   AMQP port on 127.0.0.1                   (default 17672)
#
# The broker is a node of its own (dsrabbit@localhost, distribution port DS_RMQ_PORT+20000,
# its own Erlang cookie under DS_RMQ_DIR), so it neither needs nor disturbs a system-wide
# rabbitmq-server. It listens on 127.0.0.1 only. The env file exports
# DS_AMQP_URL=amqp://dsuser:<password>@127.0.0.1:PORT/%2f (the default vhost "/").
set -euo pipefail

DIR="${DS_RMQ_DIR:-/tmp/delete-sync-rabbitmq}"
case "$DIR" in /*) ;; *) DIR="$PWD/$DIR" ;; esac
DIR="${DIR%/}"
PORT="${DS_RMQ_PORT:-17672}"
NODE="dsrabbit@localhost"
USER_NAME="dsuser"
USER_PASS="dsRabbitTestPassword01"
ENV_FILE="$DIR/env"

log() { printf 'rabbitmq-local: %s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# Everything the broker and its tools read; all state lives under $DIR.
broker_env() {
    export HOME="$DIR/home"
    export RABBITMQ_NODENAME="$NODE"
    export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
    export RABBITMQ_NODE_PORT="$PORT"
    export RABBITMQ_DIST_PORT=$((PORT + 20000))
    export RABBITMQ_CONFIG_FILE="$DIR/rabbitmq.conf"
    export RABBITMQ_ENABLED_PLUGINS_FILE="$DIR/enabled_plugins"
    export RABBITMQ_MNESIA_BASE="$DIR/mnesia"
    export RABBITMQ_LOG_BASE="$DIR/log"
    export RABBITMQ_PID_FILE="$DIR/rabbitmq.pid"
    export RABBITMQ_CONF_ENV_FILE="$DIR/rabbitmq-env.conf"
    export ERL_EPMD_ADDRESS=127.0.0.1
    export ERL_CRASH_DUMP="$DIR/log/erl_crash.dump"
    unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY no_proxy NO_PROXY
}

ctl() { (broker_env && mkdir -p "$DIR/log" && cd "$DIR" && timeout 60 /usr/lib/rabbitmq/bin/rabbitmqctl -n "$NODE" "$@"); }

cmd_install() {
    local missing=()
    [ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || missing+=(rabbitmq-server)
    command -v amqp-publish >/dev/null 2>&1 || missing+=(amqp-tools)
    if [ ${#missing[@]} -gt 0 ]; then
        log "installing ${missing[*]}"
        # The package's post-install tries to start a system-wide broker; in containers
        # policy-rc.d refuses, which is fine: we run our own node.
        $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2 ||
            {
                $SUDO apt-get update -q >&2
                $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2
            }
    fi
}

answers() { ctl status >/dev/null 2>&1; }

write_config() {
    mkdir -p "$DIR/home" "$DIR/mnesia" "$DIR/log"
    chmod 700 "$DIR/home"
    if [ ! -f "$DIR/home/.erlang.cookie" ]; then
        head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$DIR/home/.erlang.cookie"
        chmod 400 "$DIR/home/.erlang.cookie"
    fi
    cat >"$DIR/rabbitmq.conf" <<EOF
listeners.tcp.default = 127.0.0.1:$PORT
loopback_users = none
log.file.level = info
log.console = false
# Tests and benchmarks run on small machines: do not block publishers on a low-disk alarm.
disk_free_limit.absolute = 50MB
EOF
    echo '[rabbitmq_consistent_hash_exchange].' >"$DIR/enabled_plugins"
    : >"$DIR/rabbitmq-env.conf"
}

start_broker() {
    (
        broker_env
        cd "$DIR"
        setsid /usr/lib/rabbitmq/bin/rabbitmq-server </dev/null >"$DIR/log/server.out" 2>&1 &
    )
    local i
    for i in $(seq 1 120); do
        if answers && ctl await_startup >/dev/null 2>&1; then return 0; fi
        sleep 1
    done
    tail -n 40 "$DIR/log/server.out" >&2 || true
    die "the broker did not start within 120 s (logs in $DIR/log)"
}

cmd_start() {
    cmd_install
    if answers; then
        log "already running on 127.0.0.1:$PORT"
        cat "$ENV_FILE"
        return 0
    fi
    write_config
    start_broker
    ctl add_user "$USER_NAME" "$USER_PASS" >/dev/null 2>&1 ||
        ctl change_password "$USER_NAME" "$USER_PASS" >/dev/null
    ctl set_permissions -p / "$USER_NAME" '.*' '.*' '.*' >/dev/null
    ctl set_user_tags "$USER_NAME" administrator >/dev/null
    cat >"$ENV_FILE" <<EOF
export DS_AMQP_URL='amqp://$USER_NAME:$USER_PASS@127.0.0.1:$PORT/%2f'
export DS_AMQP_HOST=127.0.0.1
export DS_AMQP_PORT=$PORT
export DS_AMQP_USER=$USER_NAME
export DS_AMQP_PASSWORD=$USER_PASS
export DS_RMQ_DIR='$DIR'
EOF
    log "running on 127.0.0.1:$PORT (env: $ENV_FILE)"
    cat "$ENV_FILE"
}

stop_broker() {
    if answers; then ctl stop >/dev/null 2>&1 || true; fi
    local pid
    if [ -f "$DIR/rabbitmq.pid" ]; then
        pid=$(cat "$DIR/rabbitmq.pid" 2>/dev/null || true)
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
            kill -9 "$pid" 2>/dev/null || true
        fi
    fi
    # Anything of this node left behind (beam, its port helpers).
    pkill -f -- "-sname $NODE" 2>/dev/null || true
    pkill -f -- "$DIR/mnesia" 2>/dev/null || true
}

cmd_stop() {
    stop_broker
    rm -rf "$DIR"
    log "stopped"
}

cmd_restart() {
    [ -d "$DIR/mnesia" ] || die "not started (no $DIR)"
    stop_broker
    start_broker
    log "restarted on 127.0.0.1:$PORT"
}

cmd=${1:-}
shift || true
case "$cmd" in
    install) cmd_install ;;
    start) cmd_start ;;
    stop) cmd_stop ;;
    restart) cmd_restart ;;
    status) answers ;;
    env) [ -f "$ENV_FILE" ] || die "not started (no $ENV_FILE)"; cat "$ENV_FILE" ;;
    ctl) ctl "$@" ;;
    *) sed -n '2,25p' "$0" >&2; exit 2 ;;
esac
