package runtime

import (
	"strings"

	"github.com/blueprint-engine/blueprint/internal/compiler"
)

// bpPlan is what the runtime derives once per compiled blueprint: the trie
// of every path the blueprint reads on an event, and one per array items.
type bpPlan struct {
	root  *trie
	paths []string
	// typeNode is the root's node of the "type" key.
	typeNode *trie
	// fallback holds the slots whose path the scanner cannot express
	// (wildcards, queries), resolved with gjson instead.
	fallback map[int]string
	items    map[*compiler.Object]*itemPlan
}

type itemPlan struct {
	root     *trie
	paths    []string
	fallback map[int]string
}

// planOf returns the blueprint's plan, built at most once and kept on the
// compiled blueprint itself (never in a global map: a blueprint dropped by
// its last user is freed with its plan).
func planOf(bp *compiler.Blueprint) *bpPlan {
	return bp.Derived(func(bp *compiler.Blueprint) any { return buildPlan(bp) }).(*bpPlan)
}

func buildPlan(bp *compiler.Blueprint) *bpPlan {
	p := &bpPlan{items: map[*compiler.Object]*itemPlan{}}
	p.root, p.paths, p.fallback = buildTrie(bp.Paths)
	p.typeNode = p.root.child([]byte("type"))
	seen := map[*compiler.Object]bool{}
	// readers counts the items objects read from each array node: a node
	// records its elements for one object only.
	readers := map[*trie]map[*compiler.Object]bool{}
	var walk func(o *compiler.Object, scope *trie)
	walk = func(o *compiler.Object, scope *trie) {
		if o == nil || seen[o] {
			return
		}
		seen[o] = true
		for _, f := range o.Fields {
			if f.Object == nil {
				continue
			}
			if f.Type.Kind != compiler.KindArray {
				walk(f.Object, scope)
				continue
			}
			ip := &itemPlan{}
			ip.root, ip.paths, ip.fallback = buildTrie(f.Object.ItemPaths)
			p.items[f.Object] = ip
			for _, src := range f.Sources {
				if src.Kind != compiler.SourcePath {
					continue
				}
				if n := scope.find(src.Path); n != nil {
					if readers[n] == nil {
						readers[n] = map[*compiler.Object]bool{}
					}
					readers[n][f.Object] = true
					if len(ip.fallback) == 0 && n.index == nil {
						n.each, n.eachN, n.eachObj = ip.root, len(ip.paths), f.Object
					}
				}
			}
			walk(f.Object, ip.root)
		}
	}
	for _, v := range bp.Variants {
		for _, e := range v.Events {
			walk(e.Request.Body, p.root)
		}
	}
	for n, objs := range readers {
		if len(objs) > 1 {
			n.each, n.eachN, n.eachObj = nil, 0, nil // read as items of several objects: scanned again
		}
	}
	return p
}

func buildTrie(paths []string) (*trie, []string, map[int]string) {
	root := newTrie()
	var fallback map[int]string
	for slot, p := range paths {
		segs, ok := splitPath(p)
		if !ok {
			if fallback == nil {
				fallback = map[int]string{}
			}
			fallback[slot] = p
			continue
		}
		root.add(segs, slot)
	}
	return root, paths, fallback
}

// find returns the node of path, or nil.
func (t *trie) find(path string) *trie {
	segs, ok := splitPath(path)
	if !ok {
		return nil
	}
	n := t
	for _, seg := range segs {
		if n = n.child(sbytes(seg)); n == nil {
			return nil
		}
	}
	return n
}

// splitPath splits a gjson path into plain keys; it reports false for
// paths using gjson's wildcards, queries or modifiers.
func splitPath(p string) ([]string, bool) {
	var segs []string
	var cur strings.Builder
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '\\' && i+1 < len(p):
			i++
			cur.WriteByte(p[i])
		case c == '.':
			segs = append(segs, cur.String())
			cur.Reset()
		case strings.IndexByte("*?#@|!=<>%(){}[]", c) >= 0:
			return nil, false
		default:
			cur.WriteByte(c)
		}
	}
	segs = append(segs, cur.String())
	for _, s := range segs {
		if s == "" {
			return nil, false
		}
	}
	return segs, true
}
