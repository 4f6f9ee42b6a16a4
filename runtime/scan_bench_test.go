package runtime

import (
	"os"
	"testing"
	"unicode/utf8"

	"github.com/tidwall/gjson"

	"github.com/blueprint-engine/blueprint/blueprints"
	"github.com/blueprint-engine/blueprint/engine"
	"github.com/blueprint-engine/blueprint/internal/compiler"
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
	b.Run("scanner_button_paths", func(b *testing.B) {
		cat, err := engine.NewCatalog(blueprints.FS)
		if err != nil {
			b.Fatal(err)
		}
		bp, _, err := cat.Compile("button@0.1.0")
		if err != nil || bp == nil {
			b.Fatal("button does not compile")
		}
		p := planOf(compiler.Of(bp))
		var s scanner
		s.items = true
		slots := make([]span, len(p.paths))
		b.SetBytes(int64(len(ev)))
		for b.Loop() {
			clear(slots)
			s.scan(ev, p.root, slots, 64)
			slots = s.spans[:len(p.paths)]
		}
	})
	// As Evaluate scans (checking keys twice), and as EvaluateValid does
	// (skipping what nobody reads).
	for _, valid := range []bool{false, true} {
		name := "scanner_button_paths_dups"
		if valid {
			name = "scanner_button_paths_valid"
		}
		b.Run(name, func(b *testing.B) {
			cat, err := engine.NewCatalog(blueprints.FS)
			if err != nil {
				b.Fatal(err)
			}
			bp, _, err := cat.Compile("button@0.1.0")
			if err != nil || bp == nil {
				b.Fatal("button does not compile")
			}
			p := planOf(compiler.Of(bp))
			var s scanner
			s.items, s.dups, s.valid = true, true, valid
			slots := make([]span, len(p.paths))
			b.SetBytes(int64(len(ev)))
			for b.Loop() {
				clear(slots)
				s.scan(ev, p.root, slots, 64)
				slots = s.spans[:len(p.paths)]
			}
		})
	}
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
