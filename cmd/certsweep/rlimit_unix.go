//go:build unix

package main

import "syscall"

// openFileLimit is the soft RLIMIT_NOFILE. The Go runtime has already raised
// it to the hard limit at start-up (Go 1.19+), so this is what a sweep gets.
func openFileLimit() (uint64, bool) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, false
	}
	return uint64(rl.Cur), true
}
