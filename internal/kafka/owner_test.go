package kafka

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"
)

// TestConfigReaderOwnership: the first stamped record names the topic's
// owner (records without the header, an earlier release's, are applied
// as its history); a record of another owner is not applied and named
// Other, once; a take-over record makes its owner the topic's, after
// which the first owner's records are the ones not applied. Tombstones
// are stamped too, and every key read is kept (for a take-over).
func TestConfigReaderOwnership(t *testing.T) {
	cfg := configCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rec := func(id string, rev int) IntegrationRecord {
		return IntegrationRecord{ID: id, Vendor: "button", Version: "0.1.0", Variant: "default", Revision: rev, Enabled: true, Config: json.RawMessage(`{}`)}
	}
	pubs := map[string]*ConfigPublisher{}
	for _, o := range []string{"", "own_a", "own_b"} {
		p, err := NewConfigPublisher(cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		p.Owner = o
		pubs[o] = p
	}
	rd, err := NewConfigReader(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	var told []Ownership
	rd.OnOtherOwner = func(o Ownership) { told = append(told, o) }
	step := func(owner string, takeOver bool, recs []IntegrationRecord, deleted []string) map[string]ConfigEntry {
		t.Helper()
		if _, err := pubs[owner].PublishAs(ctx, recs, deleted, takeOver); err != nil {
			t.Fatal(err)
		}
		es, _, err := rd.CatchUp(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return es
	}

	// An earlier release's records: no owner yet, applied.
	if es := step("", false, []IntegrationRecord{rec("int_old", 1)}, nil); len(es) != 1 || rd.Ownership().Owner != "" {
		t.Fatalf("unstamped: %v %+v", es, rd.Ownership())
	}
	// own_a's first record: the topic's owner from then on.
	es := step("own_a", false, []IntegrationRecord{rec("int_a", 1)}, nil)
	if o := rd.Ownership(); o.Owner != "own_a" || o.SinceOffset != 1 || o.Other != "" || len(es) != 2 {
		t.Fatalf("own_a: %+v %v", o, es)
	}
	// own_b publishes without taking over: not applied, named once.
	es = step("own_b", false, []IntegrationRecord{rec("int_b", 1)}, []string{"int_a"})
	if o := rd.Ownership(); o.Owner != "own_a" || o.Other != "own_b" || o.OtherOffset != 2 || len(es) != 2 || es["int_a"].Err != nil {
		t.Fatalf("own_b intruding: %+v %v", o, es)
	}
	// own_a goes on (applied); an unstamped record too (its history).
	es = step("own_a", false, []IntegrationRecord{rec("int_a", 2)}, nil)
	if es["int_a"].Record.Revision != 2 || len(told) != 1 || told[0].Other != "own_b" {
		t.Fatalf("own_a after the intruder: %v, told %+v", es, told)
	}
	// own_b takes over: its records are applied, own_a's tombstoned.
	es = step("own_b", true, []IntegrationRecord{rec("int_b", 1)}, []string{"int_a", "int_old"})
	if o := rd.Ownership(); o.Owner != "own_b" || o.Other != "" || len(es) != 1 || es["int_b"].Err != nil {
		t.Fatalf("own_b taking over: %+v %v", o, es)
	}
	// own_a, still running, publishes: not applied any more.
	es = step("own_a", false, []IntegrationRecord{rec("int_a", 3)}, nil)
	if o := rd.Ownership(); o.Owner != "own_b" || o.Other != "own_a" || len(es) != 1 {
		t.Fatalf("own_a after the take-over: %+v %v", o, es)
	}
	if got := rd.Keys(); !slices.Equal(got, []string{"int_a", "int_b", "int_old"}) {
		t.Errorf("keys %v", got)
	}
	// A reader started now reads the same.
	rd2, err := NewConfigReader(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer rd2.Close()
	es2, _, err := rd2.CatchUp(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if o := rd2.Ownership(); o != rd.Ownership() || len(es2) != 1 {
		t.Errorf("a new reader: %+v %v, want %+v", o, es2, rd.Ownership())
	}
}
