# shellcheck shell=bash
# The Kafka-compatible broker the plexus-kafka tests use: tansu, built
# from the Rust package registry (no Kafka package exists in ours) and
# started on loopback. Meant to be sourced; then
#
#   ensure_tansu
#
# installs tansu into ~/.cache/plexus (once; the binary is kept between
# runs where the machine keeps that folder), starts it on 127.0.0.1:9092
# unless something listens there already, and waits until it accepts
# connections. The tests make their own topics. Safe to run again.
#
# Storage: tansu's SQLite engine (its `libsql` feature), in a file made
# anew each time the broker starts here. Not the in-memory engine: in
# tansu 0.6.0 it serves a fetch from the first record batch that starts
# at or after the asked offset, so a consumer resuming inside a batch
# (from a committed offset, after a rebalance) silently skips the rest of
# that batch; the SQLite engine fetches record by record, and it also
# survives a restart (the restart scenarios start a tansu of their own
# with it).
#
# Index: tansu 0.6.0's SQLite schema has no index on its `header` table,
# so fetching a record scans the headers of every record stored (and
# plexus's CloudEvents travel as ~8 headers a record): after a few
# minutes of tests the broker spent seconds on each request. Once the
# broker has made its tables, `tansu_index_store` adds the index on
# (topition, offset_id) that its lookup needs.
#
# Patched: tansu-broker 0.6.0's group coordinator keeps a member that
# leaves a group while the group is forming as the group's leader; every
# member that joins afterwards is told to follow it and waits for its
# assignment for good (a consumer leaving as another joins: the
# plexus-kafka scenarios continue_after_subscribe_close and
# new_subscriber_receives_old_messages). `tansu_install` builds tansu from
# its published sources with one change, made by `tansu_patch_broker`: a
# forming group whose leader left has no leader, so the next member to
# join leads it. The install folder's name says so, so that a machine
# with an unpatched build of an earlier version of this script builds anew.

TANSU_VERSION="${TANSU_VERSION:-0.6.0}"
TANSU_CACHE="${TANSU_CACHE:-$HOME/.cache/plexus}"
TANSU_ROOT="${TANSU_ROOT:-$TANSU_CACHE/tansu-$TANSU_VERSION-sqlite-leader-fix}"
TANSU_BIN="$TANSU_ROOT/bin/tansu"
TANSU_LOG="${TANSU_LOG:-$TANSU_CACHE/tansu-broker.log}"
# The broker's SQLite store lives here (emptied when it starts).
TANSU_DATA="${TANSU_DATA:-$TANSU_CACHE/tansu-data}"
# A running broker whose store grew past this is restarted on an empty one.
TANSU_MAX_STORE_MB="${TANSU_MAX_STORE_MB:-256}"
TANSU_HOST="${TANSU_HOST:-127.0.0.1}"
TANSU_PORT="${TANSU_PORT:-9092}"
# How long the broker may take to accept connections, seconds.
TANSU_STARTUP="${TANSU_STARTUP:-30}"

# Builds tansu with its SQLite engine (libsql; dynostore and postgres for
# the other engines), patched (see Patched above), unless its binary is
# there. Takes 10-15 minutes on 2 cores the first time.
tansu_install() {
  if [[ -x "$TANSU_BIN" ]]; then
    return 0
  fi
  local src="$TANSU_CACHE/tansu-src-$TANSU_VERSION" cache crates
  mkdir -p "$TANSU_CACHE"
  echo "building tansu $TANSU_VERSION (patched) into $TANSU_ROOT (first time only)"
  # The published crates, by way of cargo's own download cache.
  rm -rf "$src"
  mkdir -p "$src/fetch/src"
  cat >"$src/fetch/Cargo.toml" <<EOF
[package]
name = "plexus-tansu-fetch"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
tansu = { version = "=$TANSU_VERSION", default-features = false }
tansu-broker = { version = "=$TANSU_VERSION", default-features = false }
EOF
  echo 'fn main() {}' >"$src/fetch/src/main.rs"
  cargo fetch --quiet --manifest-path "$src/fetch/Cargo.toml" || return 1
  cache="${CARGO_HOME:-$HOME/.cargo}/registry/cache"
  crates="$(find "$cache" -name "tansu-broker-$TANSU_VERSION.crate" -printf '%h\n' | head -n 1)"
  if [[ -z "$crates" || ! -f "$crates/tansu-$TANSU_VERSION.crate" ]]; then
    echo "cargo fetch left no tansu-$TANSU_VERSION.crate and tansu-broker-$TANSU_VERSION.crate in $cache" >&2
    return 1
  fi
  tar -xzf "$crates/tansu-$TANSU_VERSION.crate" -C "$src" || return 1
  tar -xzf "$crates/tansu-broker-$TANSU_VERSION.crate" -C "$src" || return 1
  tansu_patch_broker "$src/tansu-broker-$TANSU_VERSION" || return 1
  printf '\n[patch.crates-io]\ntansu-broker = { path = "../tansu-broker-%s" }\n' "$TANSU_VERSION" \
    >>"$src/tansu-$TANSU_VERSION/Cargo.toml"
  # A build in the package (not `cargo install`), so that the versions
  # in its Cargo.lock are the ones used: newer ones do not compile.
  cargo build --release --manifest-path "$src/tansu-$TANSU_VERSION/Cargo.toml" \
    --features dynostore,postgres,libsql --target-dir "$TANSU_CACHE/tansu-target" || return 1
  install -D "$TANSU_CACHE/tansu-target/release/tansu" "$TANSU_BIN"
}

# Makes the group coordinator in the tansu-broker sources at $1 forget a
# leader that left a forming group (see Patched above): in the `Group`
# implementation of `Inner<O, Forming>`, `leave` clears `state.leader`
# when the leader is no longer a member, before it answers.
tansu_patch_broker() {
  python3 - "$1/src/coordinator/group/administrator.rs" <<'PY'
import sys
path = sys.argv[1]
text = open(path).read()
start = text.find("impl<O> Group for Inner<O, Forming>")
end = text.find("impl<O> Group for Inner<O, Formed>")
answer = "        let body = LeaveGroupResponse::default()"
if start < 0 or end < start or text.count(answer, start, end) != 1:
    sys.exit(f"patching tansu-broker: {path} is not laid out as 0.6.0's; update tansu_patch_broker for this version")
at = text.index(answer, start, end)
fix = """        // plexus: a leader that left a forming group leads it no more.
        if self
            .state
            .leader
            .as_ref()
            .is_some_and(|leader| !self.members.contains_key(leader))
        {
            self.state.leader = None;
        }

"""
with open(path, "w") as out:
    out.write(text[:at] + fix + text[at:])
PY
}

# Whether something accepts connections on the broker's address.
tansu_listening() {
  (exec 3<>"/dev/tcp/$TANSU_HOST/$TANSU_PORT") 2>/dev/null
}

ensure_tansu() {
  tansu_install || return 1
  if tansu_listening; then
    if pgrep -f "^$TANSU_BIN broker" >/dev/null; then
      local stored
      stored=$(tansu_store_mb)
      if (( stored > TANSU_MAX_STORE_MB )); then
        # Every run adds topics and records (benches many), and the tests
        # need none of them; a big store can only slow tansu, whose one
        # storage task serialises every request (a CI run here met
        # metadata requests timing out after 10 s, once, with 800 MB).
        echo "tansu's store holds ${stored} MB (over ${TANSU_MAX_STORE_MB} MB); restarting it on an empty store"
        tansu_stop "^$TANSU_BIN broker" || return 1
      elif tansu_answers; then
        echo "tansu already listens on $TANSU_HOST:$TANSU_PORT (store: ${stored} MB)"
        # Started here earlier, perhaps by a version of this script
        # without the index.
        if [[ -f "$TANSU_DATA/tansu.db" ]]; then
          tansu_index_store "$TANSU_DATA/tansu.db" || return 1
        fi
        return 0
      else
        # tansu 0.6.0 (SQLite engine) can lose its storage task for good
        # (when a client goes before its answer) and then drops every
        # connection that asks for metadata: restarted.
        echo "the tansu on $TANSU_HOST:$TANSU_PORT no longer answers metadata requests; restarting it"
        tansu_stop "^$TANSU_BIN broker" || return 1
      fi
    elif pgrep -f "/tansu broker .*$TANSU_HOST:$TANSU_PORT" >/dev/null; then
      # Another build (an unpatched one an earlier version of this script
      # started): replaced by this one.
      echo "a tansu other than $TANSU_BIN listens on $TANSU_HOST:$TANSU_PORT; replacing it"
      tansu_stop "/tansu broker .*$TANSU_HOST:$TANSU_PORT" || return 1
    elif tansu_answers; then
      echo "a Kafka broker other than tansu listens on $TANSU_HOST:$TANSU_PORT; the tests use it"
      return 0
    else
      echo "something listens on $TANSU_HOST:$TANSU_PORT but does not answer a Kafka metadata request" >&2
      return 1
    fi
  fi
  mkdir -p "$(dirname "$TANSU_LOG")"
  rm -rf "$TANSU_DATA"
  mkdir -p "$TANSU_DATA"
  echo "starting tansu on $TANSU_HOST:$TANSU_PORT (store: $TANSU_DATA, log: $TANSU_LOG)"
  # Its own session, so that it outlives the shell that sourced this; the
  # SQLite URL is relative to its working directory.
  (cd "$TANSU_DATA" && exec setsid "$TANSU_BIN" broker \
    --listener-url "tcp://$TANSU_HOST:$TANSU_PORT" \
    --advertised-listener-url "tcp://$TANSU_HOST:$TANSU_PORT" \
    --storage-engine sqlite://tansu.db \
    >>"$TANSU_LOG" 2>&1 </dev/null) &
  local waited=0
  until tansu_listening; do
    if (( waited >= TANSU_STARTUP * 10 )); then
      echo "tansu did not accept connections on $TANSU_HOST:$TANSU_PORT within ${TANSU_STARTUP}s; last lines of $TANSU_LOG:" >&2
      tail -n 20 "$TANSU_LOG" >&2
      return 1
    fi
    sleep 0.1
    waited=$(( waited + 1 ))
  done
  tansu_index_store "$TANSU_DATA/tansu.db" || return 1
  echo "tansu accepts connections on $TANSU_HOST:$TANSU_PORT"
}

# The size of the broker's store in MB (its database and write-ahead log).
tansu_store_mb() {
  local kb
  kb=$(du -sk "$TANSU_DATA" 2>/dev/null | cut -f1)
  echo $(( ${kb:-0} / 1024 ))
}

# Stops the processes whose command line matches $1 (pkill -f) and waits
# until nothing listens on the broker's address.
tansu_stop() {
  pkill -f "$1" || return 1
  local waited=0
  while tansu_listening; do
    if (( waited >= 100 )); then
      echo "the old broker still listens on $TANSU_HOST:$TANSU_PORT after 10s" >&2
      return 1
    fi
    sleep 0.1
    waited=$(( waited + 1 ))
  done
}

# Whether the broker answers a Kafka Metadata request (v0, all topics),
# which needs its storage, within 10 seconds.
tansu_answers() {
  python3 - "$TANSU_HOST" "$TANSU_PORT" <<'PY'
import socket, struct, sys
host, port = sys.argv[1], int(sys.argv[2])
client = b"plexus-ci"
body = struct.pack(">hhih", 3, 0, 7, len(client)) + client + struct.pack(">i", 0)
try:
    with socket.create_connection((host, port), timeout=10) as conn:
        conn.sendall(struct.pack(">i", len(body)) + body)
        head = b""
        while len(head) < 8:
            chunk = conn.recv(8 - len(head))
            if not chunk:
                sys.exit(1)
            head += chunk
        size, correlation = struct.unpack(">ii", head)
        sys.exit(0 if correlation == 7 and size > 4 else 1)
except OSError:
    sys.exit(1)
PY
}

# Adds the index tansu's lookup of a record's headers needs to the SQLite
# store at $1, once the broker has made its tables (see Index above).
tansu_index_store() {
  python3 - "$1" <<'PY'
import sqlite3, sys, time
store = sys.argv[1]
deadline = time.monotonic() + 30
while True:
    try:
        db = sqlite3.connect(store, timeout=30)
        db.execute("create index if not exists plexus_header_record on header (topition, offset_id)")
        db.commit()
        db.close()
        break
    except sqlite3.OperationalError as error:
        if time.monotonic() > deadline:
            sys.exit(f"indexing tansu's store {store}: {error}")
        time.sleep(0.1)
PY
}
