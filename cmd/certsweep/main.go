// Command certsweep finds the TLS certificates on a network: it sweeps
// address ranges and ports with TLS handshakes and keeps every certificate
// it sees in a SQLite inventory. Run `certsweep --help` for the commands.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newApp(os.Stdout, os.Stderr).RunContext(ctx, os.Args)
	stop()
	os.Exit(exitStatus(os.Stderr, err))
}
