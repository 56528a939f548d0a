package main

import (
	"fmt"
	"os"

	"github.com/certsweep/certsweep/scanner"
	"github.com/certsweep/certsweep/store"
	"github.com/urfave/cli/v2"
)

// shardFrom reads --shard: I/N, or auto/N with the index from
// JOB_COMPLETION_INDEX (a Kubernetes Indexed Job sets it in every pod).
// Shards of one sweep must share its seed, or their orders differ and
// their union is not the sweep: like zmap, a sharded sweep needs --seed.
func shardFrom(c *cli.Context) (scanner.Shard, error) {
	if !c.IsSet("shard") {
		return scanner.Shard{}, nil
	}
	spec := c.String("shard")
	s, err := scanner.ParseShard(spec, os.LookupEnv)
	if err != nil {
		return s, usageError(fmt.Errorf("--shard %q: %w", spec, err), "e.g. --shard 0/4 for the first of 4 shards, or --shard auto/4 in a Kubernetes Indexed Job of 4 completions")
	}
	if !s.Whole() && !c.IsSet("seed") {
		return s, usageError(fmt.Errorf("--shard %s needs --seed: every shard of a sweep must walk the same order", s),
			"give all shards the same --seed, any number, e.g. --seed 1")
	}
	return s, nil
}

// storedShard is the shard an interrupted sweep was recorded with (in its
// options; none before --shard existed: the whole sweep).
func storedShard(sw store.Sweep) (scanner.Shard, error) {
	text, _ := sw.Options["shard"].(string)
	if text == "" {
		return scanner.Shard{}, nil
	}
	s, err := scanner.ParseShard(text, func(string) (string, bool) { return "", false })
	if err != nil {
		return s, fmt.Errorf("sweep %d: stored shard: %w", sw.ID, err)
	}
	return s, nil
}

// shardText describes a sweep's share of its plan for the start line:
// "" for a whole sweep.
func shardText(s scanner.Shard, probes uint64) string {
	if s.Whole() {
		return ""
	}
	return fmt.Sprintf(", shard %s: %d of them", s, probes)
}

// shardColumn is a shard as the sweeps table's shard column holds it: ""
// for a whole sweep.
func shardColumn(s scanner.Shard) string {
	if s.Whole() {
		return ""
	}
	return s.String()
}
