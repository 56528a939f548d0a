package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Exit statuses, documented in the README and `certsweep --help`.
const (
	exitOK          = 0
	exitFailure     = 1   // runtime failure: network, disk, database
	exitUsage       = 2   // bad flags, targets, ports or --db; nothing was written
	exitInterrupted = 130 // SIGINT/SIGTERM; what was observed is committed
)

// cliError is an error worded for the user, with the exit status it maps to
// and an optional hint line. House style: lowercase, no trailing period,
// the bad token quoted, and a hint when there is an obvious fix.
type cliError struct {
	code int
	err  error
	hint string
}

func (e *cliError) Error() string { return e.err.Error() }
func (e *cliError) Unwrap() error { return e.err }

func usageError(err error, hint string) error {
	return &cliError{code: exitUsage, err: err, hint: hint}
}

func usagef(format string, args ...any) error {
	return &cliError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

func failure(err error, hint string) error {
	return &cliError{code: exitFailure, err: err, hint: hint}
}

// exitStatus prints err (if any) in the house style and returns the status
// main exits with. It is the only place that decides exit codes.
func exitStatus(stderr io.Writer, err error) int {
	if err == nil {
		return exitOK
	}
	code, hint := exitFailure, ""
	var ce *cliError
	if errors.As(err, &ce) {
		code, hint = ce.code, ce.hint
	}
	if code == exitFailure && errors.Is(err, context.Canceled) {
		code = exitInterrupted
	}
	msg := strings.TrimSuffix(err.Error(), ".")
	fmt.Fprintf(stderr, "certsweep: %s\n", msg)
	if hint != "" {
		fmt.Fprintf(stderr, "hint: %s\n", hint)
	}
	return code
}
