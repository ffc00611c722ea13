# shellcheck shell=bash
# Makes sure the engines plexus's tests talk to are up on loopback.
# Sourced by .ci/run; usable on its own:
#
#   source .ci/services.sh && ensure_services postgres nats rabbitmq
#
# Each service is checked on its port; one that is down is started with this
# machine's own command, then every started service is waited for (bounded by
# PLEXUS_SERVICE_WAIT seconds, default 60). A service that does not come up
# fails with its name, its port, the command tried and the end of its log.

PLEXUS_SERVICE_WAIT="${PLEXUS_SERVICE_WAIT:-60}"

# The port each service listens on (127.0.0.1).
service_port() {
  case "$1" in
    postgres) echo 5432 ;;
    nats) echo 4222 ;;
    rabbitmq) echo 5672 ;;
    *) echo "unknown service '$1' (known: postgres nats rabbitmq)" >&2; return 2 ;;
  esac
}

# The newest of the given files that exist, skipping RabbitMQ's upgrade log.
newest_file() {
  local file best=""
  for file in "$@"; do
    [[ -f "$file" && "$file" != *_upgrade.log ]] || continue
    if [[ -z "$best" || "$file" -nt "$best" ]]; then
      best="$file"
    fi
  done
  echo "$best"
}

# The log to show when the service does not come up.
service_log() {
  case "$1" in
    postgres) newest_file /var/log/postgresql/*.log ;;
    nats) echo /var/log/nats-server.log ;;
    rabbitmq) newest_file /var/log/rabbitmq/rabbit@*.log ;;
  esac
}

# The newest PostgreSQL version with a cluster configured on this machine.
postgres_version() {
  local dir
  for dir in /etc/postgresql/*/; do
    [[ -d "$dir" ]] && basename "$dir"
  done | sort -V | tail -n 1
}

# Starts one service in the background (returns once it is launched).
start_service() {
  case "$1" in
    postgres)
      local version
      version="$(postgres_version)"
      if [[ -z "$version" ]]; then
        echo "PostgreSQL is not installed (/etc/postgresql is empty): apt-get install postgresql" >&2
        return 1
      fi
      pg_ctlcluster --skip-systemctl-redirect "$version" main start
      ;;
    nats)
      start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
        -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log
      ;;
    rabbitmq)
      rabbitmq-server -detached
      ;;
  esac
}

# True when something accepts TCP connections on 127.0.0.1:PORT.
port_open() {
  timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

# Waits until 127.0.0.1:PORT accepts connections, at most SECONDS seconds.
wait_for_port() {
  local port="$1" seconds="$2" waited=0
  until port_open "$port"; do
    if (( waited >= seconds )); then
      return 1
    fi
    sleep 1
    waited=$((waited + 1))
  done
}

# ensure_services NAME...: checks each service, starts those that are down,
# waits for all of them; non-zero (with a clear message) if one stays down.
ensure_services() {
  local name port started=() failed=0
  for name in "$@"; do
    port="$(service_port "$name")" || return 2
    if port_open "$port"; then
      echo "service $name: up on 127.0.0.1:$port"
    else
      echo "service $name: down on 127.0.0.1:$port; starting it"
      if ! start_service "$name"; then
        echo "service $name: its start command failed" >&2
      fi
      started+=("$name")
    fi
  done
  for name in "${started[@]}"; do
    port="$(service_port "$name")"
    if wait_for_port "$port" "$PLEXUS_SERVICE_WAIT"; then
      echo "service $name: started, up on 127.0.0.1:$port"
    else
      local log
      echo "service $name: not accepting connections on 127.0.0.1:$port after ${PLEXUS_SERVICE_WAIT}s" >&2
      log="$(service_log "$name" || true)"
      if [[ -n "$log" && -r "$log" ]]; then
        echo "--- last lines of $log" >&2
        tail -n 20 "$log" >&2
      fi
      failed=1
    fi
  done
  return "$failed"
}
