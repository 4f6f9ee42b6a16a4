package outbox

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Memory is a Queue held in memory: nothing survives the process. It is
// for tests and for programs that keep durability elsewhere.
type Memory struct {
	mu     sync.Mutex
	items  map[string]*Item
	leased map[string]bool
	closed bool
}

var _ Queue = (*Memory)(nil)

// NewMemory returns an empty in-memory queue.
func NewMemory() *Memory {
	return &Memory{items: map[string]*Item{}, leased: map[string]bool{}}
}

func cloneItem(it *Item) *Item {
	c := *it
	c.Event = slices.Clone(it.Event)
	return &c
}

// Enqueue implements Queue.
func (m *Memory) Enqueue(_ context.Context, items []*Item) ([]*Item, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	out := make([]*Item, len(items))
	now := time.Now()
	for i, it := range items {
		if old, ok := m.items[it.ID]; ok {
			out[i] = cloneItem(old)
			continue
		}
		c := cloneItem(it)
		if c.State == "" {
			c.State = Pending
		}
		for _, t := range []*time.Time{&c.CreatedAt, &c.NextAt, &c.UpdatedAt} {
			if t.IsZero() {
				*t = now
			}
		}
		m.items[c.ID] = c
		out[i] = cloneItem(c)
	}
	return out, nil
}

// Claim implements Queue.
func (m *Memory) Claim(_ context.Context, now time.Time, max int) ([]*Item, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	var due []*Item
	for id, it := range m.items {
		if it.State == Pending && !m.leased[id] && !it.NextAt.After(now) {
			due = append(due, it)
		}
	}
	sort.Slice(due, func(i, j int) bool {
		if !due[i].NextAt.Equal(due[j].NextAt) {
			return due[i].NextAt.Before(due[j].NextAt)
		}
		return due[i].ID < due[j].ID
	})
	if len(due) > max {
		due = due[:max]
	}
	out := make([]*Item, len(due))
	for i, it := range due {
		m.leased[it.ID] = true
		out[i] = cloneItem(it)
	}
	return out, nil
}

// Update implements Queue.
func (m *Memory) Update(_ context.Context, it *Item) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	if _, ok := m.items[it.ID]; !ok {
		return ErrNotFound
	}
	c := cloneItem(it)
	if c.State == Delivered {
		c.Event = nil
	}
	m.items[it.ID] = c
	delete(m.leased, it.ID)
	return nil
}

// Release implements Queue.
func (m *Memory) Release(_ context.Context, ids ...string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, id := range ids {
		delete(m.leased, id)
	}
	return nil
}

// Get implements Queue.
func (m *Memory) Get(_ context.Context, id string) (*Item, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	it, ok := m.items[id]
	if !ok {
		return nil, ErrNotFound
	}
	return cloneItem(it), nil
}

// List implements Queue.
func (m *Memory) List(_ context.Context, state State, cursor string, limit int) ([]*Item, string, error) {
	if limit <= 0 {
		limit = DefaultListLimit // as Bolt
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var all []*Item
	for _, it := range m.items {
		if it.State == state {
			all = append(all, it)
		}
	}
	sort.Slice(all, func(i, j int) bool {
		if !all[i].UpdatedAt.Equal(all[j].UpdatedAt) {
			return all[i].UpdatedAt.Before(all[j].UpdatedAt)
		}
		return all[i].ID < all[j].ID
	})
	// The cursor is the position (UpdatedAt, ID) of the last item listed:
	// the next page starts after it even if that item has since moved or
	// gone (as Bolt's).
	start := 0
	if cursor != "" {
		at, id, ok := strings.Cut(cursor, "|")
		t, err := time.Parse(time.RFC3339Nano, at)
		if !ok || err != nil {
			return nil, "", fmt.Errorf("outbox: list: invalid cursor %q", cursor)
		}
		start = sort.Search(len(all), func(i int) bool {
			u := all[i].UpdatedAt
			return u.After(t) || u.Equal(t) && all[i].ID > id
		})
	}
	var out []*Item
	next := ""
	for i := start; i < len(all) && len(out) < limit; i++ {
		out = append(out, cloneItem(all[i]))
		if len(out) == limit && i+1 < len(all) {
			next = all[i].UpdatedAt.UTC().Format(time.RFC3339Nano) + "|" + all[i].ID
		}
	}
	return out, next, nil
}

// Counts implements Queue.
func (m *Memory) Counts(context.Context) (map[State]int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[State]int{}
	for _, it := range m.items {
		out[it.State]++
	}
	return out, nil
}

// Replay implements Queue.
func (m *Memory) Replay(_ context.Context, ids []string, now time.Time) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for id, it := range m.items {
		if it.State != Dead || ids != nil && !slices.Contains(ids, id) {
			continue
		}
		it.State, it.Attempts, it.LastStatus, it.LastError = Pending, 0, 0, ""
		it.NextAt, it.UpdatedAt = now, now
		n++
	}
	return n, nil
}

// Purge implements Queue.
func (m *Memory) Purge(ctx context.Context, before time.Time, states ...State) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return 0, ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	sts, err := purgeStates(states)
	if err != nil {
		return 0, err
	}
	n := 0
	for id, it := range m.items {
		if slices.Contains(sts, it.State) && it.UpdatedAt.Before(before) {
			delete(m.items, id)
			n++
		}
	}
	return n, nil
}

// Close implements Queue.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	return nil
}
