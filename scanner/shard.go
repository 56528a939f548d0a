package scanner

import (
	"errors"
	"fmt"
	"iter"
	"strconv"
	"strings"
)

// Shard is part Index (0 to Count-1) of Count disjoint parts of a plan's
// probes, for splitting one sweep over several processes or hosts, like
// zmap's --shards/--shard. The zero value is the whole plan.
//
// Shard I holds the probes at the global positions g (the sweep order of
// Plan.Targets) with g mod Count == I. Striding through the permuted order,
// rather than cutting it into blocks, keeps each shard spread over every
// host and subnet of the plan, and together the Count shards probe exactly
// the unsharded sweep, each probe once, provided they share the seed.
//
// Within a shard, probes are numbered 0, 1, 2, ... (the shard position, pos;
// its global position is Global(pos)), so a shard's progress is contiguous
// like any sweep's and resuming one works the same way.
type Shard struct {
	Index, Count uint64
}

// MaxShards bounds Count: Kubernetes allows an Indexed Job at most 100,000
// completions, and more shards than that is a typo.
const MaxShards = 100_000

// JobCompletionIndexEnv is the variable Kubernetes sets to a pod's index in
// an Indexed Job; ParseShard reads it for an index given as "auto".
const JobCompletionIndexEnv = "JOB_COMPLETION_INDEX"

// ParseShard reads "I/N" (shard I of N, I from 0 to N-1) or "auto/N", where
// the index is the value of JOB_COMPLETION_INDEX, looked up with lookupEnv
// (os.LookupEnv in a program), so a Kubernetes Indexed Job needs no wrapper.
func ParseShard(spec string, lookupEnv func(string) (string, bool)) (Shard, error) {
	idx, cnt, ok := strings.Cut(strings.TrimSpace(spec), "/")
	if !ok {
		return Shard{}, errors.New("want INDEX/COUNT, e.g. 0/4 (the first of 4 shards) or auto/4")
	}
	n, err := strconv.ParseUint(cnt, 10, 64)
	if err != nil || n < 1 || n > MaxShards {
		return Shard{}, fmt.Errorf("the shard count %q must be a number from 1 to %d", cnt, MaxShards)
	}
	from := ""
	if idx == "auto" {
		v, set := lookupEnv(JobCompletionIndexEnv)
		if !set {
			return Shard{}, fmt.Errorf("the index is auto but %s is not set (Kubernetes sets it in an Indexed Job's pods); give the index, e.g. 0/%d", JobCompletionIndexEnv, n)
		}
		idx, from = v, " ("+JobCompletionIndexEnv+")"
	}
	i, err := strconv.ParseUint(strings.TrimSpace(idx), 10, 64)
	if err != nil || i >= n {
		return Shard{}, fmt.Errorf("the shard index %q%s must be a number from 0 to %d", idx, from, n-1)
	}
	return Shard{Index: i, Count: n}, nil
}

// String is the shard as ParseShard reads it, "I/N" ("0/1" for the whole plan).
func (s Shard) String() string { return fmt.Sprintf("%d/%d", s.Index, s.parts()) }

// Whole reports whether s is the whole plan (the zero value, or 0/1).
func (s Shard) Whole() bool { return s.parts() == 1 }

// Global is the position in the unsharded sweep order of the shard's probe pos.
func (s Shard) Global(pos uint64) uint64 { return s.Index + pos*s.parts() }

func (s Shard) parts() uint64 { return max(s.Count, 1) }

func (s Shard) check() error {
	if s.Index >= s.parts() || s.Count > MaxShards {
		return fmt.Errorf("invalid shard %d/%d: want an index from 0 to count-1 and a count from 1 to %d", s.Index, s.Count, MaxShards)
	}
	return nil
}

// ShardLen is the number of probes in shard s of the plan.
func (p *Plan) ShardLen(s Shard) uint64 {
	n := p.Len()
	if s.Index >= n {
		return 0
	}
	return (n - s.Index + s.parts() - 1) / s.parts()
}

// ShardTargets yields the probes of shard s in sweep order, with their
// shard positions (0, 1, ...): the plan's probes at global positions
// s.Index, s.Index+s.Count, ... of Targets(seed). It jumps straight to them,
// so a shard costs its own probes, not a walk of the whole plan.
func (p *Plan) ShardTargets(seed uint64, s Shard) iter.Seq2[uint64, Target] {
	return func(yield func(uint64, Target) bool) {
		step, nf := s.parts(), uint64(len(p.fixed))
		g, pos := s.Index, uint64(0)
		for ; g < nf; g += step {
			if !yield(pos, p.fixed[g]) {
				return
			}
			pos++
		}
		np := uint64(len(p.ports))
		n := p.addrs * np
		perm := newPermutation(n, seed)
		for ; g-nf < n; g += step { // g >= nf here
			x := perm.at(g - nf)
			if !yield(pos, p.target(x/np, p.ports[x%np])) {
				return
			}
			pos++
		}
	}
}
