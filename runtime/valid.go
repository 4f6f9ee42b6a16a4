package runtime

import (
	"errors"
	"fmt"
	"sync"
	"unicode/utf8"

	"github.com/blueprint-engine/blueprint/internal/compiler"
)

// ValidEvent is an event Valid has checked: one well-formed JSON object
// in valid UTF-8, nothing after it, within Valid's size and depth limits.
// Only Valid makes one (its fields are unexported): bytes nobody checked
// cannot be passed off as checked. It keeps the event's bytes, which must
// not change while it is used.
type ValidEvent struct {
	b []byte
	// maxDepth is the depth limit the event was checked against.
	maxDepth int
	// typ and name are where the top-level type and event values are (the
	// first of each; absent: kind 0).
	typ, name span
	// topDup: the top-level object holds a key twice (compared as text,
	// escapes undone). Whether that refuses the event depends on the
	// blueprint (a key it reads), so EvaluateValid checks it as Evaluate
	// does.
	topDup bool
	ok     bool
}

// Bytes returns the event's bytes (not a copy).
func (v ValidEvent) Bytes() []byte { return v.b }

// validTrie records the top-level type and event, at the slots the
// compiler gives them in every blueprint. Its root is read whole: a scan
// checking duplicate keys checks every key, and stops at one twice in the
// top-level object (which the scan that records values needs no branch
// for).
var validTrie = func() *trie {
	t := newTrie()
	t.add([]string{"type"}, compiler.SlotType)
	t.add([]string{"event"}, compiler.SlotEvent)
	t.whole = true
	return t
}()

var validDefaults = Options{MaxEventSize: DefaultMaxEventSize, MaxDepth: DefaultMaxDepth}

var validPool = sync.Pool{New: func() any { return new(scanner) }}

// Valid checks an event once, as Evaluate checks it before anything else:
// at most the size limit, not empty, valid UTF-8, exactly one well-formed
// JSON object (white space around it only), at most the depth limit deep
// (WithMaxEventSize and WithMaxDepth set them; other options are ignored;
// defaults DefaultMaxEventSize, DefaultMaxDepth). Its error says why, as
// Evaluate's invalid_event message does, without quoting the event.
//
// The ValidEvent it returns can be evaluated by any number of
// integrations with EvaluateValid, each making the decision Evaluate
// makes, without checking the bytes again. Keys twice in one object are
// not refused here: whether they refuse the event depends on the keys a
// blueprint reads, and EvaluateValid checks them as Evaluate does.
func Valid(event []byte, opts ...Option) (ValidEvent, error) {
	o := validDefaults
	if len(opts) > 0 {
		p := new(Options) // escapes to the options: only allocated with some
		*p = o
		for _, f := range opts {
			f(p)
		}
		o = *p
	}
	if len(event) > o.MaxEventSize {
		return ValidEvent{}, fmt.Errorf("event is %d bytes; the limit is %d", len(event), o.MaxEventSize)
	}
	i := skipWS(event, 0)
	if i == len(event) {
		return ValidEvent{}, errors.New("event is empty")
	}
	if !utf8.Valid(event) {
		return ValidEvent{}, errors.New("event is not valid UTF-8")
	}
	s := validPool.Get().(*scanner)
	defer func() {
		s.b = nil
		if cap(s.keys) > 1<<12 || cap(s.keyText) > 1<<16 || cap(s.dupTable) > 1<<14 || cap(s.stack) > 1<<10 {
			s.keys, s.keyText, s.dupTable, s.stack = nil, nil, nil, nil
		}
		validPool.Put(s)
	}()
	slots := s.spans[:0]
	if cap(slots) < 2 {
		slots = make([]span, 2)
	}
	slots = slots[:2]
	clear(slots)
	// Every top-level key checked (shallow: a key twice deeper would be
	// ignored here): one twice stops the scan (errDuplicate), and the
	// event is scanned again, only validated, for its other faults.
	s.dups, s.shallow = true, true
	err := s.scan(event, validTrie, slots, o.MaxDepth)
	topDup := errors.Is(err, errDuplicate)
	if topDup {
		s.dups = false
		clear(slots)
		err = s.scan(event, validTrie, slots, o.MaxDepth)
	}
	switch {
	case errors.Is(err, errTooDeep):
		return ValidEvent{}, fmt.Errorf("event nests deeper than %d levels (the limit)", o.MaxDepth)
	case err != nil:
		return ValidEvent{}, errors.New("event is not well-formed JSON (malformed, truncated, or followed by more data)")
	}
	if event[i] != '{' {
		return ValidEvent{}, errors.New("event is " + describeKind(kindOf(event[i])) + ", not a JSON object")
	}
	return ValidEvent{
		b: event, maxDepth: o.MaxDepth,
		typ: s.spans[compiler.SlotType], name: s.spans[compiler.SlotEvent],
		topDup: topDup, ok: true,
	}, nil
}

// describeKind names a JSON value's kind, for messages.
func describeKind(kind byte) string {
	switch kind {
	case '"':
		return "a string"
	case '0':
		return "a number"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	case '[':
		return "a list"
	}
	return "an object"
}
