package scanner

import "math/bits"

// permutation is a keyed pseudo-random bijection on [0, n), computed on the
// fly so that a sweep of 16M addresses × 10 ports needs no table: a balanced
// Feistel network over the smallest even bit width covering n, with cycle
// walking to stay inside the domain (at most 4 rounds of walking on average).
type permutation struct {
	n        uint64
	halfBits uint
	mask     uint64
	keys     [4]uint64
}

func newPermutation(n, seed uint64) permutation {
	w := uint(bits.Len64(n - 1))
	if n <= 1 {
		w = 0
	}
	half := (w + 1) / 2
	p := permutation{n: n, halfBits: half, mask: 1<<half - 1}
	s := seed
	for i := range p.keys {
		s = splitmix64(s + uint64(i) + 1)
		p.keys[i] = s
	}
	return p
}

// at returns the i-th element of the permuted sequence (i < n).
func (p permutation) at(i uint64) uint64 {
	if p.n <= 1 {
		return i
	}
	x := p.encrypt(i)
	for x >= p.n {
		x = p.encrypt(x)
	}
	return x
}

func (p permutation) encrypt(x uint64) uint64 {
	l, r := x>>p.halfBits, x&p.mask
	for _, k := range p.keys {
		l, r = r, l^(splitmix64(r^k)&p.mask)
	}
	return l<<p.halfBits | r
}

// splitmix64 is a fast, well-mixing 64-bit hash (Steele et al.), used as the
// Feistel round function; the order only needs to look random, not be secret.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}
