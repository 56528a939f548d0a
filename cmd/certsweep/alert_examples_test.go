//go:build unix

package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"

	"github.com/certsweep/certsweep/scanner/scannertest"
)

// The alert examples of README.md and of alert --help run in
// TestDocExamples for real: these rows map the documentation's webhook
// URL and mail server to receivers on loopback, started once for each
// fixture world (for its lab CA), so an example that sends has somewhere
// to send to and nothing leaves the machine.
func init() {
	docSubstitutions = append(docSubstitutions,
		docSubst{"https://chat.corp.example/hooks/certsweep", func(e *exEnv) string { return exAlertTargets(e).hook },
			"an incoming webhook on 127.0.0.1 that accepts every message"},
		docSubst{"mail.corp.example:587", func(e *exEnv) string { return exAlertTargets(e).smtp },
			"an SMTP server on 127.0.0.1 offering STARTTLS (with a certificate of the lab CA, which corp-roots.pem holds) and AUTH"},
		docSubst{"/etc/certsweep/smtp-auth", exAuthFile,
			"<example dir>/smtp-auth, holding the USER:PASSWORD that SMTP server takes"},
	)
	exKeptNames = append(exKeptNames, "certsweep@corp.example") // a sender address, never resolved
}

const exSMTPUser, exSMTPPass = "certsweep", "example-password"

type exAlertReceivers struct{ hook, smtp string }

var exAlert = struct {
	mu sync.Mutex
	by map[*exWorld]exAlertReceivers
}{by: map[*exWorld]exAlertReceivers{}}

// exAlertTargets returns the receivers of e's world, started on first use.
// They run until the test binary exits.
func exAlertTargets(e *exEnv) exAlertReceivers {
	if e.w.lab == nil { // TestDocExampleParsing's stand-in world
		return exAlertReceivers{hook: "http://127.0.0.1:1/hooks/x", smtp: "127.0.0.1:1"}
	}
	exAlert.mu.Lock()
	defer exAlert.mu.Unlock()
	if r, ok := exAlert.by[e.w]; ok {
		return r
	}
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") }))
	r := exAlertReceivers{hook: hook.URL + "/hooks/certsweep", smtp: "127.0.0.1:1"}
	cert, err := e.w.lab.CA.Leaf(scannertest.CertOptions{CommonName: "127.0.0.1", IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if err == nil {
		var sink *smtpSink
		sink, err = startSMTPSink(sinkOptions{TLS: scannertest.TLSConfig(cert, 0, 0), User: exSMTPUser, Pass: exSMTPPass, OptionalAuth: true})
		if err == nil {
			r.smtp = sink.Addr
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "alert examples: no SMTP server (%v): they fail\n", err)
	}
	exAlert.by[e.w] = r
	return r
}

// exAuthFile writes the SMTP server's credentials into the example's
// directory and returns the file's path.
func exAuthFile(e *exEnv) string {
	p := filepath.Join(e.dir, "smtp-auth")
	if _, err := os.Stat(e.dir); err == nil {
		_ = os.WriteFile(p, []byte(exSMTPUser+":"+exSMTPPass+"\n"), 0o600)
	}
	return p
}
