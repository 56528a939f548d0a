package scanner

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/zmap/zcrypto/tls"
)

// Status classifies the outcome of one probe.
type Status string

// The probe outcomes. Every probe ends in exactly one of them.
const (
	StatusOK        Status = "ok"              // handshake completed
	StatusRefused   Status = "refused"         // nothing listening (TCP RST to SYN)
	StatusTimeout   Status = "timeout"         // connect or handshake deadline passed
	StatusReset     Status = "reset"           // peer reset or closed mid-handshake
	StatusNotTLS    Status = "not-tls"         // peer answered with something other than TLS
	StatusHandshake Status = "handshake-error" // TLS alert or protocol failure
	StatusTooLarge  Status = "too-large"       // peer sent more than the byte cap
	// The peer speaks the endpoint's protocol (SMTP, LDAP, ...) but does
	// not offer TLS or refuses the upgrade.
	StatusNoStartTLS Status = "no-starttls"
	// No answer at all to the SYNs of SYN discovery (connect discovery
	// reports such a target as a connect timeout).
	StatusSilent Status = "silent"
)

// Statuses lists every Status in a stable order, for reports and statistics.
var Statuses = []Status{StatusOK, StatusRefused, StatusTimeout, StatusReset, StatusNotTLS, StatusHandshake, StatusTooLarge, StatusNoStartTLS, StatusSilent}

// Result is the outcome of one probe. Failures are results too: a probe
// never returns a Go error.
type Result struct {
	Target      Target // as probed: Target.SNI is the server name sent, if any
	Start, End  time.Time
	Status      Status
	Protocol    Protocol // how TLS was reached: ProtoTLS, or the protocol whose upgrade was spoken
	Connected   bool     // the TCP connection was established
	Err         string   // detail for a failed probe
	TLSVersion  uint16   // negotiated version (from the ServerHello when the handshake failed later)
	CipherSuite uint16
	Chain       []Cert // leaf first, as presented; may be present on a failed handshake
	// Posture is what the endpoint accepts when offered one version or
	// weak suites alone; nil when not measured (Prober.Posture unset, or
	// the handshake did not complete).
	Posture *Posture
	// Source is where Target.SNI came from, Offer what key family the
	// ClientHello was limited to (both zero for a probe of the sweep's own
	// targets; see Vhosts).
	Source NameSource
	Offer  KeyFamily
	// Expansion is what the Vhosts probes found at this address and port;
	// nil when they did not run.
	Expansion *Expansion
}

// errTooLarge is returned by the byte-capped connection when the peer sends
// more than the probe's budget.
var errTooLarge = errors.New("peer sent more than the per-connection byte cap")

// classify maps a dial or handshake error to a Status.
func classify(err error) Status {
	var alert tls.Alert
	var recHdr tls.RecordHeaderError
	switch {
	case err == nil:
		return StatusOK
	case errors.Is(err, errNoStartTLS):
		return StatusNoStartTLS
	case errors.Is(err, errTooLarge),
		// zcrypto refuses handshake messages over 64 KiB with an unexported,
		// untyped error; its wording is the only handle on it.
		strings.Contains(err.Error(), "exceeds maximum of"):
		return StatusTooLarge
	case errors.Is(err, syscall.ECONNREFUSED):
		return StatusRefused
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return StatusReset
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded), isTimeout(err):
		return StatusTimeout
	case errors.As(err, &recHdr), errors.As(err, new(*protocolError)):
		return StatusNotTLS
	case errors.As(err, &alert):
		return StatusHandshake
	}
	return StatusHandshake
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
