// Package schemas embeds the JSON Schemas (draft 2020-12) of the blueprint
// format, the conformance vector format and the source event. They are the
// single source of truth: the compiler and the conformance loader validate
// against them, and editors use them through the
// "# yaml-language-server: $schema=..." line.
package schemas

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v5"
)

//go:embed *.schema.json
var FS embed.FS

// BaseURL is the $id prefix of every schema.
const BaseURL = "https://blueprint-engine.dev/schemas/"

// Schema names.
const (
	Blueprint   = "blueprint.schema.json"
	Conformance = "conformance.schema.json"
	Event       = "event.schema.json"
)

var (
	mu       sync.Mutex
	compiled = map[string]*jsonschema.Schema{}
	docs     = map[string]map[string]any{}
)

// Compile returns the compiled schema of that name. Only the embedded
// schemas can be loaded: any other reference is refused, so validation
// never touches the network or the disk.
func Compile(name string) (*jsonschema.Schema, error) {
	mu.Lock()
	defer mu.Unlock()
	if s := compiled[name]; s != nil {
		return s, nil
	}
	c := jsonschema.NewCompiler()
	c.Draft = jsonschema.Draft2020
	c.LoadURL = func(url string) (io.ReadCloser, error) {
		if rest, ok := strings.CutPrefix(url, BaseURL); ok {
			if b, err := FS.ReadFile(rest); err == nil {
				return io.NopCloser(bytes.NewReader(b)), nil
			}
		}
		return nil, fmt.Errorf("schema %s is not embedded; only %s* can be loaded", url, BaseURL)
	}
	s, err := c.Compile(BaseURL + name)
	if err != nil {
		return nil, err
	}
	compiled[name] = s
	return s, nil
}

// MustCompile is Compile for the embedded schemas, which are known to
// compile (a test proves it).
func MustCompile(name string) *jsonschema.Schema {
	s, err := Compile(name)
	if err != nil {
		panic(err)
	}
	return s
}

// Doc returns the parsed JSON of a schema, for reading the keys it allows.
func Doc(name string) map[string]any {
	mu.Lock()
	defer mu.Unlock()
	if d := docs[name]; d != nil {
		return d
	}
	b, err := FS.ReadFile(name)
	if err != nil {
		return nil
	}
	var d map[string]any
	if json.Unmarshal(b, &d) != nil {
		return nil
	}
	docs[name] = d
	return d
}
