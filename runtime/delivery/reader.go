package delivery

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/blueprint-engine/blueprint/runtime"
)

// Reader reads events from NDJSON (one event per line) or from one JSON
// value, pretty-printed or not: the input of 'blueprint send' and 'eval'.
//
// The rule that tells them apart never lets a bad line swallow the rest:
// the input is one multi-line value only if it parses as exactly one
// complete JSON value, within the size limit; anything else is read line
// by line, each non-blank line an event (a truncated or invalid line is
// then an event of its own, which evaluation rejects). So a line that is
// valid JSON is never lost, whatever comes before it. A UTF-8 byte order
// mark at the start of the input is dropped. Deciding reads at most the
// limit ahead (the lines are kept, then given one by one) and stops as soon
// as the text cannot be one value any more, so a stream is not held up.
//
// Memory is bounded by the limit: a line longer than it is not kept (Next
// gives its size alone), and deciding keeps at most about twice the limit.
type Reader struct {
	br      *bufio.Reader
	limit   int
	started bool
	queue   []pendingLine // read while deciding, given as NDJSON lines
	buf     []byte        // the current NDJSON line
	err     error         // the input's error, given after the queue
}

type pendingLine struct {
	data    []byte
	size    int
	tooLong bool
}

// bom is the UTF-8 byte order mark.
var bom = []byte{0xEF, 0xBB, 0xBF}

// NewReader returns a Reader of r for events of at most limit bytes
// (runtime.DefaultMaxEventSize if limit is not positive).
func NewReader(r io.Reader, limit int) *Reader {
	if limit <= 0 {
		limit = runtime.DefaultMaxEventSize
	}
	return &Reader{br: bufio.NewReaderSize(r, 64<<10), limit: limit}
}

// Next returns the next event, without the white space around it, and the
// bytes it took in the input (its line's newline included). The event's
// bytes are valid until the next call. An event larger than the limit is
// not kept: Next returns a nil event and its size (TooLarge makes its
// result). At the end of the input Next returns io.EOF; a read error of
// the input is returned (wrapped, "reading events: ...") after the events
// read before it, and the line it cut is not returned.
func (r *Reader) Next() (event []byte, size int, err error) {
	if !r.started {
		r.started = true
		r.start()
	}
	for len(r.queue) > 0 {
		l := r.queue[0]
		r.queue[0] = pendingLine{}
		r.queue = r.queue[1:]
		if l.tooLong {
			return nil, l.size, nil
		}
		if ev := bytes.TrimSpace(l.data); len(ev) > 0 {
			return ev, l.size, nil
		}
	}
	r.queue = nil
	if r.err != nil {
		return nil, 0, r.err
	}
	for {
		line, size, tooLong, err := r.readLine(r.buf[:0])
		if err != nil {
			r.err = err
			return nil, 0, err
		}
		if line == nil && size == 0 {
			r.err = io.EOF
			return nil, 0, io.EOF
		}
		if !tooLong && cap(line) <= 4*r.limit+64<<10 {
			r.buf = line // reused, unless a huge line grew it
		}
		if tooLong {
			return nil, size, nil
		}
		if ev := bytes.TrimSpace(line); len(ev) > 0 {
			return ev, size, nil
		}
	}
}

// start drops a byte order mark and decides between NDJSON and one value,
// filling the queue with what it read.
func (r *Reader) start() {
	if b, _ := r.br.Peek(len(bom)); bytes.Equal(b, bom) {
		r.br.Discard(len(bom))
	}
	var first pendingLine
	for { // the first non-blank line
		line, size, tooLong, err := r.readLine(nil)
		if err != nil || line == nil && size == 0 {
			r.err = err
			if err == nil {
				r.err = io.EOF
			}
			return
		}
		if tooLong || len(bytes.TrimSpace(line)) > 0 {
			first = pendingLine{data: line, size: size, tooLong: tooLong}
			break
		}
	}
	r.queue = append(r.queue, first)
	var p jsonPrefix
	if first.tooLong || !p.write(first.data) || p.complete() || !p.write([]byte{'\n'}) {
		return // NDJSON: a line that is a value of its own, or cannot start one
	}
	// The first line starts a value: the input is that one value if it
	// parses as exactly one, within the limit.
	total := first.size
	for {
		line, size, tooLong, err := r.readLine(nil)
		if err != nil {
			r.err = err // the lines read are given first, line by line
			return
		}
		if line == nil && size == 0 { // the end of the input
			if p.complete() {
				var all []byte
				for _, l := range r.queue {
					all = append(append(all, l.data...), '\n')
				}
				r.queue = []pendingLine{{data: all, size: total}}
			}
			r.err = io.EOF
			return
		}
		r.queue = append(r.queue, pendingLine{data: line, size: size, tooLong: tooLong})
		total += size
		if tooLong || total > r.limit || !p.write(line) || !p.write([]byte{'\n'}) {
			return // not one value: NDJSON, from the first line
		}
	}
}

// readLine reads one line (without its newline) into buf, keeping at most
// limit+1 bytes. It returns nil, 0 at the end of the input, and a read
// error other than the end of the input as err (the partial line read
// before it is not returned: it may be a truncated event).
func (r *Reader) readLine(buf []byte) (line []byte, size int, tooLong bool, err error) {
	for {
		chunk, err := r.br.ReadSlice('\n')
		size += len(chunk)
		if !tooLong {
			if len(buf)+len(chunk) > r.limit+1 {
				tooLong, buf = true, nil
			} else {
				buf = append(buf, chunk...)
			}
		}
		switch {
		case err == nil:
			return bytes.TrimSuffix(buf, []byte("\n")), size, tooLong, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case !errors.Is(err, io.EOF):
			return nil, 0, false, fmt.Errorf("reading events: %w", err)
		case size == 0:
			return nil, 0, false, nil
		default: // the last line, without a newline
			if buf == nil && !tooLong {
				buf = []byte{}
			}
			return buf, size, tooLong, nil
		}
	}
}

// TooLarge is the result of an event larger than limit, which Reader does
// not keep: reject invalid_event, as Evaluate rejects one it is given.
func TooLarge(size, limit int) runtime.Result {
	return runtime.Result{Outcome: runtime.Reject, Reason: runtime.ReasonInvalidEvent,
		Message: fmt.Sprintf("event is %d bytes; the limit is %d", size, limit)}
}
