//go:build !linux

package scanner

import (
	"errors"
	"fmt"
	"net/netip"
)

// SYNSocket sends SYNs from raw sockets; on this system it cannot be opened.
type SYNSocket struct{}

var errSYNNeedsLinux = fmt.Errorf("%w: SYN discovery needs Linux; use connect discovery", ErrNoRawSockets)

// NewSYNSocket fails: SYN discovery is implemented for Linux only.
func NewSYNSocket(SYNConfig) (*SYNSocket, error) { return nil, errSYNNeedsLinux }

func (s *SYNSocket) Send(netip.AddrPort) error         { return errSYNNeedsLinux }
func (s *SYNSocket) Replies() <-chan SYNReply          { return nil }
func (s *SYNSocket) Stats() SYNStats                   { return SYNStats{} }
func (s *SYNSocket) SourcePorts() (first, last uint16) { return 0, 0 }
func (s *SYNSocket) IPv6Err() error                    { return errors.New("SYN discovery needs Linux") }
func (s *SYNSocket) Close() error                      { return nil }
