#!/usr/bin/env python3
"""Print the SHA-256 of an RDP server's TLS leaf certificate.

    python3 rdp_cert.py HOST PORT [--pem]

An independent client for the interop lab (openssl s_client has no RDP mode):
it sends an X.224 Connection Request carrying an RDP_NEG_REQ that asks for
TLS or CredSSP (MS-RDPBCGR 2.2.1.1), reads the X.224 Connection Confirm,
requires an RDP_NEG_RSP selecting TLS or CredSSP (both start with a plain TLS
handshake), then runs the TLS handshake with verification off and prints the
leaf's SHA-256 in lowercase hex (the PEM too with --pem). Exit 1 on any
failure, with the reason on stderr.
"""

import hashlib
import socket
import ssl
import struct
import sys

TYPE_RDP_NEG_REQ = 0x01
TYPE_RDP_NEG_RSP = 0x02
TYPE_RDP_NEG_FAILURE = 0x03
PROTOCOL_SSL = 0x00000001
PROTOCOL_HYBRID = 0x00000002
PROTOCOL_HYBRID_EX = 0x00000008
X224_CR = 0xE0
X224_CC = 0xD0


def connection_request(requested):
    """TPKT + X.224 Connection Request + RDP_NEG_REQ."""
    neg_req = struct.pack("<BBHI", TYPE_RDP_NEG_REQ, 0, 8, requested)
    # LI counts the X.224 header after itself: code, DST-REF, SRC-REF, class.
    x224 = struct.pack(">BBHHB", 6 + len(neg_req), X224_CR, 0, 0, 0) + neg_req
    return struct.pack(">BBH", 3, 0, 4 + len(x224)) + x224


def read_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError("connection closed after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return buf


def negotiate(sock):
    """Sends the request; returns the protocol the server selected."""
    sock.sendall(connection_request(PROTOCOL_SSL | PROTOCOL_HYBRID))
    version, _, length = struct.unpack(">BBH", read_exact(sock, 4))
    if version != 3 or not 11 <= length <= 512:
        raise ValueError("not a TPKT reply (version %d, length %d)" % (version, length))
    body = read_exact(sock, length - 4)
    li, code = body[0], body[1] & 0xF0
    if code != X224_CC:
        raise ValueError("X.224 TPDU 0x%02x, want a Connection Confirm (0xd0)" % code)
    neg = body[7 : 1 + li]
    if len(neg) < 8:
        raise ValueError("Connection Confirm without RDP_NEG_RSP: the server only speaks standard RDP security")
    typ, _, nlen, value = struct.unpack("<BBHI", neg[:8])
    if typ == TYPE_RDP_NEG_FAILURE:
        raise ValueError("RDP_NEG_FAILURE, code %d" % value)
    if typ != TYPE_RDP_NEG_RSP or nlen != 8:
        raise ValueError("unexpected negotiation structure type %d length %d" % (typ, nlen))
    if value not in (PROTOCOL_SSL, PROTOCOL_HYBRID, PROTOCOL_HYBRID_EX):
        raise ValueError("server selected protocol 0x%x, not TLS or CredSSP" % value)
    return value


def main(argv):
    if len(argv) not in (3, 4) or (len(argv) == 4 and argv[3] != "--pem"):
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    host, port = argv[1], int(argv[2])
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    ctx.set_ciphers("ALL:@SECLEVEL=0")
    try:
        with socket.create_connection((host, port), timeout=10) as raw:
            selected = negotiate(raw)
            with ctx.wrap_socket(raw, server_hostname=None) as tls:
                der = tls.getpeercert(binary_form=True)
                print("rdp_cert: %s:%d selected protocol 0x%x, %s %s"
                      % (host, port, selected, tls.version(), tls.cipher()[0]), file=sys.stderr)
    except (OSError, ValueError, EOFError) as e:
        print("rdp_cert: %s:%d: %s" % (host, port, e), file=sys.stderr)
        return 1
    if not der:
        print("rdp_cert: %s:%d presented no certificate" % (host, port), file=sys.stderr)
        return 1
    print(hashlib.sha256(der).hexdigest())
    if len(argv) == 4:
        print(ssl.DER_cert_to_PEM_cert(der), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
