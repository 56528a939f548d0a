// Command certsweep-bench measures certsweep on this machine and prints one
// table: handshake throughput against a lab in a separate process (with a
// plain crypto/tls baseline over the same lab), dead-space probing, store
// ingest and report generation. Every scenario runs certsweep as a child
// process so that its CPU time and peak RSS are its own. All traffic stays
// on loopback.
//
//	certsweep-bench run -certsweep bin/certsweep     # the whole suite (make bench)
//	certsweep-bench lab -n 2000                      # a lab, until stdin closes
//	certsweep-bench baseline -range A-B -port P      # the crypto/tls baseline
//	certsweep-bench synth -db F -n N                 # a synthetic database
//	certsweep-bench silent -certsweep bin/certsweep  # the silent-network scenario alone
//
// The silent-network scenario (silent.go) runs in a network namespace of its
// own: silent-inner is the part inside it, silent-lab its listeners.
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: certsweep-bench run|lab|baseline|synth|merge|silent [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "run":
		err = runSuite(os.Args[2:])
	case "lab":
		err = serveLab(os.Args[2:])
	case "baseline":
		err = baseline(os.Args[2:])
	case "synth":
		err = synth(os.Args[2:])
	case "merge":
		err = mergeBench(os.Args[2:])
	case "silent":
		err = silent(os.Args[2:])
	case "silent-inner":
		err = silentInner(os.Args[2:])
	case "silent-lab":
		err = silentLab(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "certsweep-bench:", err)
		os.Exit(1)
	}
}
