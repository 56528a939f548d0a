package scanner

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"net/netip"
	"slices"
	"strings"
)

// Target is one endpoint to probe.
type Target struct {
	Addr netip.AddrPort
	SNI  string // server name sent in the ClientHello; "" sends none
}

func (t Target) String() string {
	if t.SNI != "" {
		return t.Addr.String() + " (" + t.SNI + ")"
	}
	return t.Addr.String()
}

// Resolver looks up hostnames; *net.Resolver satisfies it.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// maxProbes bounds a plan so that every index fits comfortably in a uint64
// and a typo such as a /0 fails fast instead of sweeping for centuries.
const maxProbes = 1 << 48

// Plan is the resolved, de-duplicated set of endpoints a sweep probes: named
// targets (hostnames and host:port inputs) and the product of the address
// space with the port list. The address space is held as disjoint ranges, so
// a Plan's size does not grow with the number of addresses it covers.
// A Plan is immutable and safe for concurrent use.
type Plan struct {
	ranges  []addrRange
	offsets []uint64 // offsets[i]: addresses in ranges[:i]
	addrs   uint64
	ports   []uint16
	fixed   []Target
}

// NewPlan resolves inputs into a Plan. Hostnames are looked up with r (the
// name is kept as the SNI); a name that does not resolve is reported in the
// returned warnings and skipped. Excludes must be addresses, CIDRs or ranges.
// Overlapping inputs are probed once.
func NewPlan(ctx context.Context, inputs, excludes []Input, ports []uint16, r Resolver) (*Plan, []error, error) {
	if len(ports) == 0 {
		return nil, nil, errors.New("no ports to probe")
	}
	var ex []addrRange
	for _, e := range excludes {
		if e.Host != "" || e.Port != 0 {
			return nil, nil, fmt.Errorf("exclude %q: give an address, CIDR or range (hostnames and ports cannot be excluded)", e.Raw)
		}
		ex = append(ex, addrRange{addrToU128(e.Lo), addrToU128(e.Hi)})
	}
	ex = mergeRanges(ex)

	p := &Plan{ports: slices.Clone(ports)}
	var rs []addrRange
	var warnings []error
	seen := make(map[Target]bool)
	addFixed := func(a netip.Addr, port uint16, sni string) {
		for _, pt := range p.portsFor(port) {
			t := Target{netip.AddrPortFrom(a, pt), sni}
			if !seen[t] && !contains(ex, addrToU128(a)) {
				seen[t] = true
				p.fixed = append(p.fixed, t)
			}
		}
	}
	for _, in := range inputs {
		switch {
		case in.Host != "":
			addrs, err := r.LookupNetIP(ctx, "ip", in.Host)
			if err != nil {
				if ctx.Err() != nil {
					return nil, nil, ctx.Err()
				}
				warnings = append(warnings, fmt.Errorf("skipping %q: %w", in.Raw, err))
				continue
			}
			for _, a := range addrs {
				addFixed(a.Unmap(), in.Port, in.Host)
			}
		case in.Port != 0:
			addFixed(in.Lo, in.Port, "")
		default:
			rs = append(rs, addrRange{addrToU128(in.Lo), addrToU128(in.Hi)})
		}
	}
	p.ranges = subtractRanges(mergeRanges(rs), ex)
	p.offsets = make([]uint64, len(p.ranges))
	for i, r := range p.ranges {
		p.offsets[i] = p.addrs
		sz := r.size()
		if sz.hi != 0 || sz.lo > maxProbes || p.addrs+sz.lo > maxProbes {
			return nil, nil, fmt.Errorf("the targets cover more than 2^48 addresses; narrow the ranges")
		}
		p.addrs += sz.lo
	}
	if p.addrs > maxProbes/uint64(len(p.ports)) {
		return nil, nil, fmt.Errorf("the targets times the ports exceed 2^48 probes; narrow the ranges or ports")
	}
	// A named target that the ranges already cover, without SNI, is a duplicate.
	p.fixed = slices.DeleteFunc(p.fixed, func(t Target) bool {
		_, found := slices.BinarySearch(p.ports, t.Addr.Port())
		return t.SNI == "" && found && contains(p.ranges, addrToU128(t.Addr.Addr()))
	})
	return p, warnings, nil
}

func (p *Plan) portsFor(port uint16) []uint16 {
	if port != 0 {
		return []uint16{port}
	}
	return p.ports
}

// Len is the number of probes in the plan.
func (p *Plan) Len() uint64 { return uint64(len(p.fixed)) + p.addrs*uint64(len(p.ports)) }

// Addresses is the number of distinct addresses in the plan's ranges (named
// targets not included).
func (p *Plan) Addresses() uint64 { return p.addrs }

// Targets yields every probe of the plan once, with its position in the sweep
// order: named targets first, then the address × port space in a
// pseudo-random order determined by seed, which spreads consecutive probes
// over the whole space so that no host or subnet gets a burst.
func (p *Plan) Targets(seed uint64) iter.Seq2[uint64, Target] {
	return p.ShardTargets(seed, Shard{})
}

func (p *Plan) target(addrIndex uint64, port uint16) Target {
	i, found := slices.BinarySearch(p.offsets, addrIndex)
	if !found {
		i--
	}
	a := p.ranges[i].lo.add64(addrIndex - p.offsets[i]).addr()
	return Target{Addr: netip.AddrPortFrom(a, port)}
}

// Describe is a short human summary, e.g. "2 ranges, 4096 addresses × 3 ports + 2 named targets".
func (p *Plan) Describe() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d addresses × %d ports", p.addrs, len(p.ports))
	if len(p.fixed) > 0 {
		fmt.Fprintf(&b, " + %d named endpoints", len(p.fixed))
	}
	return b.String()
}
