package report

import (
	"cmp"
	"iter"

	"github.com/certsweep/certsweep/store"
)

// ChangeKind names a difference between two sweeps.
type ChangeKind string

// The kinds of change Diff reports.
const (
	ChangeAppeared    ChangeKind = "endpoint-appeared"    // answers now, did not before
	ChangeDisappeared ChangeKind = "endpoint-disappeared" // answered before, not now
	ChangeRotated     ChangeKind = "certificate-changed"  // same endpoint, another leaf
	ChangeNewCert     ChangeKind = "certificate-new"      // never seen in any earlier sweep
	ChangeGoneCert    ChangeKind = "certificate-gone"     // seen before, nowhere now
)

// Change is one difference. Endpoint changes carry Before and/or After;
// certificate changes carry Cert.
type Change struct {
	Kind          ChangeKind
	Before, After *store.EndpointState
	Cert          *store.Certificate
}

// DiffColumns is the column order of `certsweep diff`.
var DiffColumns = []string{"change", "ip", "port", "sni", "old_sha256", "old_not_after",
	"new_sha256", "new_not_after", "subject"}

// Row renders the change in DiffColumns order.
func (c Change) Row() []any {
	var ip, sni, oldFP, newFP, subject string
	var port any
	var oldExp, newExp any
	if c.Before != nil {
		ip, port, sni, oldFP, oldExp, subject = c.Before.IP, c.Before.Port, c.Before.SNI, c.Before.LeafSHA256, c.Before.NotAfter, c.Before.Subject
	}
	if c.After != nil {
		ip, port, sni, newFP, newExp, subject = c.After.IP, c.After.Port, c.After.SNI, c.After.LeafSHA256, c.After.NotAfter, c.After.Subject
	}
	if c.Cert != nil {
		subject = c.Cert.Subject
		if c.Kind == ChangeGoneCert {
			oldFP, oldExp = c.Cert.Fingerprint(), c.Cert.NotAfter
		} else {
			newFP, newExp = c.Cert.Fingerprint(), c.Cert.NotAfter
		}
	}
	return []any{string(c.Kind), ip, port, sni, oldFP, oldExp, newFP, newExp, subject}
}

func compareEndpoints(a, b store.EndpointState) int {
	return cmp.Or(cmp.Compare(a.IP, b.IP), cmp.Compare(a.Port, b.Port), cmp.Compare(a.SNI, b.SNI))
}

// DiffEndpoints merge-joins two endpoint streams, each ordered by (ip, port,
// sni) as store.EndpointStates yields them, and emits the endpoints that
// appeared, disappeared or changed leaf certificate. Memory is O(1): it holds
// one endpoint of each stream at a time.
func DiffEndpoints(prev, cur iter.Seq2[store.EndpointState, error], emit func(Change) error) error {
	nextPrev, stopPrev := iter.Pull2(prev)
	defer stopPrev()
	nextCur, stopCur := iter.Pull2(cur)
	defer stopCur()
	pull := func(next func() (store.EndpointState, error, bool)) (*store.EndpointState, error) {
		e, err, ok := next()
		if !ok {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		return &e, nil
	}
	p, err := pull(nextPrev)
	if err != nil {
		return err
	}
	c, err := pull(nextCur)
	if err != nil {
		return err
	}
	for p != nil || c != nil {
		var ch *Change
		advP, advC := false, false
		switch {
		case c == nil || (p != nil && compareEndpoints(*p, *c) < 0):
			ch, advP = &Change{Kind: ChangeDisappeared, Before: p}, true
		case p == nil || compareEndpoints(*p, *c) > 0:
			ch, advC = &Change{Kind: ChangeAppeared, After: c}, true
		default:
			if p.LeafSHA256 != c.LeafSHA256 {
				ch = &Change{Kind: ChangeRotated, Before: p, After: c}
			}
			advP, advC = true, true
		}
		if ch != nil {
			if err := emit(*ch); err != nil {
				return err
			}
		}
		if advP {
			if p, err = pull(nextPrev); err != nil {
				return err
			}
		}
		if advC {
			if c, err = pull(nextCur); err != nil {
				return err
			}
		}
	}
	return nil
}
