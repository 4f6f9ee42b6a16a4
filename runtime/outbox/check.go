package outbox

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"slices"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// This file reads a bbolt file (format version 2) the slow, careful way:
// with ReadAt, trusting nothing it reads, so that a damaged file gives
// errors and never a fault. bbolt maps the file in memory and trusts its
// page numbers: a page beyond the end of a truncated file is a SIGBUS,
// and a garbage page a panic in whatever goroutine touches it. OpenBolt
// runs the cheap checks here before bbolt maps a file; Check and Salvage
// read a damaged file with it. The layout is bbolt's on-disk format
// (go.etcd.io/bbolt/internal/common), which bbolt keeps stable: fields
// are in the machine's byte order, as bbolt writes them.

const (
	boltMagic      = 0xED0CDAED
	boltVersion    = 2
	pageHeaderSize = 16 // id u64, flags u16, count u16, overflow u32
	elemSize       = 16 // branch: pos, ksize u32, pgid u64; leaf: flags, pos, ksize, vsize u32
	metaSize       = 64 // magic, version, pageSize, flags u32; root, sequence, freelist, pgid, txid, checksum u64
	flagBranch     = 0x01
	flagLeaf       = 0x02
	flagMeta       = 0x04
	flagFreelist   = 0x10
	flagBucketLeaf = 0x01
	inBucketSize   = 16 // root pgid u64, sequence u64
	noFreelist     = ^uint64(0)
	minPageSize    = 512
	maxPageSize    = 1 << 24
)

var ne = binary.NativeEndian

// metaPage is one of the two meta pages of a bbolt file.
type metaPage struct {
	valid    bool
	problem  string // why it is not valid
	pageSize uint64
	root     uint64
	freelist uint64
	pgid     uint64 // the high-water mark: pages in use
	txid     uint64
}

func parseMeta(b []byte) metaPage {
	if len(b) < pageHeaderSize+metaSize {
		return metaPage{problem: "cut short"}
	}
	m := b[pageHeaderSize:]
	mp := metaPage{
		pageSize: uint64(ne.Uint32(m[8:])),
		root:     ne.Uint64(m[16:]),
		freelist: ne.Uint64(m[32:]),
		pgid:     ne.Uint64(m[40:]),
		txid:     ne.Uint64(m[48:]),
	}
	h := fnv.New64a()
	h.Write(m[:56])
	switch {
	case ne.Uint32(m[0:]) != boltMagic:
		mp.problem = "not a bbolt meta page"
	case ne.Uint32(m[4:]) != boltVersion:
		mp.problem = fmt.Sprintf("bbolt format version %d, not %d", ne.Uint32(m[4:]), boltVersion)
	case ne.Uint64(m[56:]) != h.Sum64():
		mp.problem = "checksum mismatch"
	case mp.pageSize < minPageSize || mp.pageSize > maxPageSize:
		mp.problem = fmt.Sprintf("page size %d", mp.pageSize)
	default:
		mp.valid = true
	}
	return mp
}

// pageFile is a bbolt file read with ReadAt.
type pageFile struct {
	path     string
	f        *os.File
	size     int64
	pageSize int64
	metas    [2]metaPage
	meta     metaPage // the one bbolt uses
	hwm      uint64
}

// openPageFile reads the meta pages of the file at path. It fails only if
// the file cannot be read; a file with no valid meta page has meta.valid
// false.
func openPageFile(path string) (*pageFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	pf := &pageFile{path: path, f: f, size: fi.Size()}
	buf := make([]byte, pageHeaderSize+metaSize)
	read := func(off int64) metaPage {
		if off+int64(len(buf)) > pf.size {
			return metaPage{problem: "beyond the end of the file"}
		}
		if _, err := f.ReadAt(buf, off); err != nil {
			return metaPage{problem: err.Error()}
		}
		return parseMeta(buf)
	}
	pf.metas[0] = read(0)
	if pf.metas[0].valid {
		pf.metas[1] = read(int64(pf.metas[0].pageSize))
	} else {
		// Where is the second one? As bbolt does: try the page sizes.
		pf.metas[1] = metaPage{problem: "not found"}
		for ps := int64(1024); ps <= maxPageSize && ps < pf.size; ps *= 2 {
			if m := read(ps); m.valid && int64(m.pageSize) == ps {
				pf.metas[1] = m
				break
			}
		}
	}
	// As bbolt's DB.meta: the valid one with the higher txid.
	a, b := pf.metas[0], pf.metas[1]
	if b.txid > a.txid {
		a, b = b, a
	}
	switch {
	case a.valid:
		pf.meta = a
	case b.valid:
		pf.meta = b
	}
	if pf.meta.valid {
		pf.pageSize = int64(pf.meta.pageSize)
		pf.hwm = pf.meta.pgid
	}
	return pf, nil
}

func (pf *pageFile) Close() error { return pf.f.Close() }

// pageError is a page that cannot be read.
type pageError struct {
	id      uint64
	missing bool // beyond the end of the file
	msg     string
}

func (e *pageError) Error() string { return fmt.Sprintf("page %d %s", e.id, e.msg) }

// page reads page id with its overflow pages, and checks its header.
func (pf *pageFile) page(id uint64) ([]byte, error) {
	if id < 2 || id >= pf.hwm {
		return nil, &pageError{id: id, msg: fmt.Sprintf("is out of range (the file has pages 2 to %d)", pf.hwm-1)}
	}
	off := int64(id) * pf.pageSize
	if off+pf.pageSize > pf.size {
		return nil, &pageError{id: id, missing: true, msg: "is beyond the end of the file"}
	}
	buf := make([]byte, pf.pageSize)
	if _, err := pf.f.ReadAt(buf, off); err != nil {
		return nil, &pageError{id: id, msg: err.Error()}
	}
	if got := ne.Uint64(buf); got != id {
		return nil, &pageError{id: id, msg: fmt.Sprintf("holds the header of page %d (overwritten?)", got)}
	}
	if ov := uint64(ne.Uint32(buf[12:])); ov > 0 {
		if id+ov >= pf.hwm {
			return nil, &pageError{id: id, msg: fmt.Sprintf("runs past the last page (%d overflow pages)", ov)}
		}
		end := off + int64(ov+1)*pf.pageSize
		if end > pf.size {
			return nil, &pageError{id: id, missing: true, msg: "runs beyond the end of the file"}
		}
		buf = slices.Grow(buf, int(end-off)-len(buf))[:end-off]
		if _, err := pf.f.ReadAt(buf[pf.pageSize:], off+pf.pageSize); err != nil {
			return nil, &pageError{id: id, msg: err.Error()}
		}
	}
	return buf, nil
}

// quick checks what OpenBolt checks on every open: the meta pages, that
// the file is as long as they say, the free-page list and the root page.
// suspicious is true when the file deserves a full walk even if they are
// sound: one meta page is damaged, or the size is not a whole number of
// pages.
func (pf *pageFile) quick() (problems []string, suspicious bool) {
	if !pf.meta.valid {
		return []string{fmt.Sprintf("no valid meta page (not a bbolt file, or both meta pages are damaged: %s; %s)",
			pf.metas[0].problem, pf.metas[1].problem)}, false
	}
	// A damaged meta page alone is what bbolt recovers from (it uses the
	// other one): a problem only if the walk finds more.
	suspicious = !pf.metas[0].valid || !pf.metas[1].valid
	if pf.size%pf.pageSize != 0 {
		suspicious = true
	}
	if pf.hwm < 3 {
		return []string{fmt.Sprintf("its meta page says it has %d pages", pf.hwm)}, suspicious
	}
	if need := int64(pf.hwm) * pf.pageSize; need > pf.size {
		return []string{fmt.Sprintf("truncated: the file has %d bytes, its pages reach %d (%d of its %d pages are missing)",
			pf.size, need, (need-pf.size+pf.pageSize-1)/pf.pageSize, pf.hwm)}, suspicious
	}
	if pf.meta.root < 2 || pf.meta.root >= pf.hwm {
		problems = append(problems, fmt.Sprintf("its root page %d is out of range", pf.meta.root))
	} else if p, err := pf.page(pf.meta.root); err != nil {
		problems = append(problems, "root "+err.Error())
	} else if f := ne.Uint16(p[8:]); f != flagBranch && f != flagLeaf {
		problems = append(problems, fmt.Sprintf("root page %d is not a branch or leaf page (flags %#x)", pf.meta.root, f))
	}
	if msg := pf.checkFreelist(); msg != "" {
		problems = append(problems, msg)
	}
	return problems, suspicious
}

// checkFreelist reads the list of free pages, which bbolt loads when it
// opens a file for writing, and says what is wrong with it.
func (pf *pageFile) checkFreelist() string {
	id := pf.meta.freelist
	if id == noFreelist {
		return ""
	}
	p, err := pf.page(id)
	if err != nil {
		return "free-page list: " + err.Error()
	}
	if f := ne.Uint16(p[8:]); f != flagFreelist {
		return fmt.Sprintf("free-page list: page %d is not one (flags %#x)", id, f)
	}
	start, count := pageHeaderSize, uint64(ne.Uint16(p[10:]))
	if count == 0xFFFF {
		if len(p) < pageHeaderSize+8 {
			return fmt.Sprintf("free-page list: page %d is cut short", id)
		}
		count = ne.Uint64(p[pageHeaderSize:])
		start += 8
	}
	if count > uint64(len(p)-start)/8 {
		return fmt.Sprintf("free-page list: page %d says it lists %d pages, more than it can hold", id, count)
	}
	for i := range count {
		if fid := ne.Uint64(p[start+int(i)*8:]); fid < 2 || fid >= pf.hwm {
			return fmt.Sprintf("free-page list: page %d lists page %d, out of range", id, fid)
		}
	}
	return ""
}

// bucketRef is a bucket met in a walk: a root page, or an inline page.
type bucketRef struct {
	root   uint64
	inline []byte
}

// walker walks the B+trees of a pageFile, noting the pages it cannot
// read and going on with the rest.
type walker struct {
	pf       *pageFile
	seen     map[uint64]bool
	problems []string
	bad      int // pages that could not be read
	missing  int // of those, pages beyond the end of the file
}

func newWalker(pf *pageFile) *walker {
	return &walker{pf: pf, seen: map[uint64]bool{}}
}

func (w *walker) problem(format string, args ...any) {
	w.problems = append(w.problems, fmt.Sprintf(format, args...))
}

// forEach calls fn for every key of the bucket, in order where the file is
// sound; child is the bucket under key, nil for a value.
func (w *walker) forEach(b bucketRef, fn func(k, v []byte, child *bucketRef)) {
	if b.root == 0 {
		w.leaf(b.inline, "an inline bucket", fn)
		return
	}
	w.walkPage(b.root, fn)
}

func (w *walker) walkPage(id uint64, fn func(k, v []byte, child *bucketRef)) {
	if w.seen[id] {
		w.problem("page %d is referenced twice", id)
		return
	}
	w.seen[id] = true
	p, err := w.pf.page(id)
	if err != nil {
		w.bad++
		var pe *pageError
		if errors.As(err, &pe) && pe.missing {
			w.missing++ // the file is truncated: said once, by quick
			return
		}
		w.problem("%v", err)
		return
	}
	switch f := ne.Uint16(p[8:]); f {
	case flagBranch:
		count := int(ne.Uint16(p[10:]))
		if pageHeaderSize+count*elemSize > len(p) {
			w.bad++
			w.problem("page %d: %d elements do not fit in it", id, count)
			return
		}
		for i := range count {
			e := pageHeaderSize + i*elemSize
			pos, ksize := uint64(ne.Uint32(p[e:])), uint64(ne.Uint32(p[e+4:]))
			if uint64(e)+pos+ksize > uint64(len(p)) {
				w.problem("page %d: element %d runs past the page", id, i)
				continue
			}
			w.walkPage(ne.Uint64(p[e+8:]), fn)
		}
	case flagLeaf:
		w.leaf(p, fmt.Sprintf("page %d", id), fn)
	default:
		w.bad++
		w.problem("page %d is not a branch or leaf page (flags %#x)", id, f)
	}
}

// leaf reads the elements of a leaf page p.
func (w *walker) leaf(p []byte, what string, fn func(k, v []byte, child *bucketRef)) {
	if len(p) < pageHeaderSize || ne.Uint16(p[8:]) != flagLeaf {
		w.bad++
		w.problem("%s is not a leaf page", what)
		return
	}
	count := int(ne.Uint16(p[10:]))
	if pageHeaderSize+count*elemSize > len(p) {
		w.bad++
		w.problem("%s: %d elements do not fit in it", what, count)
		return
	}
	for i := range count {
		e := pageHeaderSize + i*elemSize
		flags := ne.Uint32(p[e:])
		pos, ksize, vsize := uint64(ne.Uint32(p[e+4:])), uint64(ne.Uint32(p[e+8:])), uint64(ne.Uint32(p[e+12:]))
		ks := uint64(e) + pos
		if ks+ksize+vsize > uint64(len(p)) {
			w.problem("%s: element %d runs past the page", what, i)
			continue
		}
		k, v := p[ks:ks+ksize], p[ks+ksize:ks+ksize+vsize]
		if flags&flagBucketLeaf == 0 {
			fn(k, v, nil)
			continue
		}
		if len(v) < inBucketSize {
			w.problem("%s: bucket %q has a short header", what, k)
			continue
		}
		child := &bucketRef{root: ne.Uint64(v)}
		if child.root == 0 {
			child.inline = v[inBucketSize:]
		}
		fn(k, nil, child)
	}
}

// walkAll walks every bucket of the file (every page bbolt may read).
func (w *walker) walkAll() {
	var rec func(b bucketRef)
	rec = func(b bucketRef) {
		w.forEach(b, func(_, _ []byte, child *bucketRef) {
			if child != nil {
				rec(*child)
			}
		})
	}
	rec(bucketRef{root: w.pf.meta.root})
}

// preflight checks the bbolt file at path before bbolt maps it, under a
// shared lock (bbolt's, read-only), so that a damaged file gives an error
// naming it instead of a fault. A missing or empty file is fine (bbolt
// creates it).
func preflight(path string, lockTimeout time.Duration) error {
	fi, err := os.Stat(path)
	if err != nil || fi.Size() == 0 {
		return nil
	}
	// bbolt's read-only open takes the shared lock and checks the meta
	// pages' checksums; it reads no other page.
	ro, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: lockTimeout})
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return &inUseError{path: path}
	case errors.Is(err, os.ErrNotExist):
		return nil // gone meanwhile: bbolt creates it
	case err != nil:
		// bbolt refuses it: damaged if the careful reader finds why (an
		// I/O or permission error is not damage).
		if problems, ok := fileProblems(path); ok && len(problems) > 0 {
			return &damagedError{path: path, msg: problems[0]}
		}
		return fmt.Errorf("outbox %s: open: %w", path, err)
	}
	defer func() { _ = ro.Close() }()
	problems, ok := fileProblems(path)
	if ok && len(problems) > 0 {
		msg := problems[0]
		if len(problems) > 1 {
			msg += fmt.Sprintf(" (and %d more problems)", len(problems)-1)
		}
		return &damagedError{path: path, msg: msg}
	}
	return nil
}

// fileProblems runs the quick checks of the file at path, and the full
// walk when they find it suspicious; ok is false if it could not be read.
func fileProblems(path string) (problems []string, ok bool) {
	pf, err := openPageFile(path)
	if err != nil {
		return nil, false
	}
	defer pf.Close()
	problems, suspicious := pf.quick()
	if len(problems) == 0 && suspicious {
		w := newWalker(pf)
		w.walkAll()
		problems = w.problems
	}
	return problems, true
}

// CheckReport is what Check found in an outbox file.
type CheckReport struct {
	// Path and Size (in bytes) of the file; PageSize is bbolt's page size
	// (0 if no meta page could be read).
	Path     string `json:"path"`
	Size     int64  `json:"bytes"`
	PageSize int    `json:"page_size"`
	// Damage says what is wrong with the file itself, one sentence each:
	// meta pages, size, pages that cannot be read, bbolt's own consistency
	// check. Empty when the file is sound.
	Damage []string `json:"damage,omitempty"`
	// PagesLost is how many pages in use cannot be read (damaged, or
	// beyond the end of a truncated file): whatever they held is lost,
	// unless an older copy is found (Recovered).
	PagesLost int `json:"pages_lost,omitempty"`
	// Records counts the readable records by state, those of Recovered
	// included.
	Records map[State]int `json:"records"`
	// Recovered is how many of them were found, when pages are lost, by
	// reading every page the file's tree no longer reaches (see Salvage).
	Recovered int `json:"recovered,omitempty"`
	// Unreadable lists the records that cannot be read: Bolt moves them to
	// its quarantine when it meets them; Salvage copies them there.
	Unreadable []RecordProblem `json:"unreadable,omitempty"`
	// IndexProblems is how many index entries (or counters) are out of
	// step with the records; Bolt repairs them when it meets them.
	IndexProblems int `json:"index_problems,omitempty"`
	// Lost lists the IDs that an index entry knows but that have no
	// record (lost with a damaged page, if any): their events were
	// accepted and are not in the file any more.
	Lost []string `json:"lost,omitempty"`
	// Quarantined is how many records are in the quarantine.
	Quarantined int `json:"quarantined"`
}

// RecordProblem is a record that cannot be read.
type RecordProblem struct {
	// ID is the key the record is stored under.
	ID string `json:"id"`
	// Problem says what is wrong with it (naming the ID).
	Problem string `json:"problem"`
}

// OK reports whether the file is sound and every record readable
// (quarantined records do not count: they are out of the way).
func (r *CheckReport) OK() bool {
	return len(r.Damage) == 0 && r.PagesLost == 0 && len(r.Unreadable) == 0 && r.IndexProblems == 0 && len(r.Lost) == 0
}

// scanned is what a careful read of an outbox file found.
type scanned struct {
	report     CheckReport
	items      []*Item       // readable records, by ID
	raw        []Quarantined // unreadable records, with their bytes
	quarantine [][2][]byte   // quarantine entries: key, value
}

// Check reads the outbox file at path without trusting it (no memory
// map: a damaged file cannot crash it) and reports what is wrong with it,
// as a file and record by record. It takes the file's lock as a reader
// when bbolt can open the file (failing with an error matching ErrInUse
// after the lock timeout if a process has it open), and runs bbolt's own
// consistency check when every page could be read. It fails only when the
// file cannot be read at all.
func Check(path string, opts ...BoltOption) (*CheckReport, error) {
	s, err := scan(path, newBoltConfig(opts).lockTimeout)
	if err != nil {
		return nil, err
	}
	return &s.report, nil
}

func scan(path string, lockTimeout time.Duration) (*scanned, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("outbox %s: check: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("outbox %s: check: not a regular file", path)
	}
	ro, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: lockTimeout})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, &inUseError{path: path}
	}
	if err == nil {
		defer func() { _ = ro.Close() }()
	}
	pf, err := openPageFile(path)
	if err != nil {
		return nil, fmt.Errorf("outbox %s: check: %w", path, err)
	}
	defer pf.Close()
	s := &scanned{report: CheckReport{Path: path, Size: pf.size, PageSize: int(pf.pageSize), Records: map[State]int{}}}
	for _, st := range states {
		s.report.Records[st] = 0
	}
	r := &s.report
	problems, _ := pf.quick()
	r.Damage = append(r.Damage, problems...)
	for i, m := range pf.metas {
		if !m.valid && pf.meta.valid {
			r.Damage = append(r.Damage, fmt.Sprintf("meta page %d is damaged (%s); bbolt uses the other one", i, m.problem))
		}
	}
	if pf.meta.valid && pf.size%pf.pageSize != 0 {
		r.Damage = append(r.Damage, fmt.Sprintf("the file's size (%d bytes) is not a whole number of %d-byte pages", pf.size, pf.pageSize))
	}
	if !pf.meta.valid || pf.hwm < 3 {
		return s, nil
	}
	w := newWalker(pf)
	s.read(w)
	r.Damage = append(r.Damage, w.problems...)
	// Lost: the pages met that could not be read, and on a truncated file
	// every page in use beyond its end (met or not).
	r.PagesLost = w.bad - w.missing
	if end := pf.size / pf.pageSize; int64(pf.hwm) > end {
		r.PagesLost += int(int64(pf.hwm) - end)
	}
	if w.bad > 0 {
		s.readLoose(w)
	}
	// bbolt's own check (the free-page list against the pages in use) is
	// safe only on a file whose every page was read above: it runs in a
	// goroutine of its own, where a fault cannot be caught.
	if ro != nil && len(r.Damage) == 0 && pf.size%pf.pageSize == 0 {
		err := ro.View(func(tx *bolt.Tx) error {
			for err := range tx.Check() {
				r.Damage = append(r.Damage, "bbolt: "+err.Error())
			}
			return nil
		})
		if err != nil {
			r.Damage = append(r.Damage, "bbolt: "+err.Error())
		}
	}
	return s, nil
}

// read walks the outbox's buckets and fills s.
func (s *scanned) read(w *walker) {
	r := &s.report
	top := map[string]*bucketRef{}
	w.forEach(bucketRef{root: w.pf.meta.root}, func(k, _ []byte, child *bucketRef) {
		if child != nil {
			top[string(k)] = child
		}
	})
	for _, name := range [][]byte{bucketItems, bucketDue, bucketStates, bucketCounts, bucketMeta} {
		if top[string(name)] == nil && w.bad == 0 {
			r.Damage = append(r.Damage, fmt.Sprintf("the %s bucket is missing (not an outbox file?)", name))
		}
	}
	byID := map[string]*Item{}
	unreadable := map[string]bool{}
	if b := top[string(bucketItems)]; b != nil {
		w.forEach(*b, func(k, v []byte, child *bucketRef) {
			if child != nil {
				return
			}
			id := string(k)
			it, err := decodeItem(id, v)
			if err == nil && checkID(id) != nil {
				err = &corruptError{id: id, msg: "ID too long"}
			}
			if err != nil {
				unreadable[id] = true
				r.Unreadable = append(r.Unreadable, RecordProblem{ID: id, Problem: err.Error()})
				s.raw = append(s.raw, Quarantined{ID: id, Reason: err.Error(), Raw: bytes.Clone(v)})
				return
			}
			byID[id] = it
			s.items = append(s.items, it)
			r.Records[it.State]++
		})
	}
	// Index entries: each must be one its record implies.
	lost := map[string]bool{}
	entries := map[State]int{}
	check := func(name string, b *bucketRef, ok func(it *Item, k []byte) bool, st State) {
		if b == nil {
			return
		}
		w.forEach(*b, func(k, _ []byte, child *bucketRef) {
			if child != nil || len(k) <= 8 {
				r.IndexProblems++
				return
			}
			entries[st]++
			id := string(k[8:])
			switch it := byID[id]; {
			case it != nil && ok(it, k):
			case it != nil:
				r.IndexProblems++
			case !unreadable[id]:
				lost[id] = true
			}
		})
	}
	check("due", top[string(bucketDue)], func(it *Item, k []byte) bool {
		return it.State == Pending && bytes.Equal(k, indexKey(it.NextAt, it.ID))
	}, "")
	if sb := top[string(bucketStates)]; sb != nil {
		idx := map[string]*bucketRef{}
		w.forEach(*sb, func(k, _ []byte, child *bucketRef) {
			if child != nil {
				idx[string(k)] = child
			}
		})
		for _, st := range states {
			if idx[string(st)] == nil {
				r.Damage = append(r.Damage, fmt.Sprintf("the %s index is missing", st))
				continue
			}
			check(string(st), idx[string(st)], func(it *Item, k []byte) bool {
				return it.State == st && bytes.Equal(k, indexKey(it.UpdatedAt, it.ID))
			}, st)
		}
	}
	// Every readable record is in its indexes: a missing entry is a
	// problem too (counted as the difference).
	for _, st := range states {
		if d := r.Records[st] - entries[st]; d > 0 {
			r.IndexProblems += d
		}
	}
	if b := top[string(bucketCounts)]; b != nil {
		w.forEach(*b, func(k, v []byte, child *bucketRef) {
			if child != nil || len(v) != 8 || !knownState(State(k)) {
				r.IndexProblems++
				return
			}
			if int(binary.BigEndian.Uint64(v)) != entries[State(k)] {
				r.IndexProblems++
			}
		})
	}
	for id := range lost {
		r.Lost = append(r.Lost, id)
	}
	sort.Strings(r.Lost)
	if b := top[string(bucketQuarantine)]; b != nil {
		w.forEach(*b, func(k, v []byte, child *bucketRef) {
			if child == nil {
				s.quarantine = append(s.quarantine, [2][]byte{bytes.Clone(k), bytes.Clone(v)})
			}
		})
	}
	r.Quarantined = len(s.quarantine)
	// The walk of the remaining buckets finds damage in pages bbolt
	// would read too.
	for name, b := range top {
		switch name {
		case string(bucketItems), string(bucketDue), string(bucketStates), string(bucketCounts), string(bucketQuarantine):
			continue
		}
		var rec func(b bucketRef)
		rec = func(b bucketRef) {
			w.forEach(b, func(_, _ []byte, child *bucketRef) {
				if child != nil {
					rec(*child)
				}
			})
		}
		rec(*b)
	}
}

// readLoose reads, when the walk lost pages, every leaf page it did not
// reach (nor the free-page list names, when it can be read), for item
// records the walk did not find: pages a lost branch page led to, or, on
// a truncated file whose root is gone, the whole tree. For an ID found in
// several pages (older versions linger in free pages), the record last
// updated wins.
func (s *scanned) readLoose(w *walker) {
	pf := w.pf
	free := map[uint64]bool{}
	if pf.checkFreelist() == "" && pf.meta.freelist != noFreelist {
		if p, err := pf.page(pf.meta.freelist); err == nil {
			start, count := pageHeaderSize, uint64(ne.Uint16(p[10:]))
			if count == 0xFFFF {
				count = ne.Uint64(p[pageHeaderSize:])
				start += 8
			}
			for i := range count {
				free[ne.Uint64(p[start+int(i)*8:])] = true
			}
		}
	}
	known := map[string]bool{}
	for _, it := range s.items {
		known[it.ID] = true
	}
	for _, e := range s.raw {
		known[e.ID] = true
	}
	loose := map[string]*Item{}
	last := min(pf.hwm, uint64(pf.size/pf.pageSize))
	quiet := newWalker(pf) // its problems are not the file's: these pages may be stale
	for id := uint64(2); id < last; id++ {
		if w.seen[id] || free[id] {
			continue
		}
		p, err := pf.page(id)
		if err != nil || ne.Uint16(p[8:]) != flagLeaf {
			continue
		}
		id += uint64(ne.Uint32(p[12:])) // its overflow pages
		quiet.leaf(p, "", func(k, v []byte, child *bucketRef) {
			if child != nil || known[string(k)] {
				return
			}
			it, err := decodeItem(string(k), v)
			if err != nil || checkID(it.ID) != nil {
				return
			}
			if old := loose[it.ID]; old == nil || it.UpdatedAt.After(old.UpdatedAt) {
				loose[it.ID] = it
			}
		})
	}
	r := &s.report
	for _, it := range loose {
		s.items = append(s.items, it)
		r.Records[it.State]++
	}
	r.Recovered = len(loose)
	r.Lost = slices.DeleteFunc(r.Lost, func(id string) bool { return loose[id] != nil })
}

// SalvageReport says what Salvage found and copied.
type SalvageReport struct {
	// Check is what was found in the old file.
	Check *CheckReport `json:"check"`
	// Path is the new file.
	Path string `json:"path"`
	// Items counts the records copied, by state.
	Items map[State]int `json:"items"`
	// Quarantined is how many records went into the new file's
	// quarantine: the old file's unreadable records and its quarantine.
	Quarantined int `json:"quarantined"`
}

// Salvage copies every readable record of the outbox file at path (which
// may be damaged: it is read as Check reads it, and never written) into a
// new outbox file at newPath, which must not exist yet. Records keep their
// state and times; the records that cannot be read, and those already in
// the quarantine, go into the new file's quarantine with their bytes.
// When pages cannot be read, Salvage also reads the pages the file's tree
// no longer reaches (on a truncated file, whose root page is usually
// gone, that is all of them) and keeps, for each ID, the record last
// updated: an item purged or removed shortly before the damage may come
// back from a page not reused yet (removed items are erased from the file
// only by Compact), and an item may come back in an older state (pending
// though it was delivered: it is sent again). Records in pages that
// cannot be read are lost: Check lists the IDs their index entries still
// know (CheckReport.Lost). To use the new file, stop every process using
// the old one and rename the new one over it.
func Salvage(path, newPath string, opts ...BoltOption) (*SalvageReport, error) {
	cfg := newBoltConfig(opts)
	if _, err := os.Lstat(newPath); err == nil {
		return nil, fmt.Errorf("outbox: salvage: %s already exists", newPath)
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("outbox: salvage: %w", err)
	}
	s, err := scan(path, cfg.lockTimeout)
	if err != nil {
		return nil, err
	}
	rep := &SalvageReport{Check: &s.report, Path: newPath, Items: map[State]int{}}
	for _, st := range states {
		rep.Items[st] = 0
	}
	q, err := OpenBolt(newPath, opts...)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*SalvageReport, error) {
		_ = q.Close()
		_ = os.Remove(newPath)
		return nil, fmt.Errorf("outbox: salvage into %s: %w", newPath, err)
	}
	ctx := context.Background()
	now := time.Now().UTC()
	for chunk := range slices.Chunk(s.items, 1000) {
		var batch []*Item
		for _, it := range chunk {
			if _, err := prepareNew(it, now); err != nil {
				s.raw = append(s.raw, Quarantined{ID: it.ID, Reason: err.Error()})
				continue
			}
			batch = append(batch, it)
		}
		if _, err := q.Enqueue(ctx, batch); err != nil {
			return fail(err)
		}
		for _, it := range batch {
			rep.Items[it.State]++
		}
	}
	err = q.update(func(t *boltTx) error {
		for _, e := range s.raw {
			e.Reason = "unreadable in " + path + ": " + e.Reason
			e.At = now
			if err := t.putQuarantine(e); err != nil {
				return err
			}
		}
		b, err := t.tx.CreateBucketIfNotExists(bucketQuarantine)
		if err != nil {
			return err
		}
		for _, kv := range s.quarantine {
			if len(kv[0]) == 0 || len(kv[0]) > bolt.MaxKeySize {
				continue
			}
			if err := b.Put(kv[0], kv[1]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fail(err)
	}
	rep.Quarantined = len(s.raw) + len(s.quarantine)
	if err := q.Close(); err != nil {
		_ = os.Remove(newPath)
		return nil, err
	}
	return rep, nil
}
