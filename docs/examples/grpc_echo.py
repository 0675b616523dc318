"""A gRPC echo app and client for trying Portico's gRPC routing (README: "Route a gRPC app").

No .proto and no protoc: the one method takes and returns raw bytes (grpcio's generic handlers).

    python docs/examples/grpc_echo.py serve --port 50051                      # plaintext (h2c)
    python docs/examples/grpc_echo.py serve --port 50443 --cert app.pem --key app.key   # TLS (ALPN h2)
    python docs/examples/grpc_echo.py call 127.0.0.1:9999 --authority grpc.a.com       # through the router
    python docs/examples/grpc_echo.py call 127.0.0.1:8443 --authority grpc.a.com --ca ca.pem

Needs grpcio (`pip install grpcio`, or `pip install -e '.[test]'`).
"""

from __future__ import annotations

import argparse
import sys
from concurrent import futures

import grpc

METHOD = "/portico.example.Echo/Say"


def _say(request: bytes, context: grpc.ServicerContext) -> bytes:
    context.send_initial_metadata((("served-by", context.peer()),))
    return b"echo: " + request


def serve(port: int, cert: str | None, key: str | None) -> None:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    handler = grpc.method_handlers_generic_handler(
        "portico.example.Echo", {"Say": grpc.unary_unary_rpc_method_handler(_say)})
    server.add_generic_rpc_handlers((handler,))
    address = f"127.0.0.1:{port}"
    if cert and key:
        with open(cert, "rb") as c, open(key, "rb") as k:
            server.add_secure_port(address, grpc.ssl_server_credentials([(k.read(), c.read())]))
    else:
        server.add_insecure_port(address)
    server.start()
    print(f"gRPC echo app on {address} ({'TLS' if cert else 'plaintext'})", flush=True)
    server.wait_for_termination()


def call(target: str, authority: str, ca: str | None, text: str) -> int:
    options = [("grpc.default_authority", authority)]
    if ca:
        with open(ca, "rb") as f:
            # the router's certificate is for the route's name, which the client checks
            creds = grpc.ssl_channel_credentials(root_certificates=f.read())
        options.append(("grpc.ssl_target_name_override", authority))
        channel = grpc.secure_channel(target, creds, options=options)
    else:
        channel = grpc.insecure_channel(target, options=options)
    with channel:
        say = channel.unary_unary(METHOD)
        try:
            reply, call_ = say.with_call(text.encode(), timeout=10)
        except grpc.RpcError as err:
            print(f"{err.code().name}: {err.details()}", file=sys.stderr)
            return 1
        print(reply.decode(), dict(call_.initial_metadata()))
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="run the app")
    s.add_argument("--port", type=int, default=50051)
    s.add_argument("--cert", help="PEM certificate chain (TLS)")
    s.add_argument("--key", help="PEM private key (TLS)")
    c = sub.add_parser("call", help="call the app (through the router)")
    c.add_argument("target", help="host:port of the router")
    c.add_argument("--authority", required=True, help="the route, sent as :authority")
    c.add_argument("--ca", help="CA of the router's certificate (TLS)")
    c.add_argument("--text", default="hello")
    args = ap.parse_args()
    if args.command == "serve":
        serve(args.port, args.cert, args.key)
        return 0
    return call(args.target, args.authority, args.ca, args.text)


if __name__ == "__main__":
    sys.exit(main())
