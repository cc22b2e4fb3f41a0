"""A small authoritative DNS server for tests, made with dnslib (python3-dnslib): it
answers from a zone given as text in master-file format, on a loopback UDP port (and
TCP on the same port when asked).  Names in the zone answer with their records (and
CNAMEs, followed inside the zone); a name that is not in the zone, nor above a name
in it, is NXDOMAIN; names listed in `servfail` answer SERVFAIL.

    server = ZoneServer(zone_text, servfail=("broken.test",))
    server.start()          # server.port: from instance.reserve_port() unless given
    ...
    server.stop()

Run by hand:  python3 dnsserver.py ZONEFILE [PORT]
"""

import sys
import time

from dnslib import QTYPE, RCODE, RR, DNSLabel
from dnslib.server import BaseResolver, DNSLogger, DNSServer

from instance import reserve_port


class ZoneResolver(BaseResolver):
    def __init__(self, zone_text, servfail=()):
        self.rrs = RR.fromZone(zone_text)
        self.servfail = {DNSLabel(n) for n in servfail}
        self.queries = []

    def _exists(self, name):
        for rr in self.rrs:
            if rr.rname == name or rr.rname.matchSuffix(name):
                return True
        return False

    def resolve(self, request, handler):
        reply = request.reply()
        qname, qtype = request.q.qname, request.q.qtype
        self.queries.append((str(qname), QTYPE.get(qtype)))
        if qname in self.servfail:
            reply.header.rcode = RCODE.SERVFAIL
            return reply
        if not self._exists(qname):
            reply.header.rcode = RCODE.NXDOMAIN
            return reply
        name = qname
        for _ in range(8):
            found_cname = None
            for rr in self.rrs:
                if rr.rname != name:
                    continue
                if rr.rtype == qtype:
                    reply.add_answer(rr)
                elif rr.rtype == QTYPE.CNAME and qtype != QTYPE.CNAME:
                    reply.add_answer(rr)
                    found_cname = rr.rdata.label
            if found_cname is None:
                break
            name = found_cname
        return reply


class ZoneServer:
    def __init__(self, zone_text, servfail=(), port=0, tcp=False):
        self.resolver = ZoneResolver(zone_text, servfail)
        self.port = port or reserve_port()
        self.tcp = tcp
        self.servers = []

    def start(self):
        quiet = DNSLogger(log="-request,-reply,-truncated,-error,-recv,-send,-data", prefix=False)
        self.servers.append(DNSServer(self.resolver, address="127.0.0.1", port=self.port,
                                      logger=quiet))
        if self.tcp:
            self.servers.append(DNSServer(self.resolver, address="127.0.0.1", port=self.port,
                                          tcp=True, logger=quiet))
        for s in self.servers:
            s.start_thread()
        return self

    def stop(self):
        for s in self.servers:
            s.stop()
            s.server.server_close()
        self.servers = []

    @property
    def queries(self):
        return self.resolver.queries


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        text = f.read()
    srv = ZoneServer(text, port=int(sys.argv[2]) if len(sys.argv) > 2 else 0, tcp=True).start()
    print(f"listening on 127.0.0.1:{srv.port}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        srv.stop()
