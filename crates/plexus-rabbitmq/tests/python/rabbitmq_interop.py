"""The other-language side of plexus-rabbitmq's cloudevents_interop test.

Speaks the CloudEvents AMQP binding in binary content mode with pika
alone: every attribute an application property (header) named
`cloudEvents:NAME`, datacontenttype the `content-type` property, the key
the partitioning extension's `cloudEvents:partitionkey`, other headers as
they are, the data the body. Publishes with publisher confirms.

  rabbitmq_interop.py publish URL EXCHANGE TOPIC   < events (JSON lines)
  rabbitmq_interop.py read URL EXCHANGE TOPIC COUNT > events (JSON lines)

An event line: {"id", "source", "type", "subject", "time", "datacontenttype",
"partitionkey", "headers": {...}, "data_base64"}. `read` binds a queue of its
own to TOPIC, prints `ready`, then COUNT event lines.
"""

import base64
import json
import sys

import pika

PREFIX = "cloudEvents:"
ATTRIBUTES = ["id", "source", "type", "subject", "time", "partitionkey"]
BROKER_HEADERS = ("x-delivery-count", "x-received-from")


def publish(url, exchange, topic):
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.confirm_delivery()
    for line in sys.stdin:
        if not line.strip():
            continue
        event = json.loads(line)
        headers = {PREFIX + "specversion": "1.0"}
        for name in ATTRIBUTES:
            if event.get(name) is not None:
                headers[PREFIX + name] = event[name]
        for name, value in event.get("headers", {}).items():
            headers[name] = value
        properties = pika.BasicProperties(
            content_type=event.get("datacontenttype"),
            headers=headers,
            delivery_mode=pika.DeliveryMode.Persistent,
        )
        data = base64.b64decode(event["data_base64"])
        # Raises when the broker does not confirm the message.
        channel.basic_publish(exchange, topic, data, properties)
    connection.close()
    print("ok", flush=True)


def text(value):
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def read(url, exchange, topic, count):
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    queue = channel.queue_declare("", exclusive=True, auto_delete=True).method.queue
    channel.queue_bind(queue, exchange, routing_key=topic)
    print("ready", flush=True)
    got = 0
    for method, properties, body in channel.consume(queue, inactivity_timeout=60):
        if method is None:
            sys.exit("no message within 60 s")
        event = {"headers": {}, "data_base64": base64.b64encode(body).decode()}
        if properties.content_type is not None:
            event["datacontenttype"] = properties.content_type
        for name, value in (properties.headers or {}).items():
            if name.startswith(PREFIX) and name[len(PREFIX):] in ATTRIBUTES:
                event[name[len(PREFIX):]] = text(value)
            elif name == PREFIX + "specversion" or name in BROKER_HEADERS:
                continue
            else:
                event["headers"][name] = text(value)
        print(json.dumps(event), flush=True)
        channel.basic_ack(method.delivery_tag)
        got += 1
        if got == count:
            break
    connection.close()


def main():
    mode, url, exchange, topic = sys.argv[1:5]
    if mode == "publish":
        publish(url, exchange, topic)
    elif mode == "read":
        read(url, exchange, topic, int(sys.argv[5]))
    else:
        sys.exit("usage: rabbitmq_interop.py publish|read URL EXCHANGE TOPIC [COUNT]")


if __name__ == "__main__":
    main()
