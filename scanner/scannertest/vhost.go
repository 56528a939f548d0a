package scannertest

import (
	"crypto/tls"
	"strings"
)

// VhostConfig is a server that picks its certificate by the name the
// client sends (SNI), like a reverse proxy or load balancer: byName's
// certificate for a known name, def for any other name or none.
func VhostConfig(def tls.Certificate, byName map[string]tls.Certificate) *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{def},
		GetCertificate: func(hi *tls.ClientHelloInfo) (*tls.Certificate, error) {
			if c, ok := byName[strings.ToLower(hi.ServerName)]; ok {
				return &c, nil
			}
			return &def, nil
		},
	}
}
