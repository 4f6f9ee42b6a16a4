package compiler

// Slot numbers for the paths every evaluation reads: the event's type, its
// name (track), and its name (page, screen).
const (
	SlotType  = 0
	SlotEvent = 1
	SlotName  = 2
)

// slotTable numbers distinct paths.
type slotTable struct {
	paths []string
	index map[string]int
}

func (t *slotTable) slot(path string) int {
	if i, ok := t.index[path]; ok {
		return i
	}
	if t.index == nil {
		t.index = map[string]int{}
	}
	t.index[path] = len(t.paths)
	t.paths = append(t.paths, path)
	return len(t.paths) - 1
}

// assignSlots gives every path read on the event (or on an array item) a
// slot, so that the runtime resolves them all in one scan and finds each
// by index.
func assignSlots(bp *Blueprint) {
	root := &slotTable{}
	root.slot("type")
	root.slot("event")
	root.slot("name")
	seenObj := map[*Object]bool{}
	seenSpec := map[*Spec]bool{}
	var spec func(s *Spec, t *slotTable)
	var object func(o *Object, t *slotTable)
	expr := func(e *Expr, t *slotTable) {
		if e == nil {
			return
		}
		for i := range e.Inputs {
			in := &e.Inputs[i]
			switch {
			case (in.Kind == InputEvent || in.Kind == InputItem) && in.Path == "":
				in.Slot = -1
			case in.Kind == InputEvent:
				in.Slot = root.slot(in.Path)
			case in.Kind == InputItem:
				in.Slot = t.slot(in.Path)
			}
		}
	}
	spec = func(s *Spec, t *slotTable) {
		if seenSpec[s] {
			return
		}
		seenSpec[s] = true
		s.PathsOnly = len(s.Sources) > 0
		for _, src := range s.Sources {
			s.PathsOnly = s.PathsOnly && src.Kind == SourcePath
		}
		if len(s.Sources) == 1 && s.Sources[0].Kind == SourceValue && s.Type.Kind == KindAny && s.Default == nil {
			s.AsValue = s.Sources[0].Value
		}
		for i := range s.Sources {
			src := &s.Sources[i]
			switch src.Kind {
			case SourcePath:
				src.Slot = t.slot(src.Path)
			case SourceExpr:
				expr(src.Expr, t)
			}
		}
	}
	object = func(o *Object, t *slotTable) {
		if o == nil || seenObj[o] {
			return
		}
		seenObj[o] = true
		in := true
		for i, k := range o.Order {
			in = in && i == k
		}
		o.InOrder = in && len(o.Order) == len(o.Fields)
		for _, f := range o.Fields {
			for _, d := range f.Deps {
				o.Fields[d].Read = true
			}
		}
		for _, i := range o.OmitUnless {
			o.Fields[i].Read = true
		}
		for _, f := range o.Fields {
			o.Reads = o.Reads || f.Read
		}
		for _, f := range o.Fields {
			spec(&f.Spec, t)
			expr(f.When, t)
			f.Route = routeOf(f)
			f.CommaKey = "," + f.JSONKey
			if f.Object == nil {
				continue
			}
			if f.Type.Kind == KindArray {
				items := &slotTable{}
				object(f.Object, items)
				f.Object.ItemPaths = items.paths
			} else {
				object(f.Object, t)
			}
		}
	}
	for _, v := range bp.Values {
		spec(&v.Spec, root)
	}
	for _, cs := range bp.Consents() {
		cs.Slots = make([]int, len(cs.Paths))
		for i, p := range cs.Paths {
			cs.Slots[i] = root.slot(p)
		}
		expr(cs.Expr, root)
	}
	for _, v := range bp.Variants {
		for _, e := range v.Events {
			expr(e.Filter, root)
			for _, w := range e.WarnWhen {
				expr(w.Expr, root)
			}
			if e.VendorSpec != nil {
				spec(e.VendorSpec, root)
			}
			object(e.Request.Body, root)
		}
	}
	bp.Paths = root.paths
}
