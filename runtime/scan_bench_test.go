package runtime

import (
	"os"
	"testing"
	"unicode/utf8"

	"github.com/tidwall/gjson"
)

func BenchmarkScan(b *testing.B) {
	ev, _ := os.ReadFile("testdata/bench/button_purchase_3_items.json")
	b.Run("scanner", func(b *testing.B) {
		var s scanner
		b.SetBytes(int64(len(ev)))
		for b.Loop() {
			s.scan(ev, nil, nil, 64)
		}
	})
	b.Run("utf8", func(b *testing.B) {
		b.SetBytes(int64(len(ev)))
		for b.Loop() {
			utf8.Valid(ev)
		}
	})
	b.Run("gjson_valid", func(b *testing.B) {
		b.SetBytes(int64(len(ev)))
		for b.Loop() {
			gjson.ValidBytes(ev)
		}
	})
}
