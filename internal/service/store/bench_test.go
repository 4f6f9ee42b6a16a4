package store

import (
	"fmt"
	"testing"
)

// The ingest path looks a source up by its pipeline key on every request.
func BenchmarkSourceByPipelineKey(b *testing.B) {
	s, _, _ := newStoreB(b)
	var keys []string
	for i := range 100 {
		src := &Source{Name: fmt.Sprint("s", i)}
		if err := s.CreateSource(src); err != nil {
			b.Fatal(err)
		}
		keys = append(keys, src.PipelineKey)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := s.SourceByPipelineKey(keys[i%len(keys)]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

func BenchmarkAddRejects100(b *testing.B) {
	s, _, _ := newStoreB(b)
	in := &Integration{Name: "Button"}
	s.CreateIntegration(in, &Revision{}, nil)
	ev := []byte(`{"event":"Order Completed","properties":{"order_id":"o-1","total":12.5}}`)
	for b.Loop() {
		rs := make([]*Reject, 100)
		for i := range rs {
			rs[i] = &Reject{IntegrationID: in.ID, Error: "validation_failed", Fields: []string{"order_id"}, OriginalEvent: ev}
		}
		if err := s.AddRejects(rs); err != nil {
			b.Fatal(err)
		}
	}
}

func newStoreB(b *testing.B) (*Store, string, []byte) {
	b.Helper()
	path := b.TempDir() + "/serve.db"
	key := make([]byte, KeySize)
	s, err := Open(path, key)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s, path, key
}
