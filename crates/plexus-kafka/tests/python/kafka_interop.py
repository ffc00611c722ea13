"""The other-language side of plexus-kafka's cloudevents_interop test.

Speaks the CloudEvents Kafka binding in binary content mode with
confluent-kafka alone: every attribute a `ce_` header (UTF-8),
datacontenttype the `content-type` header, the key (the partitioning
extension's partitionkey) the record key, other headers as they are, the
data the record value.

  kafka_interop.py publish BROKERS TOPIC PARTITIONS  < events (JSON lines)
  kafka_interop.py read BROKERS TOPIC PARTITIONS COUNT > events (JSON lines)

An event line: {"id", "source", "type", "subject", "time", "datacontenttype",
"partitionkey", "headers": {...}, "data_base64"}. `read` makes the topic
(PARTITIONS partitions) if it is missing, prints `ready` once it reads
every partition from its end, then COUNT event lines.
"""

import base64
import json
import sys
import time

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

ATTRIBUTES = ["id", "source", "type", "subject", "time"]
TIMEOUT = 30


def ensure_topic(brokers, topic, partitions):
    admin = AdminClient({"bootstrap.servers": brokers})
    futures = admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
    for future in futures.values():
        try:
            future.result(timeout=TIMEOUT)
        except KafkaException as e:
            if e.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        found = admin.list_topics(topic, timeout=TIMEOUT).topics.get(topic)
        if found is not None and found.error is None and len(found.partitions) > 0:
            return sorted(found.partitions)
        time.sleep(0.05)
    sys.exit(f"topic {topic} not listed after creating it")


def publish(brokers, topic):
    producer = Producer({"bootstrap.servers": brokers, "enable.idempotence": True, "acks": "all"})
    failures = []

    def report(error, _message):
        if error is not None:
            failures.append(error)

    for line in sys.stdin:
        if not line.strip():
            continue
        event = json.loads(line)
        headers = [("ce_specversion", b"1.0")]
        for name in ATTRIBUTES:
            if event.get(name) is not None:
                headers.append(("ce_" + name, event[name].encode("utf-8")))
        if event.get("datacontenttype") is not None:
            headers.append(("content-type", event["datacontenttype"].encode("utf-8")))
        for name, value in event.get("headers", {}).items():
            headers.append((name, value.encode("utf-8")))
        key = event.get("partitionkey")
        producer.produce(
            topic,
            value=base64.b64decode(event["data_base64"]),
            key=None if key is None else key.encode("utf-8"),
            headers=headers,
            on_delivery=report,
        )
    if producer.flush(TIMEOUT) != 0 or failures:
        sys.exit(f"publishing failed: {failures or 'records left unsent'}")
    print("ok", flush=True)


def read(brokers, topic, partitions, count):
    ids = ensure_topic(brokers, topic, partitions)
    consumer = Consumer({"bootstrap.servers": brokers, "group.id": "plexus-interop-reader",
                         "enable.auto.commit": False})
    start = []
    for partition in ids:
        _, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=TIMEOUT)
        start.append(TopicPartition(topic, partition, high))
    consumer.assign(start)
    print("ready", flush=True)
    got = 0
    deadline = time.monotonic() + 2 * TIMEOUT
    while got < count and time.monotonic() < deadline:
        message = consumer.poll(1.0)
        if message is None:
            continue
        if message.error() is not None:
            sys.exit(f"reading failed: {message.error()}")
        event = {"headers": {}, "data_base64": base64.b64encode(message.value() or b"").decode()}
        for name, value in message.headers() or []:
            text = (value or b"").decode("utf-8")
            if name.startswith("ce_") and name[3:] in ATTRIBUTES:
                event[name[3:]] = text
            elif name == "content-type":
                event["datacontenttype"] = text
            elif name == "ce_specversion":
                continue
            else:
                event["headers"][name] = text
        if message.key() is not None:
            event["partitionkey"] = message.key().decode("utf-8")
        print(json.dumps(event), flush=True)
        got += 1
    consumer.close()
    if got < count:
        sys.exit(f"read {got} of {count} messages within {2 * TIMEOUT} s")


def main():
    mode, brokers, topic, partitions = sys.argv[1:5]
    if mode == "publish":
        publish(brokers, topic)
    elif mode == "read":
        read(brokers, topic, int(partitions), int(sys.argv[5]))
    else:
        sys.exit("usage: kafka_interop.py publish|read BROKERS TOPIC PARTITIONS [COUNT]")


if __name__ == "__main__":
    main()
