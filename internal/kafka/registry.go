package kafka

import (
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

// StaticRegistry is a Registry whose bindings are swapped whole by Set
// (a service calls it after every install, patch or delete).
type StaticRegistry struct {
	mu sync.RWMutex
	bs []delivery.Binding
	by map[string]*runtime.Integration
}

// NewRegistry returns a StaticRegistry holding bs.
func NewRegistry(bs ...delivery.Binding) *StaticRegistry {
	r := &StaticRegistry{}
	r.Set(bs...)
	return r
}

// Set replaces the bindings.
func (r *StaticRegistry) Set(bs ...delivery.Binding) {
	bs = slices.Clone(bs)
	slices.SortFunc(bs, func(a, b delivery.Binding) int { return strings.Compare(a.Name, b.Name) })
	by := make(map[string]*runtime.Integration, len(bs))
	for _, b := range bs {
		by[b.Name] = b.Integration
	}
	r.mu.Lock()
	r.bs, r.by = bs, by
	r.mu.Unlock()
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
