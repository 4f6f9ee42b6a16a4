// Package blueprints is the embedded catalog: one folder per vendor, one
// KEY/VERSION.yaml file per blueprint version, with that version's
// conformance vectors beside it (KEY/VERSION.vectors.yaml). It imports
// nothing of the engine: engine.NewCatalog(blueprints.FS) reads it.
package blueprints

import "embed"

// FS holds every catalog file.
//
//go:embed */*.yaml */*/*.yaml
var FS embed.FS
