"""The other-language side of plexus-postgres's cloudevents_interop test.

Speaks plexus's PostgreSQL binding (the schema the crate documents) with
psycopg alone, in binary content mode: every CloudEvents attribute a
column of SCHEMA.messages, the key the `partitionkey` column, other
headers the `headers` JSONB object, the data the `data` bytea column.

  postgres_interop.py publish URL SCHEMA TOPIC   < events (JSON lines)
  postgres_interop.py read URL SCHEMA TOPIC COUNT > events (JSON lines)

`publish` inserts the events in one transaction, then notifies the
schema's channel. `read` joins a consumer group of its own at new
messages, prints `ready`, then claims, prints and acknowledges COUNT
events through the schema's claim() function.

An event line: {"id", "source", "type", "subject", "time", "datacontenttype",
"partitionkey", "headers": {...}, "data_base64"}.
"""

import base64
import json
import sys
import time
import uuid

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

# How long `read` waits for its messages at most, seconds.
READ_LIMIT = 60


def publish(url, schema, topic):
    events = [json.loads(line) for line in sys.stdin if line.strip()]
    insert = sql.SQL(
        "INSERT INTO {}.messages (topic, id, source, type, specversion, subject, time,"
        " datacontenttype, partitionkey, headers, data)"
        " VALUES (%s, %s, %s, %s, '1.0', %s, %s::timestamptz, %s, %s, %s, %s)"
    ).format(sql.Identifier(schema))
    with psycopg.connect(url) as conn:
        with conn.transaction():
            for event in events:
                conn.execute(
                    insert,
                    (
                        topic,
                        event["id"],
                        event["source"],
                        event["type"],
                        event.get("subject"),
                        event["time"],
                        event.get("datacontenttype"),
                        event.get("partitionkey"),
                        Jsonb(event.get("headers") or {}),
                        base64.b64decode(event["data_base64"]),
                    ),
                )
        conn.execute("SELECT pg_notify(%s, %s)", (schema, topic))
    print("ok", flush=True)


def read(url, schema, topic, count):
    name = sql.Identifier(schema)
    with psycopg.connect(url, autocommit=True) as conn:
        group = conn.execute(
            sql.SQL("SELECT {}.join_group(%s, %s, false, false)").format(name),
            (topic, "python-interop-" + str(uuid.uuid4())),
        ).fetchone()[0]
        conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(schema)))
        print("ready", flush=True)
        claim = sql.SQL(
            "SELECT seq, attempt, id, source, type, specversion, subject, time, datacontenttype,"
            " partitionkey, headers, data FROM {}.claim(%s, 'python', %s, 30000, 1000)"
            " WHERE seq IS NOT NULL"
        ).format(name)
        ack = sql.SQL(
            "SELECT {}.ack(ARRAY[%s]::bigint[], ARRAY[%s]::bigint[], ARRAY[%s]::bigint[],"
            " ARRAY[%s]::integer[])"
        ).format(name)
        got = 0
        give_up = time.monotonic() + READ_LIMIT
        while got < count:
            if time.monotonic() > give_up:
                sys.exit(f"read {got} of {count} messages within {READ_LIMIT} s")
            rows = conn.execute(claim, (group, count - got)).fetchall()
            for (seq, attempt, id_, source, type_, specversion, subject, time_,
                 content_type, key, headers, data) in rows:
                if specversion != "1.0":
                    sys.exit(f"message {seq} has specversion {specversion}")
                event = {
                    "id": id_,
                    "source": source,
                    "type": type_,
                    "subject": subject,
                    "time": time_.isoformat(),
                    "datacontenttype": content_type,
                    "partitionkey": key,
                    "headers": headers,
                    "data_base64": base64.b64encode(data).decode(),
                }
                print(json.dumps(event), flush=True)
                conn.execute(ack, (group, seq, seq, attempt))
                got += 1
            if not rows:
                # Woken by the next notification, or looks again.
                for _ in conn.notifies(timeout=0.5, stop_after=1):
                    pass
        conn.execute(
            sql.SQL("DELETE FROM {}.groups WHERE id = %s").format(name), (group,)
        )


def main():
    mode, url, schema, topic = sys.argv[1:5]
    if mode == "publish":
        publish(url, schema, topic)
    elif mode == "read":
        read(url, schema, topic, int(sys.argv[5]))
    else:
        sys.exit("usage: postgres_interop.py publish|read URL SCHEMA TOPIC [COUNT]")


if __name__ == "__main__":
    main()
