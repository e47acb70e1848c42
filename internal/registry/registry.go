// Package registry holds named factories, the way backends and benchmarks make themselves available by name from
// their packages' init functions.
package registry

import (
	"fmt"
	"sort"
	"sync"
)

// Registry maps names to values of type F; it is safe for concurrent use.
type Registry[F any] struct {
	kind string
	mu   sync.Mutex
	m    map[string]F
}

// New returns an empty registry; kind names what it holds in errors ("backend", "benchmark").
func New[F any](kind string) *Registry[F] {
	return &Registry[F]{kind: kind, m: map[string]F{}}
}

// Register adds f under name. A duplicate name panics: it is a programming error, found at start-up.
func (r *Registry[F]) Register(name string, f F) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.m[name]; dup {
		panic(fmt.Sprintf("registry: duplicate %s %q", r.kind, name))
	}
	r.m[name] = f
}

// Lookup returns the value registered under name, or an error naming the known ones.
func (r *Registry[F]) Lookup(name string) (F, error) {
	r.mu.Lock()
	f, ok := r.m[name]
	r.mu.Unlock()
	if !ok {
		return f, fmt.Errorf("unknown %s %q (known: %v)", r.kind, name, r.Names())
	}
	return f, nil
}

// Names lists the registered names in sorted order.
func (r *Registry[F]) Names() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	names := make([]string, 0, len(r.m))
	for n := range r.m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
