package scannertest

import (
	"crypto/tls"
	"fmt"
	"net"
	"slices"
	"sort"
	"time"
)

// Behaviour selects how a protocol peer (an in-process SMTP, LDAP, ... server
// that upgrades to TLS) behaves. Every peer implements every behaviour; where
// a behaviour has no literal meaning for a protocol the peer's file says
// which equivalent it plays (a protocol where the client speaks first
// "stalls after greeting" by never answering the client's first message).
type Behaviour int

const (
	// Normal speaks the protocol as its specification says, agrees to the
	// upgrade and completes the TLS handshake with the peer's tls.Config.
	Normal Behaviour = iota
	// NoUpgrade speaks the protocol but never offers TLS (no STARTTLS in
	// the capabilities, no SSL flag, encryption not supported, ...).
	NoUpgrade
	// RefuseUpgrade offers TLS but refuses the client's request for it
	// with the protocol's own error reply.
	RefuseUpgrade
	// StallAfterGreeting sends its greeting (if the protocol has one) and
	// then never sends another byte.
	StallAfterGreeting
	// LongLine sends an endless line or an oversized message where the
	// client expects a greeting or reply: more bytes than any bound.
	LongLine
	// EndlessReply sends a multi-line (or multi-part) reply that never ends,
	// in well-formed short lines.
	EndlessReply
	// Garbage sends a fixed blob of junk bytes instead of the protocol
	// (fixed, so that the client's verdict never depends on chance).
	Garbage
	// StallAfterUpgrade agrees to TLS, then never sends a ServerHello.
	StallAfterUpgrade
)

var behaviourNames = [...]string{"normal", "no-upgrade", "refuse-upgrade", "stall-after-greeting", "long-line", "endless-reply", "garbage", "stall-after-upgrade"}

func (b Behaviour) String() string {
	if int(b) < len(behaviourNames) {
		return behaviourNames[b]
	}
	return fmt.Sprintf("behaviour(%d)", int(b))
}

// Behaviours lists every Behaviour, for table-driven tests.
var Behaviours = []Behaviour{Normal, NoUpgrade, RefuseUpgrade, StallAfterGreeting, LongLine, EndlessReply, Garbage, StallAfterUpgrade}

// A peer returns the connection handler of one protocol: the handler speaks
// the protocol on c as b says and, for Normal, serves TLS with cfg.
type peer func(cfg *tls.Config, b Behaviour) func(c net.Conn)

// peers holds one entry per protocol, keyed by scanner's protocol name
// ("smtp", "ldap", ...); each protocol's file adds itself in init.
var peers = map[string]peer{}

// PeerProtocols lists the protocols NewPeer serves, sorted.
func PeerProtocols() []string {
	names := make([]string, 0, len(peers))
	for name := range peers {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// NewPeer starts a loopback server speaking proto (a scanner.Protocol name
// such as "smtp") with behaviour b, serving TLS with cfg once upgraded.
// Server.Chain is the chain cfg presents.
func NewPeer(addr, proto string, cfg *tls.Config, b Behaviour) (*Server, error) {
	p, ok := peers[proto]
	if !ok {
		return nil, fmt.Errorf("no %q peer; have %v", proto, PeerProtocols())
	}
	s, err := NewServer(addr, p(cfg, b))
	if err != nil {
		return nil, err
	}
	if len(cfg.Certificates) > 0 {
		s.Chain = slices.Clone(cfg.Certificates[0].Certificate)
	}
	return s, nil
}

// serveTLS runs the server side of a TLS handshake on c (already upgraded
// by a peer's protocol) and then waits for the client to hang up, as
// NewTLSServer does. A peer with StallAfterUpgrade calls Stall instead.
func serveTLS(c net.Conn, cfg *tls.Config) {
	tc := tls.Server(c, cfg)
	_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
	if tc.Handshake() == nil {
		_, _ = tc.Read(make([]byte, 1))
	}
}
