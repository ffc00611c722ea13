"""A grpcio client of the plexus Echo service, run by tests/python_interop.rs.

The Rust test starts two plexus servers on loopback (plaintext, and mutual
TLS with an authorization policy) and runs this script. The script compiles
the Python stubs from proto/plexus/echo/v1/echo.proto at run time (into the
directory it is given, never into the source tree), runs one check per
behaviour a Python caller relies on, prints one line per check, and exits 1
if any check failed (2 on bad arguments or when the stubs cannot be made).

Run by hand (servers must be running):

    .venv/bin/python crates/plexus-rpc/tests/python/interop_client.py \
        --proto-root proto --stubs-dir /tmp/stubs --plaintext 127.0.0.1:50051 \
        --tls 127.0.0.1:50052 --ca ca.pem --cert client.pem --key client.key \
        --principal spiffe://shop/python
"""

import argparse
import importlib
import queue
import subprocess
import sys
import time
import traceback

import grpc

# Payloads the Rust test's Echo implementation treats specially; keep in step
# with tests/python_interop.rs.
WAIT_FOR_DEADLINE = b"plexus-interop/wait-for-deadline"
WHOAMI = b"plexus-interop/whoami"

PROTO = "plexus/echo/v1/echo.proto"
# Every call is bounded, so a server that stops answering fails a check
# instead of hanging the test.
CALL_TIMEOUT = 10.0
CONNECT_TIMEOUT = 10.0


class CheckFailed(Exception):
    """A check saw something other than what it expected."""


def expect(condition, message):
    if not condition:
        raise CheckFailed(message)


def compile_stubs(proto_root, stubs_dir):
    """Generates echo_pb2 and echo_pb2_grpc into stubs_dir and imports them."""
    command = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"--proto_path={proto_root}",
        f"--python_out={stubs_dir}",
        f"--grpc_python_out={stubs_dir}",
        PROTO,
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        print(
            f"could not compile {PROTO} from {proto_root} with grpc_tools.protoc "
            f"(exit {result.returncode}): {result.stderr.strip()}",
            file=sys.stderr,
        )
        sys.exit(2)
    sys.path.insert(0, stubs_dir)
    pb2 = importlib.import_module("plexus.echo.v1.echo_pb2")
    pb2_grpc = importlib.import_module("plexus.echo.v1.echo_pb2_grpc")
    return pb2, pb2_grpc


def connect(channel):
    """Waits, bounded, for the channel to connect."""
    grpc.channel_ready_future(channel).result(timeout=CONNECT_TIMEOUT)
    return channel


def expect_status(call, code, what):
    """Runs call(), which must fail with status `code`; returns the error."""
    try:
        call()
    except grpc.RpcError as error:
        expect(
            error.code() == code,
            f"{what}: expected {code.name}, got {error.code().name}: {error.details()}",
        )
        return error
    raise CheckFailed(f"{what}: expected {code.name}, but the call succeeded")


class Checks:
    def __init__(self, pb2, pb2_grpc, args):
        self.pb2 = pb2
        self.pb2_grpc = pb2_grpc
        self.args = args
        self.plain = connect(grpc.insecure_channel(args.plaintext))
        self.stub = pb2_grpc.EchoStub(self.plain)

    def tls_channel(self, with_client_cert):
        """A channel to the mTLS server, with or without the client certificate."""
        with open(self.args.ca, "rb") as f:
            root = f.read()
        if with_client_cert:
            with open(self.args.key, "rb") as f:
                key = f.read()
            with open(self.args.cert, "rb") as f:
                chain = f.read()
            creds = grpc.ssl_channel_credentials(root_certificates=root, private_key=key, certificate_chain=chain)
        else:
            creds = grpc.ssl_channel_credentials(root_certificates=root)
        # The server certificate names localhost and 127.0.0.1; verify it as
        # localhost whatever address the test gave.
        options = [("grpc.ssl_target_name_override", "localhost")]
        return connect(grpc.secure_channel(self.args.tls, creds, options=options))

    def unary_round_trip(self):
        for payload in (b"", b"ping", bytes(range(256)), bytes(64 * 1024)):
            reply = self.stub.Unary(self.pb2.EchoRequest(payload=payload), timeout=CALL_TIMEOUT)
            expect(reply.payload == payload, f"payload of {len(payload)} bytes came back as {len(reply.payload)} bytes")
            expect(reply.sequence == 0, f"unary reply has sequence {reply.sequence}, expected 0")

    def server_streaming(self):
        count = 50
        request = self.pb2.StreamRequest(payload=b"stream", count=count)
        replies = list(self.stub.ServerStream(request, timeout=CALL_TIMEOUT))
        expect(len(replies) == count, f"asked for {count} replies, got {len(replies)}")
        sequences = [r.sequence for r in replies]
        expect(sequences == list(range(count)), f"replies out of order: {sequences}")
        expect(all(r.payload == b"stream" for r in replies), "a reply lost its payload")

    def client_streaming(self):
        count = 20
        requests = (self.pb2.EchoRequest(payload=f"item-{i}".encode()) for i in range(count))
        reply = self.stub.ClientStream(requests, timeout=CALL_TIMEOUT)
        expect(reply.sequence == count, f"sent {count} requests, server counted {reply.sequence}")
        expect(reply.payload == f"item-{count - 1}".encode(), f"last payload came back as {reply.payload!r}")

    def bidi(self):
        # Requests are sent one at a time and each reply is read before the
        # next request goes out: a real conversation, not a batch.
        outbox = queue.Queue()
        replies = self.stub.Bidi(iter(outbox.get, None), timeout=CALL_TIMEOUT)
        try:
            for i in range(25):
                payload = f"turn-{i}".encode()
                outbox.put(self.pb2.EchoRequest(payload=payload))
                reply = next(replies)
                expect(reply.payload == payload, f"turn {i}: sent {payload!r}, got back {reply.payload!r}")
                expect(reply.sequence == i, f"turn {i}: reply has sequence {reply.sequence}")
        finally:
            outbox.put(None)
        rest = list(replies)
        expect(rest == [], f"{len(rest)} replies arrived after the last request")

    def deadline_expires(self):
        timeout = 0.3
        started = time.monotonic()
        expect_status(
            lambda: self.stub.Unary(self.pb2.EchoRequest(payload=WAIT_FOR_DEADLINE), timeout=timeout),
            grpc.StatusCode.DEADLINE_EXCEEDED,
            f"a call with timeout={timeout}s the server does not finish",
        )
        elapsed = time.monotonic() - started
        expect(elapsed >= timeout * 0.9, f"DEADLINE_EXCEEDED after {elapsed:.3f}s, before the {timeout}s deadline")
        expect(elapsed < timeout + 5.0, f"DEADLINE_EXCEEDED only after {elapsed:.3f}s for a {timeout}s deadline")

    def mtls_identity(self):
        with self.tls_channel(with_client_cert=True) as channel:
            stub = self.pb2_grpc.EchoStub(channel)
            reply = stub.Unary(self.pb2.EchoRequest(payload=WHOAMI), timeout=CALL_TIMEOUT)
            seen = reply.payload.decode("utf-8", "replace")
            expect(seen == self.args.principal, f"handler saw principal {seen!r}, expected {self.args.principal!r}")
            reply = stub.Unary(self.pb2.EchoRequest(payload=b"over tls"), timeout=CALL_TIMEOUT)
            expect(reply.payload == b"over tls", f"echo over mTLS returned {reply.payload!r}")

    def mtls_method_not_allowed(self):
        with self.tls_channel(with_client_cert=True) as channel:
            stub = self.pb2_grpc.EchoStub(channel)
            request = self.pb2.StreamRequest(payload=b"x", count=1)
            expect_status(
                lambda: list(stub.ServerStream(request, timeout=CALL_TIMEOUT)),
                grpc.StatusCode.PERMISSION_DENIED,
                "ServerStream, which no policy rule allows, with a client certificate",
            )

    def tls_without_client_cert(self):
        with self.tls_channel(with_client_cert=False) as channel:
            stub = self.pb2_grpc.EchoStub(channel)
            error = expect_status(
                lambda: stub.Unary(self.pb2.EchoRequest(payload=WHOAMI), timeout=CALL_TIMEOUT),
                grpc.StatusCode.UNAUTHENTICATED,
                "Unary, which the policy restricts, without a client certificate",
            )
            expect("client certificate" in (error.details() or ""), f"unhelpful message: {error.details()!r}")


CHECKS = [
    "unary_round_trip",
    "server_streaming",
    "client_streaming",
    "bidi",
    "deadline_expires",
    "mtls_identity",
    "mtls_method_not_allowed",
    "tls_without_client_cert",
]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--proto-root", required=True, help="folder holding plexus/echo/v1/echo.proto")
    parser.add_argument("--stubs-dir", required=True, help="empty folder for the generated stubs")
    parser.add_argument("--plaintext", required=True, help="HOST:PORT of the plaintext server")
    parser.add_argument("--tls", required=True, help="HOST:PORT of the mTLS server")
    parser.add_argument("--ca", required=True, help="PEM of the CA of both server and client certificates")
    parser.add_argument("--cert", required=True, help="PEM of the client certificate")
    parser.add_argument("--key", required=True, help="PEM of the client key")
    parser.add_argument("--principal", required=True, help="SPIFFE id in the client certificate")
    args = parser.parse_args()

    pb2, pb2_grpc = compile_stubs(args.proto_root, args.stubs_dir)
    print(f"python {sys.version.split()[0]}, grpcio {grpc.__version__}", flush=True)
    checks = Checks(pb2, pb2_grpc, args)
    failed = 0
    for name in CHECKS:
        started = time.monotonic()
        try:
            getattr(checks, name)()
        except CheckFailed as error:
            failed += 1
            print(f"FAIL {name}: {error}", flush=True)
            continue
        except Exception as error:  # an unexpected error is a failure too, with where it happened
            failed += 1
            print(f"FAIL {name}: {type(error).__name__}: {error}", flush=True)
            traceback.print_exc()
            continue
        print(f"ok   {name} ({(time.monotonic() - started) * 1000:.0f} ms)", flush=True)
    checks.plain.close()
    print(f"python interop: {len(CHECKS) - failed} of {len(CHECKS)} checks passed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
