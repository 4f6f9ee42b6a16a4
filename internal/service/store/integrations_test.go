package store

import (
	"errors"
	"reflect"
	"regexp"
	"sync"
	"testing"
	"time"
)

func buttonConfig(apiKey string) map[string]any {
	return map[string]any{"api_key": apiKey, "brand_id": "b-1", "batch": int64(50), "ratio": 0.25, "debug": true, "tags": []any{"a", int64(2)}, "nested": map[string]any{"x": "y"}}
}

func TestIntegrations(t *testing.T) {
	s, _, key := newStore(t)
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	now := fixedClock(s, t0)

	in := &Integration{Vendor: "button", Version: "0.1.0", Name: "Button", Variant: "orders", DeliveryMode: "server_side", Enabled: true, SourceIDs: []string{"src_a"}}
	rev := &Revision{ChangeSummary: "installed", Config: buttonConfig("key-1")}
	if err := s.CreateIntegration(in, rev, []string{"api_key", "absent_secret"}); err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^int_[0-9a-f]{24}$`).MatchString(in.ID) {
		t.Errorf("ID %q", in.ID)
	}
	if in.Revision != 1 || rev.Number != 1 || rev.IntegrationID != in.ID || rev.Variant != "orders" || rev.DeliveryMode != "server_side" {
		t.Errorf("after create: %+v / %+v", in, rev)
	}
	if !in.CreatedAt.Equal(t0) || !in.UpdatedAt.Equal(t0) || !rev.CreatedAt.Equal(t0) {
		t.Errorf("stamps: %+v / %+v", in, rev)
	}
	if rev.Config["api_key"] != "key-1" {
		t.Error("CreateIntegration changed the caller's config")
	}

	*now = t0.Add(time.Minute)
	second := &Integration{Vendor: "webhook", Version: "0.1.0", Name: "Hook", Enabled: false}
	if err := s.CreateIntegration(second, &Revision{Variant: "default", DeliveryMode: "server_side", Config: map[string]any{"url": "https://example.com"}}, nil); err != nil {
		t.Fatal(err)
	}
	if second.Variant != "default" || second.DeliveryMode != "server_side" {
		t.Errorf("variant and mode not taken from the revision: %+v", second)
	}

	create := []struct {
		name string
		in   Integration
		rev  *Revision
		want error
	}{
		{"taken name", Integration{Name: "Button"}, &Revision{}, ErrConflict},
		{"taken ID", Integration{ID: in.ID, Name: "Other"}, &Revision{}, ErrConflict},
		{"empty name", Integration{Name: ""}, &Revision{}, errors.New("empty")},
		{"no revision", Integration{Name: "Other"}, nil, errors.New("missing")},
		{"unencodable config", Integration{Name: "Other"}, &Revision{Config: map[string]any{"f": func() {}}}, errors.New("config")},
	}
	for _, tc := range create {
		t.Run("create/"+tc.name, func(t *testing.T) {
			c := tc.in
			err := s.CreateIntegration(&c, tc.rev, nil)
			if err == nil {
				t.Fatal("no error")
			}
			if errors.Is(tc.want, ErrConflict) != errors.Is(err, ErrConflict) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
		})
	}

	t.Run("get and list", func(t *testing.T) {
		got, err := s.GetIntegration(in.ID)
		if err != nil {
			t.Fatal(err)
		}
		sameIntegration(t, got, in)
		for _, id := range []string{"int_nope", ""} {
			if _, err := s.GetIntegration(id); !errors.Is(err, ErrNotFound) {
				t.Errorf("GetIntegration(%q): %v", id, err)
			}
		}
		all, err := s.ListIntegrations()
		if err != nil || len(all) != 2 {
			t.Fatalf("ListIntegrations: %d, %v", len(all), err)
		}
		sameIntegration(t, all[0], in)
		sameIntegration(t, all[1], second)
	})

	t.Run("revisions keep config types and secrets", func(t *testing.T) {
		revs, err := s.Revisions(in.ID)
		if err != nil || len(revs) != 1 {
			t.Fatalf("Revisions: %d, %v", len(revs), err)
		}
		if !reflect.DeepEqual(revs[0].Config, buttonConfig("key-1")) {
			t.Errorf("config %#v, want %#v", revs[0].Config, buttonConfig("key-1"))
		}
		if revs[0].ChangeSummary != "installed" || revs[0].Number != 1 || revs[0].Variant != "orders" || !revs[0].CreatedAt.Equal(t0) {
			t.Errorf("revision %+v", revs[0])
		}
		if _, err := s.Revisions("int_nope"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Revisions of an unknown integration: %v", err)
		}
	})

	t.Run("metadata update", func(t *testing.T) {
		*now = t0.Add(2 * time.Minute)
		cur, _ := s.GetIntegration(in.ID)
		cur.Enabled = false
		cur.Name = "Button EU"
		cur.SourceIDs = []string{"src_b", "src_c"}
		cur.Vendor = "ignored without a revision"
		if err := s.UpdateIntegration(cur, nil, nil); err != nil {
			t.Fatal(err)
		}
		got, _ := s.GetIntegration(in.ID)
		if got.Enabled || got.Name != "Button EU" || !reflect.DeepEqual(got.SourceIDs, []string{"src_b", "src_c"}) || got.Revision != 1 || got.Vendor != "button" || !got.UpdatedAt.Equal(*now) || !got.CreatedAt.Equal(t0) {
			t.Errorf("after metadata update: %+v", got)
		}
		sameIntegration(t, cur, got)
		if revs, _ := s.Revisions(in.ID); len(revs) != 1 {
			t.Errorf("a metadata update made a revision (%d)", len(revs))
		}
		// The old name is free again.
		tmp := &Integration{Name: "Button"}
		if err := s.CreateIntegration(tmp, &Revision{}, nil); err != nil {
			t.Errorf("old name not freed: %v", err)
		}
		s.DeleteIntegration(tmp.ID)
	})

	t.Run("revision update", func(t *testing.T) {
		*now = t0.Add(3 * time.Minute)
		cur, _ := s.GetIntegration(in.ID)
		cur.Variant = "ignored: the revision's variant wins"
		next := &Revision{Variant: "orders_v2", ChangeSummary: "new key", Config: buttonConfig("key-2")}
		if err := s.UpdateIntegration(cur, next, []string{"api_key"}); err != nil {
			t.Fatal(err)
		}
		if cur.Revision != 2 || next.Number != 2 || cur.Variant != "orders_v2" || next.DeliveryMode != "server_side" || cur.DeliveryMode != "server_side" {
			t.Errorf("after revision update: %+v / %+v", cur, next)
		}
		revs, _ := s.Revisions(in.ID)
		if len(revs) != 2 || revs[0].Number != 1 || revs[1].Number != 2 {
			t.Fatalf("revisions %+v", revs)
		}
		if revs[0].Config["api_key"] != "key-1" || revs[1].Config["api_key"] != "key-2" {
			t.Error("revisions are not immutable snapshots")
		}
		r2, err := s.GetRevision(in.ID, 2)
		if err != nil || r2.ChangeSummary != "new key" || r2.Variant != "orders_v2" {
			t.Errorf("GetRevision: %+v, %v", r2, err)
		}
		if _, err := s.GetRevision(in.ID, 3); !errors.Is(err, ErrNotFound) {
			t.Errorf("GetRevision of a missing number: %v", err)
		}
	})

	update := []struct {
		name string
		edit func(*Integration)
		rev  *Revision
		want error
	}{
		{"stale revision", func(i *Integration) { i.Revision = 1 }, &Revision{}, ErrStale},
		{"stale metadata", func(i *Integration) { i.Revision = 1; i.Enabled = true }, nil, ErrStale},
		{"rename to a taken name", func(i *Integration) { i.Name = "Hook" }, nil, ErrConflict},
		{"rename to a taken name with a revision", func(i *Integration) { i.Name = "Hook" }, &Revision{}, ErrConflict},
		{"unknown", func(i *Integration) { i.ID = "int_nope" }, nil, ErrNotFound},
		{"empty name", func(i *Integration) { i.Name = "" }, nil, errors.New("empty")},
	}
	for _, tc := range update {
		t.Run("update/"+tc.name, func(t *testing.T) {
			cur, _ := s.GetIntegration(in.ID)
			before := *cur
			tc.edit(cur)
			err := s.UpdateIntegration(cur, tc.rev, nil)
			if err == nil {
				t.Fatal("no error")
			}
			if tc.want != nil && (errors.Is(tc.want, ErrConflict) || errors.Is(tc.want, ErrNotFound)) && !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
			got, _ := s.GetIntegration(in.ID)
			sameIntegration(t, got, &before)
			if revs, _ := s.Revisions(in.ID); len(revs) != 2 {
				t.Errorf("a refused update left %d revisions", len(revs))
			}
		})
	}
	if !errors.Is(ErrStale, ErrConflict) {
		t.Error("ErrStale is not an ErrConflict")
	}

	s = reopen(t, s, key)
	got, err := s.GetIntegration(in.ID)
	if err != nil || got.Revision != 2 || got.Name != "Button EU" {
		t.Fatalf("after reopen: %+v, %v", got, err)
	}
	revs, err := s.Revisions(in.ID)
	if err != nil || len(revs) != 2 || !reflect.DeepEqual(revs[1].Config, buttonConfig("key-2")) {
		t.Fatalf("revisions after reopen: %+v, %v", revs, err)
	}

	t.Run("delete", func(t *testing.T) {
		if err := s.AddReject(&Reject{IntegrationID: in.ID, Error: "x"}); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteIntegration(in.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetIntegration(in.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("get after delete: %v", err)
		}
		if _, err := s.Revisions(in.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("revisions after delete: %v", err)
		}
		if _, err := s.GetRevision(in.ID, 1); !errors.Is(err, ErrNotFound) {
			t.Errorf("a revision survived the delete: %v", err)
		}
		if _, _, err := s.ListRejects(in.ID, "", 10); !errors.Is(err, ErrNotFound) {
			t.Errorf("rejects after delete: %v", err)
		}
		if err := s.DeleteIntegration(in.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("deleting twice: %v", err)
		}
		if all, _ := s.ListIntegrations(); len(all) != 1 || all[0].ID != second.ID {
			t.Errorf("left: %+v", all)
		}
		again := &Integration{Name: "Button EU"}
		if err := s.CreateIntegration(again, &Revision{}, nil); err != nil {
			t.Errorf("name of a deleted integration not free: %v", err)
		}
		if again.ID == in.ID {
			t.Error("ID reused")
		}
	})
}

func TestListIntegrationsOrder(t *testing.T) {
	s, _, _ := newStore(t)
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	// Created out of order, two at the same instant.
	for _, c := range []struct {
		id  string
		off time.Duration
	}{{"int_c", 2}, {"int_b", 1}, {"int_a", 1}, {"int_d", 0}} {
		in := &Integration{ID: c.id, Name: c.id, CreatedAt: t0.Add(c.off * time.Second)}
		if err := s.CreateIntegration(in, &Revision{}, nil); err != nil {
			t.Fatal(err)
		}
	}
	all, err := s.ListIntegrations()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, in := range all {
		ids = append(ids, in.ID)
	}
	if want := []string{"int_d", "int_a", "int_b", "int_c"}; !reflect.DeepEqual(ids, want) {
		t.Errorf("order %v, want %v", ids, want)
	}
}

func TestUpdateIntegrationConcurrent(t *testing.T) {
	s, _, _ := newStore(t)
	in := &Integration{Name: "Button"}
	if err := s.CreateIntegration(in, &Revision{Config: map[string]any{"api_key": "k0"}}, []string{"api_key"}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, stale := 0, 0
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := *in
			err := s.UpdateIntegration(&c, &Revision{Config: map[string]any{"api_key": "k1"}}, []string{"api_key"})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.Is(err, ErrStale):
				stale++
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if ok != 1 || stale != 9 {
		t.Errorf("10 updates of revision 1: %d applied, %d stale", ok, stale)
	}
	if revs, _ := s.Revisions(in.ID); len(revs) != 2 {
		t.Errorf("%d revisions, want 2", len(revs))
	}
}

func sameIntegration(t *testing.T, got, want *Integration) {
	t.Helper()
	g, w := *got, *want
	if !g.CreatedAt.Equal(w.CreatedAt) || !g.UpdatedAt.Equal(w.UpdatedAt) {
		t.Errorf("stamps %v/%v, want %v/%v", g.CreatedAt, g.UpdatedAt, w.CreatedAt, w.UpdatedAt)
	}
	g.CreatedAt, g.UpdatedAt, w.CreatedAt, w.UpdatedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	if len(g.SourceIDs) == 0 && len(w.SourceIDs) == 0 {
		g.SourceIDs, w.SourceIDs = nil, nil
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("got %+v, want %+v", g, w)
	}
}
