"""lookupSRV against a real DNS server on 127.0.0.1 (a small UDP responder built with dnspython): records come
back as *net.SRV values with .Target .Port .Priority .Weight, sorted the way confd sorts them (by the string
Target+Port+Priority+Weight), and a failed lookup gives no records."""

from __future__ import annotations

import socket
import threading

import dns.message
import dns.rdatatype
import dns.resolver
import dns.rrset
import pytest

from portico.confsync import confd_funcs
from portico.confsync.confd_funcs import Store
from portico.confsync.confd_funcs import confd_funcs as funcs
from portico.confsync.gotemplate import GoTemplate

RECORDS = ["10 5 8080 b.example.test.", "10 60 80 a.example.test.", "20 0 8081 a.example.test."]


@pytest.fixture
def dns_server():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                wire, peer = sock.recvfrom(4096)
            except TimeoutError:
                continue
            query = dns.message.from_wire(wire)
            response = dns.message.make_response(query)
            question = query.question[0]
            if question.rdtype == dns.rdatatype.SRV and question.name.to_text() == "_http._tcp.example.test.":
                response.answer.append(dns.rrset.from_text(question.name, 60, "IN", "SRV", *RECORDS))
            else:
                response.set_rcode(3)   # NXDOMAIN
            sock.sendto(response.to_wire(), peer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = ["127.0.0.1"]
    resolver.port = sock.getsockname()[1]
    yield resolver
    stop.set()
    thread.join(timeout=5)
    sock.close()


def test_lookup_srv_sorted_like_confd(dns_server, monkeypatch):
    monkeypatch.setattr(confd_funcs, "SRV_RESOLVER", dns_server)
    text = ('{{range lookupSRV "http" "tcp" "example.test"}}{{.Target}} {{.Port}} {{.Priority}} {{.Weight}}\n'
            '{{end}}{{len (lookupSRV "nope" "tcp" "example.test")}}')
    out = GoTemplate("t.tmpl", text, funcs(Store({}))).execute()
    # "a.example.test.80" < "a.example.test.8081" < "b.example.test.8080" as strings (Target, Port, Priority...)
    assert out == ("a.example.test. 80 10 60\n"
                   "a.example.test. 8081 20 0\n"
                   "b.example.test. 8080 10 5\n"
                   "0")
