package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/certsweep/certsweep/store"
)

// TestAlertsSent: each destination has its own sent-state; marking twice
// keeps one record; a new database has the table (migration 0008).
func TestAlertsSent(t *testing.T) {
	ctx := context.Background()
	db := openTemp(t)
	id, err := db.CreateSweep(ctx, store.Sweep{Name: "weekly", Targets: []string{"127.0.0.1"}, Ports: "443"})
	if err != nil {
		t.Fatal(err)
	}
	hook, mail := "webhook https://chat.test 0011223344556677", "mail pki@corp.test"
	a := []store.SentAlert{{Finding: `["expired","ab",1]`, Kind: "expired"}, {Finding: `["expiring","cd",2]`, Kind: "expiring"}}
	if err := db.MarkAlertsSent(ctx, hook, id, time.Now(), a); err != nil {
		t.Fatalf("MarkAlertsSent: %v", err)
	}
	if err := db.MarkAlertsSent(ctx, hook, id, time.Now(), a[:1]); err != nil {
		t.Fatalf("MarkAlertsSent again: %v", err)
	}
	sent, err := db.AlertsSent(ctx, hook)
	if err != nil || len(sent) != 2 || !sent[a[0].Finding] || !sent[a[1].Finding] {
		t.Errorf("AlertsSent(webhook) = %v, %v; want both findings", sent, err)
	}
	if sent, err := db.AlertsSent(ctx, mail); err != nil || len(sent) != 0 {
		t.Errorf("AlertsSent(mail) = %v, %v; want nothing: another destination", sent, err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := db.MarkAlertsSent(cancelled, mail, id, time.Now(), a); err == nil {
		t.Errorf("MarkAlertsSent with a cancelled context succeeded")
	}
	if sent, _ := db.AlertsSent(ctx, mail); len(sent) != 0 {
		t.Errorf("a failed MarkAlertsSent left %v", sent)
	}
}
