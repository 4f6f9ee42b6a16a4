package delivery

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

// readAll reads every event of input; an event over the limit is "<N>".
func readAll(t testing.TB, input []byte, limit int) (events []string, sizes []int) {
	t.Helper()
	r := NewReader(bytes.NewReader(input), limit)
	for {
		ev, size, err := r.Next()
		if err == io.EOF {
			return events, sizes
		}
		if err != nil {
			t.Fatal(err)
		}
		if ev == nil {
			events = append(events, fmt.Sprintf("<%d>", size))
		} else {
			events = append(events, string(ev))
		}
		sizes = append(sizes, size)
	}
}

func orders(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, `{"type":"track","event":"Order Completed","message_id":"m-%d","properties":{"order_id":"o-%d"}}`+"\n", i, i)
	}
	return b.String()
}

// Regression (issue #11 finding 1): a byte order mark, or a truncated or
// invalid first line, made the rest of the input (up to 1 MiB) one event:
// 100 valid orders became one rejected event. Every valid line is an
// event; the bad line is an event of its own; the mark is dropped.
func TestReaderBadStartLosesNothing(t *testing.T) {
	body := orders(100)
	for name, tt := range map[string]struct {
		input string
		want  int
		first string
	}{
		"byte order mark":      {"\xEF\xBB\xBF" + body, 100, `{"type":"track","event":"Order Completed","message_id":"m-0"`},
		"truncated first line": {`{"type":"track","event":"Order Com` + "\n" + body, 101, `{"type":"track","event":"Order Com`},
		"invalid first line":   {"not json at all\n" + body, 101, "not json at all"},
		"first line opens a value that a valid line continues": {`{"type":"track","event":` + "\n" + body, 101, `{"type":"track","event":`},
		"a mark and a truncated line":                          {"\xEF\xBB\xBF{\"type\":\n" + body, 101, `{"type":`},
		"CRLF and a mark":                                      {"\xEF\xBB\xBF" + strings.ReplaceAll(body, "\n", "\r\n"), 100, `{"type":"track"`},
	} {
		t.Run(name, func(t *testing.T) {
			events, _ := readAll(t, []byte(tt.input), 1<<20)
			if len(events) != tt.want {
				t.Fatalf("%d events, want %d", len(events), tt.want)
			}
			if !strings.HasPrefix(events[0], tt.first) {
				t.Errorf("first event %q", events[0])
			}
			for i, ev := range events[tt.want-100:] {
				if !json.Valid([]byte(ev)) || !strings.Contains(ev, fmt.Sprintf(`"m-%d"`, i)) {
					t.Fatalf("event %d: %q", i, ev)
				}
			}
		})
	}
}

// One value over several lines is one event, when the whole input is
// exactly that value; a second value, a truncated value, or more than the
// limit makes every line an event.
func TestReaderOneValue(t *testing.T) {
	pretty := "{\n  \"type\": \"track\",\n  \"event\": \"Order Completed\",\n  \"properties\": {\"x\": [1,\n 2]}\n}\n"
	compact := `{"type": "track","event": "Order Completed","properties": {"x": [1, 2]}}`
	for name, tt := range map[string]struct {
		input string
		limit int
		want  []string
	}{
		"pretty":                        {pretty, 1000, []string{strings.TrimSpace(pretty)}},
		"pretty with a mark and blanks": {"\xEF\xBB\xBF\n\n" + pretty + "\n\n", 1000, []string{strings.TrimSpace(pretty)}},
		"pretty without final newline":  {strings.TrimSpace(pretty), 1000, []string{strings.TrimSpace(pretty)}},
		"two pretty values":             {pretty + pretty, 1000, append(lines(pretty), lines(pretty)...)},
		"pretty then a line":            {pretty + compact + "\n", 1000, append(lines(pretty), compact)},
		"truncated pretty":              {pretty[:30], 1000, lines(pretty[:30])},
		"pretty over the limit":         {pretty, 40, lines(pretty)},
		"compact":                       {compact + "\n", 1000, []string{compact}},
		"blank":                         {" \n\t\n", 1000, nil},
		"empty":                         {"", 1000, nil},
		"a number":                      {"12\n3", 1000, []string{"12", "3"}},
		"array over lines":              {"[1,\n2]", 1000, []string{"[1,\n2]"}},
		"string cannot span lines":      {"\"ab\ncd\"", 1000, []string{`"ab`, `cd"`}},
	} {
		t.Run(name, func(t *testing.T) {
			got, _ := readAll(t, []byte(tt.input), tt.limit)
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

// lines is the non-blank lines of s, trimmed.
func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// A line over the limit is given as its size alone, and the lines after
// it are read.
func TestReaderLineOverLimit(t *testing.T) {
	big := `{"x":"` + strings.Repeat("a", 100) + `"}`
	got, sizes := readAll(t, []byte(big+"\n{}\n"+big), 50)
	if strings.Join(got, "|") != fmt.Sprintf("<%d>|{}|<%d>", len(big)+1, len(big)) || sizes[1] != 3 {
		t.Errorf("got %q %v", got, sizes)
	}
}

type failAfter struct {
	r   io.Reader
	err error
}

func (f failAfter) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		return n, f.err
	}
	return n, err
}

// A read error ends the events after those read before it, the cut line
// left out, whether the reader was still deciding or not.
func TestReaderReadError(t *testing.T) {
	boom := errors.New("connection reset")
	for name, input := range map[string]string{
		"ndjson":   orders(3) + `{"type":"track","eve`,
		"deciding": "{\n\"a\": 1,\n" + `"b`,
	} {
		t.Run(name, func(t *testing.T) {
			r := NewReader(failAfter{strings.NewReader(input), boom}, 1000)
			n := 0
			for {
				_, _, err := r.Next()
				if err != nil {
					if !errors.Is(err, boom) || err.Error() != "reading events: connection reset" {
						t.Fatalf("err %v", err)
					}
					break
				}
				n++
			}
			if want := strings.Count(input, "\n"); n != want {
				t.Errorf("%d events before the error, want %d", n, want)
			}
			if _, _, err := r.Next(); !errors.Is(err, boom) {
				t.Errorf("the error is not sticky: %v", err)
			}
		})
	}
}

// The reader does not wait for the whole input when its first line cannot
// be (or start) one value: a stream's events come as their lines do.
func TestReaderDoesNotHoldAStream(t *testing.T) {
	pr, pw := io.Pipe()
	r := NewReader(pr, 1000)
	go func() {
		io.WriteString(pw, "{\"type\":\"track\",\"event\":\n")
		io.WriteString(pw, "{\"type\":\"track\"}\n")
		io.WriteString(pw, "{\"type\":\"page\"}\n") // cannot continue the value: decided
		// no more, and no end: a live stream
	}()
	for i, want := range []string{`{"type":"track","event":`, `{"type":"track"}`, `{"type":"page"}`} {
		ev, _, err := r.Next()
		if err != nil || string(ev) != want {
			t.Fatalf("event %d: %q %v", i, ev, err)
		}
	}
	pw.Close()
	if _, _, err := r.Next(); err != io.EOF {
		t.Errorf("end: %v", err)
	}
}

// expected is what Reader must give for input: every non-blank line (one
// over the limit as its size), unless the whole input, its first line not
// a value of its own, is exactly one value within the limit.
func expected(input []byte, limit int) []string {
	s := bytes.TrimPrefix(input, bom)
	var out []string
	type line struct {
		text    []byte
		size    int
		tooLong bool
	}
	var ls []line
	for len(s) > 0 {
		i := bytes.IndexByte(s, '\n')
		n := i + 1
		if i < 0 {
			n = len(s)
		}
		ls = append(ls, line{bytes.TrimSuffix(s[:n], []byte("\n")), n, n > limit+1})
		s = s[n:]
	}
	start := -1
	for i, l := range ls {
		if l.tooLong || len(bytes.TrimSpace(l.text)) > 0 {
			start = i
			break
		}
	}
	if start < 0 {
		return nil
	}
	rest := bytes.TrimPrefix(input, bom)
	total := 0
	for i, l := range ls {
		if i < start {
			rest = rest[l.size:]
		} else {
			total += l.size
		}
	}
	first := ls[start]
	if !first.tooLong && !json.Valid(first.text) && json.Valid(rest) && total <= limit && start+1 < len(ls) {
		return []string{string(bytes.TrimSpace(rest))}
	}
	for _, l := range ls[start:] {
		switch {
		case l.tooLong:
			out = append(out, fmt.Sprintf("<%d>", l.size))
		case len(bytes.TrimSpace(l.text)) > 0:
			out = append(out, string(bytes.TrimSpace(l.text)))
		}
	}
	return out
}

// FuzzReader: the reader never panics, never loses a line (its events
// are exactly every non-blank line, or the input when it is one value),
// and keeps no more than about twice the limit in memory.
func FuzzReader(f *testing.F) {
	for _, seed := range []string{
		orders(3),
		"\xEF\xBB\xBF" + orders(2),
		"{\"type\":\n" + orders(2),
		"{\n  \"a\": [1, 2.5e-3, true, null, \"x\\u00e9\"]\n}\n",
		"{\n\"a\":\n{\"b\":1}\n}",
		"[1,\n2]\n[3]",
		"\"ab\ncd\"",
		"12\n3",
		"  \n\t\r\n",
		"{\"a\":\"" + strings.Repeat("x", 80) + "\"}\n{}",
		"{\r\n\"a\": 1\r\n}\r\n",
		"\xEF\xBB\xBF\xEF\xBB\xBF{}",
		"-0.0e+1\n",
		"{\"a\":1}}\n{}",
	} {
		f.Add([]byte(seed), uint8(64))
	}
	f.Fuzz(func(t *testing.T, input []byte, lim uint8) {
		limit := int(lim)%120 + 1
		r := NewReader(bytes.NewReader(input), limit)
		var got []string
		for {
			ev, size, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if held := r.held(); held > 2*(limit+1) {
				t.Fatalf("%d bytes held for a limit of %d", held, limit)
			}
			switch {
			case ev == nil && size <= limit:
				t.Fatalf("an event of %d bytes given as too large (limit %d)", size, limit)
			case ev == nil:
				got = append(got, fmt.Sprintf("<%d>", size))
			case len(ev) > limit+1:
				t.Fatalf("an event of %d bytes kept (limit %d)", len(ev), limit)
			default:
				got = append(got, string(ev))
			}
		}
		if want := expected(input, limit); strings.Join(got, "\x00|") != strings.Join(want, "\x00|") || len(got) != len(want) {
			t.Fatalf("input %q (limit %d):\n got  %q\n want %q", input, limit, got, want)
		}
	})
}

// held is the bytes the reader keeps: the lines read while deciding, and
// the current line.
func (r *Reader) held() int {
	n := len(r.buf)
	for _, l := range r.queue {
		n += len(l.data)
	}
	return n
}

// FuzzJSONPrefix: jsonPrefix agrees with encoding/json on what is one
// value, and every prefix of one is a prefix.
func FuzzJSONPrefix(f *testing.F) {
	for _, seed := range []string{`{"a":[1,-2.5E+3,true,false,null,"\u00e9\n"]}`, `0`, `-`, `01`, `1.`, `[}`, `{"a" 1}`, `"\x01"`, ` [ ] `, `{"a":1,}`, `tru`, `1e`, "\"\xff\""} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var p jsonPrefix
		ok := p.write(data) && p.complete()
		if ok != json.Valid(data) {
			t.Fatalf("%q: jsonPrefix says %v, encoding/json %v", data, ok, json.Valid(data))
		}
		if json.Valid(data) {
			for i := range data {
				var q jsonPrefix
				if !q.write(data[:i]) {
					t.Fatalf("%q: the prefix %q refused", data, data[:i])
				}
			}
		}
	})
}
