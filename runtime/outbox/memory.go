package outbox

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Memory is a Store held in memory: nothing survives the process. It is
// for tests and for programs that keep durability elsewhere. It passes
// the same contract tests as Bolt (package queuetest).
type Memory struct {
	mu     sync.Mutex
	items  map[string]*Item
	leased map[string]bool
	closed bool
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty in-memory queue.
func NewMemory() *Memory {
	return &Memory{items: map[string]*Item{}, leased: map[string]bool{}}
}

func cloneItem(it *Item) *Item {
	c := *it
	c.Event = slices.Clone(it.Event)
	return &c
}

// lock takes the lock, or says why the call cannot start (closed, or ctx
// done); on an error the lock is not held.
func (m *Memory) lock(ctx context.Context) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		m.mu.Unlock()
		return err
	}
	return nil
}

// Enqueue implements Queue.
func (m *Memory) Enqueue(ctx context.Context, items []*Item) ([]*Item, error) {
	if err := m.lock(ctx); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	fresh, err := prepareAll(items, time.Now().UTC())
	if err != nil {
		return nil, err
	}
	out := make([]*Item, len(items))
	for i, p := range fresh {
		if old, ok := m.items[p.ID]; ok {
			out[i] = cloneItem(old)
			continue
		}
		m.items[p.ID] = p
		out[i] = cloneItem(p)
	}
	return out, nil
}

// Claim implements Queue.
func (m *Memory) Claim(ctx context.Context, now time.Time, max int) ([]*Item, error) {
	if err := m.lock(ctx); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	if max <= 0 {
		return nil, nil
	}
	if now.IsZero() {
		now = time.Now()
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
func (m *Memory) Update(ctx context.Context, item *Item) error {
	if item != nil && item.ID == "" {
		return errors.New("outbox: update: empty item ID")
	}
	u, err := prepareUpdate(item, time.Now().UTC())
	if err != nil {
		return err
	}
	if err := m.lock(ctx); err != nil {
		return err
	}
	defer m.mu.Unlock()
	old, ok := m.items[u.ID]
	if !ok {
		return fmt.Errorf("%w: %s", ErrNotFound, u.ID)
	}
	n, err := updated(old, u)
	if err != nil {
		return err
	}
	m.items[u.ID] = n
	delete(m.leased, u.ID)
	return nil
}

// Release implements Queue.
func (m *Memory) Release(ctx context.Context, ids ...string) error {
	if err := m.lock(ctx); err != nil {
		return err
	}
	defer m.mu.Unlock()
	for _, id := range ids {
		delete(m.leased, id)
	}
	return nil
}

// Get implements Store.
func (m *Memory) Get(ctx context.Context, id string) (*Item, error) {
	if err := m.lock(ctx); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	it, ok := m.items[id]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	return cloneItem(it), nil
}

// List implements Store.
func (m *Memory) List(ctx context.Context, state State, cursor string, limit int) ([]*Item, string, error) {
	if !knownState(state) {
		return nil, "", fmt.Errorf("outbox: list: unknown state %q", state)
	}
	if limit <= 0 {
		limit = DefaultListLimit // as Bolt
	}
	// The cursor is the position (UpdatedAt, ID) of the last item listed:
	// the next page starts after it even if that item has since moved or
	// gone (as Bolt's).
	var (
		after   time.Time
		afterID string
	)
	if cursor != "" {
		at, id, ok := strings.Cut(cursor, "|")
		t, err := time.Parse(time.RFC3339Nano, at)
		if !ok || err != nil || id == "" {
			return nil, "", fmt.Errorf("outbox: list: invalid cursor %q", cursor)
		}
		after, afterID = t, id
	}
	if err := m.lock(ctx); err != nil {
		return nil, "", err
	}
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
	start := 0
	if afterID != "" {
		start = sort.Search(len(all), func(i int) bool {
			u := all[i].UpdatedAt
			return u.After(after) || u.Equal(after) && all[i].ID > afterID
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

// Counts implements Store.
func (m *Memory) Counts(ctx context.Context) (map[State]int, error) {
	if err := m.lock(ctx); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	out := make(map[State]int, len(states))
	for _, s := range states {
		out[s] = 0
	}
	for _, it := range m.items {
		out[it.State]++
	}
	return out, nil
}

// Replay implements Store.
func (m *Memory) Replay(ctx context.Context, ids []string, now time.Time) (int, error) {
	if err := m.lock(ctx); err != nil {
		return 0, err
	}
	defer m.mu.Unlock()
	if now.IsZero() {
		now = time.Now()
	}
	now = now.UTC()
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
	if err := m.lock(ctx); err != nil {
		return 0, err
	}
	defer m.mu.Unlock()
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

// Remove implements Store.
func (m *Memory) Remove(ctx context.Context, ids ...string) (int, error) {
	if err := m.lock(ctx); err != nil {
		return 0, err
	}
	defer m.mu.Unlock()
	n := 0
	for _, id := range ids {
		if _, ok := m.items[id]; ok {
			delete(m.items, id)
			delete(m.leased, id)
			n++
		}
	}
	return n, nil
}

// Close implements Queue. Every later call returns ErrClosed.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	m.closed = true
	clear(m.leased)
	return nil
}
