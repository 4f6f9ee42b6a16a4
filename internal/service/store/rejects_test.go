package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"sync"
	"testing"
	"time"
)

func TestRejects(t *testing.T) {
	s, _, key := newStore(t)
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	now := fixedClock(s, t0)
	in := &Integration{Name: "Button"}
	other := &Integration{Name: "Hook"}
	for _, x := range []*Integration{in, other} {
		if err := s.CreateIntegration(x, &Revision{}, nil); err != nil {
			t.Fatal(err)
		}
	}

	if rs, next, err := s.ListRejects(in.ID, "", 10); err != nil || len(rs) != 0 || next != "" {
		t.Fatalf("no rejects yet: %v, %q, %v", rs, next, err)
	}
	first := &Reject{IntegrationID: in.ID, Error: "validation_failed", Details: "order_id is missing", Fields: []string{"order_id"}, OriginalEvent: json.RawMessage(`{"event":"Order Completed","email":"***"}`)}
	if err := s.AddReject(first); err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^rej_[0-9a-f]{24}$`).MatchString(first.ID) || !first.CreatedAt.Equal(t0) {
		t.Errorf("filled: %+v", first)
	}
	var all []*Reject // oldest first
	all = append(all, first)
	for i := 1; i < 7; i++ {
		*now = t0.Add(time.Duration(i) * time.Second)
		r := &Reject{IntegrationID: in.ID, Error: fmt.Sprint("e", i)}
		if err := s.AddReject(r); err != nil {
			t.Fatal(err)
		}
		all = append(all, r)
	}
	if err := s.AddReject(&Reject{IntegrationID: other.ID, Error: "other"}); err != nil {
		t.Fatal(err)
	}

	add := []struct {
		name string
		r    Reject
		want error
	}{
		{"unknown integration", Reject{IntegrationID: "int_nope"}, ErrNotFound},
		{"no integration", Reject{}, ErrNotFound},
		{"taken ID", Reject{ID: first.ID, IntegrationID: in.ID}, ErrConflict},
	}
	for _, tc := range add {
		t.Run("add/"+tc.name, func(t *testing.T) {
			c := tc.r
			if err := s.AddReject(&c); !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
		})
	}

	t.Run("get", func(t *testing.T) {
		got, err := s.GetReject(in.ID, first.ID)
		if err != nil {
			t.Fatal(err)
		}
		sameReject(t, got, first)
		for _, c := range [][2]string{{in.ID, "rej_nope"}, {other.ID, first.ID}, {"int_nope", first.ID}, {in.ID, ""}} {
			if _, err := s.GetReject(c[0], c[1]); !errors.Is(err, ErrNotFound) {
				t.Errorf("GetReject(%s, %s): %v", c[0], c[1], err)
			}
		}
	})

	pages := func(limit int) [][]*Reject {
		t.Helper()
		var out [][]*Reject
		cursor := ""
		for {
			rs, next, err := s.ListRejects(in.ID, cursor, limit)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, rs)
			if next == "" {
				return out
			}
			cursor = next
		}
	}
	for _, tc := range []struct{ limit, pages int }{{1, 7}, {3, 3}, {7, 1}, {100, 1}, {0, 1}} {
		t.Run(fmt.Sprint("list by ", tc.limit), func(t *testing.T) {
			ps := pages(tc.limit)
			if len(ps) != tc.pages {
				t.Errorf("%d pages, want %d", len(ps), tc.pages)
			}
			var ids []string
			for _, p := range ps {
				for _, r := range p {
					ids = append(ids, r.ID)
				}
			}
			var want []string
			for i := len(all) - 1; i >= 0; i-- {
				want = append(want, all[i].ID)
			}
			if !reflect.DeepEqual(ids, want) {
				t.Errorf("ids %v, want newest first %v", ids, want)
			}
		})
	}

	t.Run("list errors", func(t *testing.T) {
		if _, _, err := s.ListRejects("int_nope", "", 10); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown integration: %v", err)
		}
		for _, c := range []string{"!!", "AAAA", "not-a-cursor"} {
			if _, _, err := s.ListRejects(in.ID, c, 10); !errors.Is(err, ErrInvalidCursor) {
				t.Errorf("cursor %q: %v", c, err)
			}
		}
	})

	t.Run("a cursor survives deletes", func(t *testing.T) {
		rs, next, err := s.ListRejects(in.ID, "", 2) // e6, e5
		if err != nil || len(rs) != 2 {
			t.Fatal(rs, err)
		}
		// Delete the last one shown and the next one: the page goes on after them.
		for _, id := range []string{rs[1].ID, all[4].ID} {
			if err := s.DeleteReject(in.ID, id); err != nil {
				t.Fatal(err)
			}
		}
		rs, _, err = s.ListRejects(in.ID, next, 2)
		if err != nil || len(rs) != 2 || rs[0].ID != all[3].ID || rs[1].ID != all[2].ID {
			t.Fatalf("after deletes: %+v, %v", rs, err)
		}
		if err := s.DeleteReject(in.ID, all[4].ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("deleting twice: %v", err)
		}
		if err := s.DeleteReject("int_nope", all[0].ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown integration: %v", err)
		}
		if err := s.DeleteReject(other.ID, all[0].ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("another integration's reject: %v", err)
		}
	})

	s = reopen(t, s, key)
	got, err := s.GetReject(in.ID, first.ID)
	if err != nil {
		t.Fatal(err)
	}
	sameReject(t, got, first)
	rs, _, _ := s.ListRejects(in.ID, "", 100)
	if len(rs) != 5 {
		t.Errorf("%d rejects after reopen, want 5", len(rs))
	}
}

func TestRejectsCap(t *testing.T) {
	s, _, _ := newStore(t)
	s.maxRejects = 5
	in := &Integration{Name: "Button"}
	s.CreateIntegration(in, &Revision{}, nil)
	var ids []string
	for i := range 12 {
		r := &Reject{IntegrationID: in.ID, Error: fmt.Sprint(i)}
		if err := s.AddReject(r); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	rs, next, err := s.ListRejects(in.ID, "", 100)
	if err != nil || next != "" {
		t.Fatal(err, next)
	}
	if len(rs) != 5 || rs[0].Error != "11" || rs[4].Error != "7" {
		t.Fatalf("kept %d: first %s, last %s; want the newest 5", len(rs), rs[0].Error, rs[len(rs)-1].Error)
	}
	if _, err := s.GetReject(in.ID, ids[6]); !errors.Is(err, ErrNotFound) {
		t.Errorf("a dropped reject is still found: %v", err)
	}
	// A delete makes room: the count follows.
	s.DeleteReject(in.ID, ids[11])
	s.AddReject(&Reject{IntegrationID: in.ID, Error: "12"})
	rs, _, _ = s.ListRejects(in.ID, "", 100)
	if len(rs) != 5 || rs[4].Error != "7" {
		t.Errorf("after a delete and an add: %d kept, oldest %s", len(rs), rs[len(rs)-1].Error)
	}
}

func TestRejectsDefaultCap(t *testing.T) {
	if testing.Short() {
		t.Skip("adds 10,001 rejects")
	}
	s, _, _ := newStore(t)
	in := &Integration{Name: "Button"}
	s.CreateIntegration(in, &Revision{}, nil)
	var first string
	for i := 0; i <= MaxRejects; i += 1000 {
		var batch []*Reject
		for j := i; j < min(i+1000, MaxRejects+1); j++ {
			batch = append(batch, &Reject{IntegrationID: in.ID})
		}
		if err := s.AddRejects(batch); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = batch[0].ID
		}
	}
	if _, err := s.GetReject(in.ID, first); !errors.Is(err, ErrNotFound) {
		t.Errorf("the oldest of 10,001 rejects is kept: %v", err)
	}
	n := 0
	for cursor := ""; ; {
		rs, next, err := s.ListRejects(in.ID, cursor, 1000)
		if err != nil {
			t.Fatal(err)
		}
		n += len(rs)
		if next == "" {
			break
		}
		cursor = next
	}
	if n != MaxRejects {
		t.Errorf("%d kept, want %d", n, MaxRejects)
	}
}

func TestAddRejectsAllOrNothing(t *testing.T) {
	s, _, _ := newStore(t)
	in := &Integration{Name: "Button"}
	s.CreateIntegration(in, &Revision{}, nil)
	err := s.AddRejects([]*Reject{{IntegrationID: in.ID}, {IntegrationID: "int_gone"}})
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("error %v, want ErrNotFound", err)
	}
	if rs, _, _ := s.ListRejects(in.ID, "", 10); len(rs) != 0 {
		t.Errorf("a failed batch recorded %d", len(rs))
	}
	if err := s.AddRejects([]*Reject{{IntegrationID: in.ID}, {IntegrationID: in.ID}}); err != nil {
		t.Fatal(err)
	}
	if rs, _, _ := s.ListRejects(in.ID, "", 10); len(rs) != 2 {
		t.Errorf("a batch of 2 recorded %d", len(rs))
	}
}

func TestAddRejectConcurrent(t *testing.T) {
	s, _, _ := newStore(t)
	s.maxRejects = 30
	in := &Integration{Name: "Button"}
	s.CreateIntegration(in, &Revision{}, nil)
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.AddReject(&Reject{IntegrationID: in.ID}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	rs, _, _ := s.ListRejects(in.ID, "", 100)
	if len(rs) != 30 {
		t.Errorf("%d kept, want 30", len(rs))
	}
}

func sameReject(t *testing.T, got, want *Reject) {
	t.Helper()
	if got.ID != want.ID || got.IntegrationID != want.IntegrationID || got.Error != want.Error || got.Details != want.Details || !reflect.DeepEqual(got.Fields, want.Fields) || string(got.OriginalEvent) != string(want.OriginalEvent) || !got.CreatedAt.Equal(want.CreatedAt) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}
