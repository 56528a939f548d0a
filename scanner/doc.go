// Package scanner sweeps address ranges and ports with TLS handshakes and
// reports what every endpoint presented.
//
// A sweep flows one way: ParseInput and ParsePorts read what the user typed;
// NewPlan resolves it into a Plan, which holds merged address ranges and is
// never materialised (a /8 × 10 ports costs the same memory as a /24);
// Plan.Targets iterates it in a keyed pseudo-random order; Sweep probes the
// targets at a bounded rate and concurrency, at most PerHost at a time per
// address; each Prober.Probe ends in a Result, whose Status classifies every
// outcome (failures are results, not errors); Results go to a Sink.
//
// A port's Protocol decides what a probe says before its ClientHello:
// nothing (implicit TLS), or the protocol's own upgrade (SMTP STARTTLS, the
// LDAP StartTLS operation, PostgreSQL's SSLRequest, ...), each in its own
// file and spoken over a session whose every read is bounded (starttls.go).
// With Prober.Posture, a completed handshake is followed by at most
// MaxPostureHandshakes more, through the same upgrade, to find which
// versions and weak suites the endpoint accepts (posture.go).
//
// Guarantees: every probe's cost is bounded (connect timeout, an absolute
// handshake deadline, a cap on bytes read and on certificates kept); the
// certificates a server sent are kept even when the handshake then fails;
// nothing here reads global state, the clock is only read for timestamps,
// and every goroutine ends before Sweep returns.
package scanner
