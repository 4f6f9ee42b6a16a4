package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/blueprint-engine/blueprint/internal/service/store"
	"github.com/blueprint-engine/blueprint/runtime"
)

// Saved bindings let 'blueprint dlq replay --all --state DIR' re-drive
// dead letters with no other flag (DESIGN §5): send records, in the state,
// how it ran each integration it queued requests for (blueprint, variant,
// config, vendor URL), and replay reads it back. The config and the vendor
// URL are sealed (AES-256-GCM) with the key in STATE/secret.key (mode
// 0600, created on first use; the same key file serve uses), so no secret
// is ever written in clear text; the blueprint and the variant are not
// secret and stay readable.

const (
	bindingsFile = "bindings.json"
	keyFile      = "secret.key"
	// bindingsInfo separates this use of the state's key from serve's.
	bindingsInfo = "blueprint cli saved bindings v1"
)

// savedBinding is one integration as send ran it.
type savedBinding struct {
	// Blueprint is the catalog ref, or a blueprint file's absolute path.
	Blueprint string `json:"blueprint"`
	Variant   string `json:"variant"`
	// Catalog is send's --catalog, as an absolute path ("" the embedded).
	Catalog string `json:"catalog,omitempty"`
	// Sealed holds bindingSecrets, sealed for this integration's name.
	Sealed  []byte    `json:"sealed"`
	SavedAt time.Time `json:"saved_at"`
}

// bindingSecrets is what is sealed.
type bindingSecrets struct {
	Config       map[string]any `json:"config"`
	VendorURL    string         `json:"vendor_url,omitempty"`
	AllowPrivate bool           `json:"allow_private_addresses,omitempty"`
	MaxEventSize int            `json:"max_event_size,omitempty"`
}

// bindingsDoc is the file.
type bindingsDoc struct {
	Bindings map[string]savedBinding `json:"bindings"`
}

func sealer(state string, create bool) (*store.Sealer, error) {
	path := filepath.Join(state, keyFile)
	var key []byte
	var err error
	if create {
		key, err = store.LoadOrCreateKey(path)
	} else {
		key, err = store.LoadKey(path)
	}
	if err != nil {
		return nil, err
	}
	return store.NewSealer(key, bindingsInfo)
}

func readBindings(state string) (bindingsDoc, error) {
	doc := bindingsDoc{Bindings: map[string]savedBinding{}}
	b, err := os.ReadFile(filepath.Join(state, bindingsFile))
	if errors.Is(err, fs.ErrNotExist) {
		return doc, nil
	}
	if err != nil {
		return doc, err
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return doc, fmt.Errorf("%s: %w", filepath.Join(state, bindingsFile), err)
	}
	if doc.Bindings == nil {
		doc.Bindings = map[string]savedBinding{}
	}
	return doc, nil
}

// saveBinding records how an integration named name is run. The file is
// replaced whole (written to a temporary file, then renamed), mode 0600.
func saveBinding(state, catalog, name, ref, variant string, sec bindingSecrets) error {
	s, err := sealer(state, true)
	if err != nil {
		return err
	}
	plain, err := json.Marshal(sec)
	if err != nil {
		return err
	}
	sealed, err := s.Seal(name, plain)
	if err != nil {
		return err
	}
	if isFileRef(ref) {
		if abs, err := filepath.Abs(ref); err == nil {
			ref = abs
		}
	}
	doc, err := readBindings(state)
	if err != nil {
		doc = bindingsDoc{Bindings: map[string]savedBinding{}} // a damaged file is replaced
	}
	if catalog != "" {
		if abs, err := filepath.Abs(catalog); err == nil {
			catalog = abs
		}
	}
	doc.Bindings[name] = savedBinding{Blueprint: ref, Variant: variant, Catalog: catalog, Sealed: sealed, SavedAt: time.Now().UTC()}
	return writeBindings(state, doc)
}

// writeBindings replaces the state's bindings file with doc: written to a
// temporary file (mode 0600) and synced, then renamed into place.
func writeBindings(state string, doc bindingsDoc) error {
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(state, ".bindings-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	werr := tmp.Chmod(0o600)
	if werr == nil {
		_, werr = tmp.Write(append(out, '\n'))
	}
	if werr == nil {
		werr = tmp.Sync()
	}
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return werr
	}
	if err := os.Rename(tmp.Name(), filepath.Join(state, bindingsFile)); err != nil {
		return err
	}
	if d, err := os.Open(state); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}

// savedRef is the blueprint reference saved for an integration: a catalog
// entry with its version (the one its items were queued with, and named
// after, even once a newer one is in the catalog), a file as given.
func savedRef(in *runtime.Integration, ref string) string {
	if isFileRef(ref) {
		return ref
	}
	return in.Blueprint().Ref()
}

// loadBinding returns the saved binding of the integration named name and
// its opened secrets; ok is false when none was saved.
func loadBinding(state, name string) (sb savedBinding, sec bindingSecrets, ok bool, err error) {
	doc, err := readBindings(state)
	if err != nil {
		return sb, sec, false, err
	}
	sb, ok = doc.Bindings[name]
	if !ok {
		return sb, sec, false, nil
	}
	s, err := sealer(state, false)
	if err != nil {
		return sb, sec, false, err
	}
	plain, err := s.Open(name, sb.Sealed)
	if err != nil {
		return sb, sec, false, fmt.Errorf("the saved config of %s: %w", name, err)
	}
	d := json.NewDecoder(bytes.NewReader(plain))
	d.UseNumber()
	if err := d.Decode(&sec); err != nil {
		return sb, sec, false, fmt.Errorf("the saved config of %s: %w", name, err)
	}
	for k, v := range sec.Config {
		sec.Config[k] = numbers(v)
	}
	return sb, sec, true, nil
}

// numbers gives config values back the types parseConfig gives them: an
// integer int64, another number float64.
func numbers(v any) any {
	switch v := v.(type) {
	case json.Number:
		if i, err := v.Int64(); err == nil {
			return i
		}
		f, _ := v.Float64()
		return f
	case map[string]any:
		for k, e := range v {
			v[k] = numbers(e)
		}
	case []any:
		for i, e := range v {
			v[i] = numbers(e)
		}
	}
	return v
}
