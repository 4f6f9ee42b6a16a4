package store

import (
	"errors"
	"regexp"
	"testing"
	"time"
)

func TestSources(t *testing.T) {
	s, _, key := newStore(t)
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	now := fixedClock(s, t0)

	web := &Source{Name: "website"}
	if err := s.CreateSource(web); err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		field, value, pattern string
	}{
		{"ID", web.ID, `^src_[0-9a-f]{24}$`},
		{"PipelineKey", web.PipelineKey, `^dk_live_[0-9a-f]{32}$`},
		{"SecretKey", web.SecretKey, `^[0-9a-f]{64}$`},
	}
	for _, c := range checks {
		if !regexp.MustCompile(c.pattern).MatchString(c.value) {
			t.Errorf("%s %q does not match %s", c.field, c.value, c.pattern)
		}
	}
	if !web.CreatedAt.Equal(t0) {
		t.Errorf("CreatedAt %v", web.CreatedAt)
	}
	*now = t0.Add(time.Second)
	app := &Source{Name: "app", PipelineKey: "dk_live_given", SecretKey: "given-secret"}
	if err := s.CreateSource(app); err != nil {
		t.Fatal(err)
	}
	if app.PipelineKey != "dk_live_given" || app.SecretKey != "given-secret" {
		t.Errorf("given keys replaced: %+v", app)
	}

	create := []struct {
		name string
		src  Source
		want error
	}{
		{"taken name", Source{Name: "website"}, ErrConflict},
		{"taken pipeline key", Source{Name: "other", PipelineKey: web.PipelineKey}, ErrConflict},
		{"taken ID", Source{ID: web.ID, Name: "other2"}, ErrConflict},
		{"empty name", Source{Name: ""}, errors.New("empty")},
	}
	for _, tc := range create {
		t.Run("create/"+tc.name, func(t *testing.T) {
			c := tc.src
			err := s.CreateSource(&c)
			if err == nil {
				t.Fatal("no error")
			}
			if errors.Is(tc.want, ErrConflict) && !errors.Is(err, ErrConflict) {
				t.Fatalf("error %v, want ErrConflict", err)
			}
		})
	}

	lookups := []struct {
		name string
		get  func() (*Source, error)
		want *Source
	}{
		{"by pipeline key", func() (*Source, error) { return s.SourceByPipelineKey(web.PipelineKey) }, web},
		{"by given pipeline key", func() (*Source, error) { return s.SourceByPipelineKey("dk_live_given") }, app},
		{"by ID", func() (*Source, error) { return s.SourceByID(app.ID) }, app},
		{"unknown key", func() (*Source, error) { return s.SourceByPipelineKey("dk_live_nope") }, nil},
		{"empty key", func() (*Source, error) { return s.SourceByPipelineKey("") }, nil},
		{"key in another case", func() (*Source, error) { return s.SourceByPipelineKey("DK_LIVE_GIVEN") }, nil},
		{"unknown ID", func() (*Source, error) { return s.SourceByID("src_nope") }, nil},
	}
	for _, tc := range lookups {
		t.Run("get/"+tc.name, func(t *testing.T) {
			got, err := tc.get()
			if tc.want == nil {
				if !errors.Is(err, ErrNotFound) {
					t.Fatalf("error %v, want ErrNotFound", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			sameSource(t, got, tc.want)
		})
	}

	list := func(s *Store) {
		t.Helper()
		all, err := s.ListSources()
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != 2 {
			t.Fatalf("%d sources", len(all))
		}
		sameSource(t, all[0], web)
		sameSource(t, all[1], app)
	}
	list(s)
	s = reopen(t, s, key)
	list(s)
	if got, err := s.SourceByPipelineKey(web.PipelineKey); err != nil || got.SecretKey != web.SecretKey {
		t.Fatalf("after reopen: %+v, %v", got, err)
	}

	t.Run("delete", func(t *testing.T) {
		if err := s.DeleteSource(web.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.SourceByPipelineKey(web.PipelineKey); !errors.Is(err, ErrNotFound) {
			t.Errorf("pipeline key of a deleted source still works: %v", err)
		}
		if err := s.DeleteSource(web.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("deleting twice: %v", err)
		}
		again := &Source{Name: "website"}
		if err := s.CreateSource(again); err != nil {
			t.Errorf("the name of a deleted source is not free: %v", err)
		}
	})
}

func sameSource(t *testing.T, got, want *Source) {
	t.Helper()
	if got.ID != want.ID || got.Name != want.Name || got.PipelineKey != want.PipelineKey || got.SecretKey != want.SecretKey || !got.CreatedAt.Equal(want.CreatedAt) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}
