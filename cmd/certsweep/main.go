// Command certsweep finds the TLS certificates on a network: it sweeps
// address ranges and ports with TLS handshakes and keeps every certificate
// it sees in a SQLite inventory. Run `certsweep --help` for the commands.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/zmap/zcrypto/encoding/asn1"
)

func main() {
	// Inventory, not validation: accept the non-minimal integers and odd
	// time encodings that real appliances' certificates carry. zcrypto only
	// offers this as a package variable; it is set here, once, before any
	// goroutine starts, never in a library.
	asn1.AllowPermissiveParsing = true
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	app := newApp(os.Stdout, os.Stderr)
	err := app.RunContext(ctx, normalizeArgs(app, os.Args))
	stop()
	os.Exit(exitStatus(os.Stderr, err))
}
