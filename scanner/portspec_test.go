package scanner_test

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/certsweep/certsweep/scanner"
)

func TestParsePortSpec(t *testing.T) {
	ports, protos, err := scanner.ParsePortSpec("443, 2525/smtp,10389/LDAP,15432/postgresql,9000-9002/imap,25")
	if err != nil {
		t.Fatal(err)
	}
	if want := []uint16{25, 443, 2525, 9000, 9001, 9002, 10389, 15432}; !slices.Equal(ports, want) {
		t.Errorf("ports = %v, want %v", ports, want)
	}
	want := map[uint16]scanner.Protocol{2525: scanner.ProtoSMTP, 10389: scanner.ProtoLDAP, 15432: scanner.ProtoPostgres,
		9000: scanner.ProtoIMAP, 9001: scanner.ProtoIMAP, 9002: scanner.ProtoIMAP}
	if !maps.Equal(protos, want) {
		t.Errorf("protocols = %v, want %v", protos, want)
	}
	// ParsePorts reads the same spec (stored sweeps keep it as typed).
	if p, err := scanner.ParsePorts("443,2525/smtp"); err != nil || !slices.Equal(p, []uint16{443, 2525}) {
		t.Errorf("ParsePorts = %v, %v", p, err)
	}
	for spec, wantErr := range map[string]string{
		"443/gopher":           `unknown protocol "gopher"; want one of tls, smtp`,
		"25/smtp,25/imap":      "port 25 is named as both smtp and imap",
		"2525/":                `unknown protocol ""`,
		"/smtp":                `port "" is not a number`,
		"70000/smtp":           "out of range",
		"9010-9000/ldap":       "runs backwards",
		"25/smtp,20-30/ftp":    "named as both",
		"443/tls,443/implicit": "",
	} {
		_, _, err := scanner.ParsePortSpec(spec)
		if wantErr == "" {
			if err != nil {
				t.Errorf("%q: %v", spec, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("%q: error %v, want it to contain %q", spec, err, wantErr)
		}
	}
}

// The default sweep covers every protocol's ports, and no port has two.
func TestDefaultPortsCoverProtocols(t *testing.T) {
	seen := map[uint16]scanner.Protocol{}
	for _, pi := range scanner.Protocols {
		for _, p := range pi.Ports {
			if prev, ok := seen[p]; ok {
				t.Errorf("port %d belongs to both %s and %s", p, prev, pi.Protocol)
			}
			seen[p] = pi.Protocol
			if !slices.Contains(scanner.DefaultPorts, p) {
				t.Errorf("%s's port %d is not in DefaultPorts", pi.Protocol, p)
			}
		}
		if got, err := scanner.ParseProtocol(strings.ToUpper(string(pi.Protocol))); err != nil || got != pi.Protocol {
			t.Errorf("ParseProtocol(%s) = %v, %v", pi.Protocol, got, err)
		}
		for _, a := range pi.Aliases {
			if got, _ := scanner.ParseProtocol(a); got != pi.Protocol {
				t.Errorf("alias %s = %v, want %s", a, got, pi.Protocol)
			}
		}
	}
	if !slices.IsSorted(scanner.DefaultPorts) {
		t.Error("DefaultPorts is not sorted")
	}
	if !maps.Equal(scanner.DefaultProtocols(), seen) {
		t.Errorf("DefaultProtocols = %v, want %v", scanner.DefaultProtocols(), seen)
	}
}
