"""The other-language side of plexus-nats's cloudevents_interop test.

Speaks the CloudEvents NATS binding in binary content mode with nats-py
alone: every attribute a `ce-` header (percent-encoded), datacontenttype
the `content-type` header, the key the partitioning extension's
`ce-partitionkey`, other headers as they are, the data the body.

  nats_interop.py publish URL STREAM SUBJECT   < events (JSON lines)
  nats_interop.py read URL STREAM SUBJECT COUNT > events (JSON lines)

An event line: {"id", "source", "type", "subject", "time", "datacontenttype",
"partitionkey", "headers": {...}, "data_base64"}. `read` prints `ready` once
subscribed, then COUNT event lines.
"""

import asyncio
import base64
import json
import sys
from urllib.parse import unquote

import nats
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

ATTRIBUTES = ["id", "source", "type", "subject", "time", "partitionkey"]


def encode(value):
    """Percent-encodes space, '"', '%', controls and non-ASCII."""
    out = []
    for byte in value.encode("utf-8"):
        if byte <= 0x20 or byte >= 0x7F or byte in (0x22, 0x25):
            out.append("%%%02X" % byte)
        else:
            out.append(chr(byte))
    return "".join(out)


async def publish(url, subject):
    nc = await nats.connect(url)
    js = nc.jetstream()
    for line in sys.stdin:
        if not line.strip():
            continue
        event = json.loads(line)
        headers = {"ce-specversion": "1.0"}
        for name in ATTRIBUTES:
            if event.get(name) is not None:
                headers["ce-" + name] = encode(event[name])
        if event.get("datacontenttype") is not None:
            headers["content-type"] = encode(event["datacontenttype"])
        for name, value in event.get("headers", {}).items():
            headers[name] = encode(value)
        data = base64.b64decode(event["data_base64"])
        await js.publish(subject, data, headers=headers)
    await nc.close()
    print("ok", flush=True)


async def read(url, stream, subject, count):
    nc = await nats.connect(url)
    js = nc.jetstream()
    config = ConsumerConfig(
        deliver_policy=DeliverPolicy.NEW,
        ack_policy=AckPolicy.EXPLICIT,
        filter_subject=subject,
    )
    sub = await js.pull_subscribe(subject, durable=None, stream=stream, config=config)
    print("ready", flush=True)
    got = 0
    while got < count:
        try:
            messages = await sub.fetch(count - got, timeout=5)
        except nats.errors.TimeoutError:
            continue
        for message in messages:
            headers = {k.lower(): unquote(v) for k, v in (message.headers or {}).items()}
            event = {"headers": {}, "data_base64": base64.b64encode(message.data).decode()}
            for name, value in headers.items():
                if name.startswith("ce-") and name[3:] in ATTRIBUTES:
                    event[name[3:]] = value
                elif name == "content-type":
                    event["datacontenttype"] = value
                elif name in ("ce-specversion", "nats-msg-id"):
                    continue
                else:
                    event["headers"][name] = value
            print(json.dumps(event), flush=True)
            await message.ack()
            got += 1
    await nc.close()


def main():
    mode, url, stream, subject = sys.argv[1:5]
    if mode == "publish":
        asyncio.run(publish(url, subject))
    elif mode == "read":
        asyncio.run(read(url, stream, subject, int(sys.argv[5])))
    else:
        sys.exit("usage: nats_interop.py publish|read URL STREAM SUBJECT [COUNT]")


if __name__ == "__main__":
    main()
