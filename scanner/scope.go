package scanner

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
)

// Scope is the set of endpoints a sweep probed, rebuilt from its target
// tokens, exclude tokens, port list and forced SNI as stored with the sweep.
// It answers Contains without iterating anything: address inputs are held as
// merged ranges (a /8 is one range), so a lookup costs a binary search over
// the inputs, never a walk over addresses. Hostname targets are matched by
// the SNI the observation recorded, since a hostname target is probed with
// its name as SNI; their addresses are whatever DNS said at the time.
// A Scope is immutable and safe for concurrent use.
type Scope struct {
	ranges   []addrRange // range and address inputs without a port, minus excludes
	fixed    []netip.AddrPort
	hosts    map[string]hostPorts // hostname targets
	excludes []addrRange          // apply to hostname targets' addresses
	ports    []uint16             // the sweep's port list
	sni      string               // --sni: sent to every target instead of its own name
}

// hostPorts is the ports a hostname target was probed on: every port of
// the list, and/or the ports given as host:port.
type hostPorts struct {
	all   bool
	ports []uint16
}

// NewScope rebuilds a sweep's scope from what the sweep stored: its target
// and exclude tokens (as ParseInput reads them), its port list (as
// ParsePorts reads it) and the SNI forced with --sni ("" when none).
func NewScope(targets, excludes []string, ports, forcedSNI string) (*Scope, error) {
	s := &Scope{hosts: map[string]hostPorts{}, sni: forcedSNI}
	var err error
	if s.ports, err = ParsePorts(ports); err != nil {
		return nil, fmt.Errorf("ports %q: %w", ports, err)
	}
	for _, tok := range excludes {
		in, err := ParseInput(tok, true)
		if err != nil {
			return nil, fmt.Errorf("exclude: %w", err)
		}
		if in.Host != "" || in.Port != 0 {
			return nil, fmt.Errorf("exclude %q: not an address, CIDR or range", tok)
		}
		s.excludes = append(s.excludes, addrRange{addrToU128(in.Lo), addrToU128(in.Hi)})
	}
	s.excludes = mergeRanges(s.excludes)
	var rs []addrRange
	for _, tok := range targets {
		in, err := ParseInput(tok, true)
		if err != nil {
			return nil, fmt.Errorf("target: %w", err)
		}
		switch {
		case in.Host != "":
			hp := s.hosts[in.Host]
			if in.Port == 0 {
				hp.all = true
			} else {
				hp.ports = append(hp.ports, in.Port)
			}
			s.hosts[in.Host] = hp
		case in.Port != 0:
			if !contains(s.excludes, addrToU128(in.Lo)) {
				s.fixed = append(s.fixed, netip.AddrPortFrom(in.Lo, in.Port))
			}
		default:
			rs = append(rs, addrRange{addrToU128(in.Lo), addrToU128(in.Hi)})
		}
	}
	s.ranges = subtractRanges(mergeRanges(rs), s.excludes)
	s.normalize()
	return s, nil
}

// normalize puts the scope in a canonical form, so that Equal compares
// what was probed rather than how it was written.
func (s *Scope) normalize() {
	// A host:port target already covered by the ranges adds nothing.
	s.fixed = slices.DeleteFunc(s.fixed, func(ap netip.AddrPort) bool {
		return s.inRanges(ap.Addr(), ap.Port())
	})
	slices.SortFunc(s.fixed, netip.AddrPort.Compare)
	s.fixed = slices.Compact(s.fixed)
	usesList := len(s.ranges) > 0
	for h, hp := range s.hosts {
		if hp.all {
			hp.ports = nil
			usesList = true
		} else {
			slices.Sort(hp.ports)
			hp.ports = slices.Compact(hp.ports)
		}
		s.hosts[h] = hp
	}
	if !usesList {
		s.ports = nil // the list was never used: no input probed "every port"
	}
	if len(s.hosts) == 0 {
		s.excludes = nil // already subtracted from the ranges and fixed targets
	}
}

func (s *Scope) inRanges(a netip.Addr, port uint16) bool {
	_, ok := slices.BinarySearch(s.ports, port)
	return ok && contains(s.ranges, addrToU128(a))
}

// Contains reports whether the sweep probed port on addr with server name
// sni ("" for none). Its cost grows with the number of target tokens, never
// with the number of addresses they cover.
func (s *Scope) Contains(addr netip.Addr, port uint16, sni string) bool {
	a := addr.Unmap().WithZone("")
	if s.sni != "" {
		// Every probe sent the forced name: an observation without it (or
		// with another name) was not made by this sweep. Hostname targets
		// are then known by address only, and their addresses are not kept:
		// any address not excluded may have been one of them.
		if sni != s.sni {
			return false
		}
		if s.inRanges(a, port) || s.inFixed(a, port) {
			return true
		}
		for _, hp := range s.hosts {
			if hp.covers(s.ports, port) && !contains(s.excludes, addrToU128(a)) {
				return true
			}
		}
		return false
	}
	if sni == "" {
		return s.inRanges(a, port) || s.inFixed(a, port)
	}
	hp, ok := s.hosts[sni]
	return ok && hp.covers(s.ports, port) && !contains(s.excludes, addrToU128(a))
}

func (s *Scope) inFixed(a netip.Addr, port uint16) bool {
	_, ok := slices.BinarySearchFunc(s.fixed, netip.AddrPortFrom(a, port), netip.AddrPort.Compare)
	return ok
}

func (hp hostPorts) covers(list []uint16, port uint16) bool {
	if hp.all {
		if _, ok := slices.BinarySearch(list, port); ok {
			return true
		}
	}
	_, ok := slices.BinarySearch(hp.ports, port)
	return ok
}

// Equal reports whether two scopes cover the same endpoints: the same
// addresses, ports, hostnames and forced SNI, however the tokens spelled
// them (10.0.0.0/24 and 10.0.0.0-10.0.0.255 are the same scope).
func (s *Scope) Equal(o *Scope) bool {
	return s.sni == o.sni && slices.Equal(s.ranges, o.ranges) && slices.Equal(s.fixed, o.fixed) &&
		slices.Equal(s.excludes, o.excludes) && slices.Equal(s.ports, o.ports) &&
		maps.EqualFunc(s.hosts, o.hosts, func(a, b hostPorts) bool {
			return a.all == b.all && slices.Equal(a.ports, b.ports)
		})
}
