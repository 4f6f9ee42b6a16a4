package kafka

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/blueprint-engine/blueprint/runtime"
	"github.com/blueprint-engine/blueprint/runtime/delivery"
)

// Registry is where a role finds the integrations: their current revision
// bound (Binding.Name is the integration ID). The processor evaluates every
// binding; the deliverer rebuilds each request with the binding current at
// send time. It must be safe for concurrent use.
type Registry interface {
	Bindings() []delivery.Binding
	Integration(id string) (*runtime.Integration, bool)
}

// ConfigWaiter is a Registry fed from IntegrationsTopic. Before it
// evaluates raw-events records, the processor calls WaitConfig with the
// highest ConfigHeader among them: it returns once the registry has
// applied the topic up to that offset and every enabled integration on it
// is bound (else an event would be evaluated without an integration it
// should reach), or with ctx's error and the reason it is still waiting.
// A deliverer asks HasConfig before it sends a request whose event names
// a config offset, and holds the request while it is false.
type ConfigWaiter interface {
	WaitConfig(ctx context.Context, offset int64) error
	HasConfig(offset int64) bool
}

// StaticRegistry is a Registry whose bindings are swapped whole: by Set (a
// service calls it after every install, patch or delete of its own state),
// or by SetAt (a service following IntegrationsTopic). It implements
// ConfigWaiter; filled by Set, it has nothing to wait for.
type StaticRegistry struct {
	mu sync.RWMutex
	bs []delivery.Binding
	by map[string]*runtime.Integration

	followed bool          // filled by SetAt
	at       int64         // the topic's offset applied up to (exclusive)
	blocked  error         // why an enabled integration is not bound, or nil
	changed  chan struct{} // closed and replaced at each SetAt
}

// NewRegistry returns a StaticRegistry holding bs.
func NewRegistry(bs ...delivery.Binding) *StaticRegistry {
	r := &StaticRegistry{changed: make(chan struct{})}
	r.Set(bs...)
	return r
}

// Set replaces the bindings.
func (r *StaticRegistry) Set(bs ...delivery.Binding) {
	bs, by := sorted(bs)
	r.mu.Lock()
	r.bs, r.by = bs, by
	r.mu.Unlock()
}

// SetAt replaces the bindings with those of IntegrationsTopic applied up
// to offset at (exclusive). blocked, when not nil, says why an enabled
// integration of the topic could not be bound here: WaitConfig then waits
// (the processor evaluates nothing) until a later SetAt clears it.
func (r *StaticRegistry) SetAt(at int64, blocked error, bs ...delivery.Binding) {
	bs, by := sorted(bs)
	r.mu.Lock()
	r.bs, r.by = bs, by
	r.followed, r.at, r.blocked = true, at, blocked
	if r.changed != nil {
		close(r.changed)
	}
	r.changed = make(chan struct{})
	r.mu.Unlock()
}

// ConfigState is what SetAt last said: whether the registry follows the
// topic, the offset applied up to, and why it is blocked (nil: it is not).
func (r *StaticRegistry) ConfigState() (followed bool, at int64, blocked error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.followed, r.at, r.blocked
}

// HasConfig implements ConfigWaiter: whether the topic is applied up to
// offset (always, for a registry filled by Set).
func (r *StaticRegistry) HasConfig(offset int64) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return !r.followed || r.at >= offset
}

// WaitConfig implements ConfigWaiter.
func (r *StaticRegistry) WaitConfig(ctx context.Context, offset int64) error {
	for {
		r.mu.RLock()
		followed, at, blocked, changed := r.followed, r.at, r.blocked, r.changed
		r.mu.RUnlock()
		var why error
		switch {
		case !followed:
			return nil
		case at < offset:
			why = fmt.Errorf("the %s topic is applied up to offset %d here, and the events need %d", IntegrationsTopic, at, offset)
		case blocked != nil:
			why = blocked
		default:
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %w", ctx.Err(), why)
		case <-changed:
		}
	}
}

func sorted(bs []delivery.Binding) ([]delivery.Binding, map[string]*runtime.Integration) {
	bs = slices.Clone(bs)
	slices.SortFunc(bs, func(a, b delivery.Binding) int { return strings.Compare(a.Name, b.Name) })
	by := make(map[string]*runtime.Integration, len(bs))
	for _, b := range bs {
		by[b.Name] = b.Integration
	}
	return bs, by
}

// Bindings implements Registry.
func (r *StaticRegistry) Bindings() []delivery.Binding {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.bs
}

// Integration implements Registry.
func (r *StaticRegistry) Integration(id string) (*runtime.Integration, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	in, ok := r.by[id]
	return in, ok
}
