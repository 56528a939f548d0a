package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/certsweep/certsweep/store"
)

// TestPruneKeepsNewest: however old, the newest sweep stays, so the next
// sweep never gets an ID that alerts or merge records already name.
func TestPruneKeepsNewest(t *testing.T) {
	ctx := context.Background()
	db := openTemp(t)
	old := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	var ids []int64
	for i := range 3 {
		at := old.Add(time.Duration(i) * 24 * time.Hour)
		id, err := db.CreateSweep(ctx, store.Sweep{Name: "weekly", StartedAt: at})
		if err != nil {
			t.Fatal(err)
		}
		if err := db.FinishSweep(ctx, id, store.StateComplete, at.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	res, err := db.Prune(ctx, store.PruneOptions{OlderThan: 24 * time.Hour, Now: time.Now()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var pruned []int64
	for _, s := range res.Sweeps {
		pruned = append(pruned, s.ID)
	}
	if len(pruned) != 2 || pruned[0] != ids[0] || pruned[1] != ids[1] {
		t.Fatalf("pruned %v, want %v (all but the newest)", pruned, ids[:2])
	}
	next, err := db.CreateSweep(ctx, store.Sweep{Name: "weekly"})
	if err != nil {
		t.Fatal(err)
	}
	if next <= ids[2] {
		t.Errorf("the next sweep got ID %d, at or below the newest kept (%d)", next, ids[2])
	}
}
