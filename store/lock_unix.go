//go:build unix

package store

import (
	"errors"
	"os"
	"syscall"
)

// sweepLock is an exclusive advisory lock held by the process running a
// sweep. The kernel drops it when that process dies, however it dies, which
// is how a "running" sweep left by a killed process is told apart from a
// live one.
type sweepLock struct{ f *os.File }

func lockSweep(path string) (*sweepLock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, err
	}
	return &sweepLock{f: f}, nil
}

func (l *sweepLock) release() {
	os.Remove(l.f.Name())
	l.f.Close()
}

// sweepAlive reports whether some process holds the lock at path.
func sweepAlive(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false // no lock file: nobody is running it
	}
	defer f.Close()
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB)
	if err == nil {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		return false
	}
	return errors.Is(err, syscall.EWOULDBLOCK)
}
