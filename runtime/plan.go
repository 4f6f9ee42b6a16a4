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
	markWhole(bp, p)
	return p
}

// markWhole marks the trie nodes whose value the engine may read as a
// whole, by key, without the trie: a scan checking duplicate keys checks
// every key below them, not only the keys of the trie. Those are the paths
// of expression inputs, and of the values and fields expressions read (an
// object reaches the program through gjson, whose first key wins), and
// the arrays of items the scan does not record (they are scanned again,
// by key). A path the trie cannot hold (a wildcard, a query: gjson looks
// anywhere), or an expression reading the whole event, marks the root:
// every key of the event is checked. An object passed on as it is (an
// any field) is not read here: the vendor reads it as the platform does.
func markWhole(bp *compiler.Blueprint, p *bpPlan) {
	mark := func(root *trie, path string) {
		if n := root.find(path); n != nil {
			n.whole = true
		} else {
			root.whole = true
		}
	}
	container := func(k compiler.Kind) bool {
		return k == compiler.KindAny || k == compiler.KindObject || k == compiler.KindArray
	}
	// sources marks the paths a spec's value comes from, and those of
	// the values it takes, when that value may be a container read whole.
	marked := map[*compiler.Value]bool{}
	var sources func(sp *compiler.Spec, scope *trie, force bool)
	sources = func(sp *compiler.Spec, scope *trie, force bool) {
		if !force && !container(sp.Type.Kind) {
			return // a scalar, or invalid: never read inside
		}
		for _, src := range sp.Sources {
			switch src.Kind {
			case compiler.SourcePath:
				mark(scope, src.Path)
			case compiler.SourceValue:
				if v := src.Value; v != nil && !marked[v] {
					marked[v] = true
					sources(&v.Spec, p.root, true)
				}
			}
		}
	}
	exprs := func(e *compiler.Expr, item *trie, obj *compiler.Object, scope *trie) {
		if e == nil {
			return
		}
		for _, in := range e.Inputs {
			switch {
			case in.Kind == compiler.InputEvent && in.Slot < 0:
				p.root.whole = true
			case in.Kind == compiler.InputEvent:
				mark(p.root, in.Path)
			case in.Kind == compiler.InputItem && item != nil && in.Slot < 0:
				item.whole = true
			case in.Kind == compiler.InputItem && item != nil:
				mark(item, in.Path)
			case in.Kind == compiler.InputValue && in.Value != nil && !marked[in.Value]:
				marked[in.Value] = true
				sources(&in.Value.Spec, p.root, false)
			case in.Kind == compiler.InputField && obj != nil && in.Field < len(obj.Fields):
				if f := obj.Fields[in.Field]; f.Object == nil { // objects and items are built here
					sources(&f.Spec, scope, false)
				}
			}
		}
	}
	spec := func(sp *compiler.Spec, scope, item *trie, obj, items *compiler.Object) {
		for _, src := range sp.Sources {
			switch src.Kind {
			case compiler.SourcePath:
				n := scope.find(src.Path)
				switch {
				case n == nil:
					scope.whole = true // a fallback path: gjson looks anywhere below
				case items != nil && (n.each == nil || n.eachObj != items):
					n.whole = true // items scanned again, by key
				}
			case compiler.SourceValue:
				if v := src.Value; items != nil && v != nil && !marked[v] {
					marked[v] = true
					sources(&v.Spec, p.root, true) // items scanned again, by key
				}
			case compiler.SourceExpr:
				exprs(src.Expr, item, obj, scope)
			}
		}
	}
	for _, v := range bp.Values {
		spec(&v.Spec, p.root, nil, nil, nil)
	}
	if cs := bp.Consent; cs != nil {
		exprs(cs.Expr, nil, nil, p.root)
	}
	seen := map[*compiler.Object]bool{}
	var walk func(o *compiler.Object, scope, item *trie)
	walk = func(o *compiler.Object, scope, item *trie) {
		if o == nil || seen[o] {
			return
		}
		seen[o] = true
		for _, f := range o.Fields {
			switch {
			case f.Object != nil && f.Type.Kind == compiler.KindArray:
				spec(&f.Spec, scope, item, o, f.Object)
				ip := p.items[f.Object]
				walk(f.Object, ip.root, ip.root)
			case f.Object != nil:
				walk(f.Object, scope, item)
			default:
				spec(&f.Spec, scope, item, o, nil)
			}
		}
	}
	for _, v := range bp.Variants {
		for _, e := range v.Events {
			exprs(e.Filter, nil, nil, p.root)
			walk(e.Request.Body, p.root, nil)
		}
	}
	for _, r := range bp.Requests {
		walk(r.Body, p.root, nil) // unused requests are still compiled
	}
	// A node with more keys than a frame has bits for is read whole.
	var wide func(t *trie)
	wide = func(t *trie) {
		if len(t.children) > maxMaskedKeys {
			t.whole = true
		}
		for _, c := range t.children {
			wide(c)
		}
	}
	wide(p.root)
	for _, ip := range p.items {
		wide(ip.root)
	}
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
