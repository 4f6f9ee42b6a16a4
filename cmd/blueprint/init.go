package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/spf13/cobra"
)

// categories are the catalog categories (schemas/blueprint.schema.json).
var categories = []string{"advertising", "analytics", "attribution", "cdp", "cloud_storage", "other"}

var keyRE = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

func (a *app) initCmd() *cobra.Command {
	var dir, name, category string
	var force bool
	cmd := &cobra.Command{
		Use:   "init KEY",
		Short: "Write a scaffold blueprint and its conformance vectors, ready to edit",
		Long: `Write DIR/KEY/0.1.0.yaml, a working blueprint to start from (config, hosts,
consent, values, a request with its body, an event map; each block with a
comment naming its section of docs/authoring.md), and DIR/KEY/0.1.0.vectors.yaml,
its conformance vectors: an event delivered, an unmapped event skipped, a
missing required field rejected, consent denied. Both pass as written:
"blueprint validate" and "blueprint test" on them succeed.

KEY is lower-case letters, digits and _, starting with a letter. DIR is
./blueprints when that folder exists, else the current folder. An existing
file is never overwritten unless --force is given. Exit 0 when written, 1
when a file exists or cannot be written, 2 on usage errors.`,
		Example: `  blueprint init acme --dir /tmp/my-blueprints
  # Name and category of your own, over files that exist:
  blueprint init acme_ads --dir /tmp/my-blueprints --name "Acme Ads" --category advertising --force`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			key := args[0]
			if !keyRE.MatchString(key) {
				return usageErr("KEY %q: use lower-case letters, digits and _, starting with a letter (e.g. acme_ads)", key)
			}
			if !slices.Contains(categories, category) {
				return usageErr("--category %q: expected one of %s", category, strings.Join(categories, ", "))
			}
			if name == "" {
				name = displayName(key)
			}
			if dir == "" {
				dir = "."
				if st, err := os.Stat("blueprints"); err == nil && st.IsDir() {
					dir = "blueprints"
				}
			}
			folder := filepath.Join(dir, key)
			bpFile := filepath.Join(folder, "0.1.0.yaml")
			vecFile := filepath.Join(folder, "0.1.0.vectors.yaml")
			if !force {
				for _, f := range []string{bpFile, vecFile} {
					if _, err := os.Lstat(f); err == nil || !errors.Is(err, fs.ErrNotExist) {
						return &exitError{code: 1, err: fmt.Errorf("%s already exists (--force overwrites it)", f)}
					}
				}
			}
			bpSrc, vecSrc := scaffold(key, name, category, schemaRef(folder))
			if err := os.MkdirAll(folder, 0o755); err != nil {
				return &exitError{code: 1, err: err}
			}
			for _, w := range []struct{ file, src string }{{bpFile, bpSrc}, {vecFile, vecSrc}} {
				if err := os.WriteFile(w.file, []byte(w.src), 0o644); err != nil {
					return &exitError{code: 1, err: err}
				}
				fmt.Fprintln(a.stdout, "wrote", w.file)
			}
			bq, vq := shellQuote(bpFile), shellQuote(vecFile)
			fmt.Fprintf(a.stdout, `
Next, edit %[1]s for your vendor (the language: docs/authoring.md),
keep %[2]s in step (docs/conformance.md), and run:

  blueprint validate %[1]s
  blueprint test %[2]s
  blueprint docs %[1]s
  echo '{"type":"track","event":"Order Completed","timestamp":"2026-03-01T07:00:00Z","context":{"consent":{%[3]q:true}},"properties":{"order_id":"o-1","revenue":25.5,"currency":"USD"}}' | \
    blueprint eval --blueprint %[1]s --config account_id=acc-123 --config api_key=sk-test-123 -
`, bq, vq, consentFor(category))
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "write into `DIR`/KEY/ (default: ./blueprints if it exists, else .)")
	cmd.Flags().StringVar(&name, "name", "", "the vendor's display `NAME` (default: from KEY, acme_ads is Acme Ads)")
	cmd.Flags().StringVar(&category, "category", "other", "catalog `CATEGORY`: "+strings.Join(categories, ", "))
	cmd.Flags().BoolVar(&force, "force", false, "overwrite existing files")
	return cmd
}

// displayName makes a display name of a key: acme_ads is Acme Ads.
func displayName(key string) string {
	words := strings.FieldsFunc(key, func(r rune) bool { return r == '_' })
	for i, w := range words {
		words[i] = strings.ToUpper(w[:1]) + w[1:]
	}
	return strings.Join(words, " ")
}

// consentFor is the consent category the scaffold gates on.
func consentFor(category string) string {
	if category == "analytics" {
		return "analytics"
	}
	return "advertising"
}

// schemaRef finds schemas/blueprint.schema.json in folder or a parent, for
// the editor's yaml-language-server line, as a path relative to folder; ""
// when there is none.
func schemaRef(folder string) string {
	abs, err := filepath.Abs(folder)
	if err != nil {
		return ""
	}
	for d := abs; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "schemas", "blueprint.schema.json")); err == nil {
			rel, err := filepath.Rel(abs, filepath.Join(d, "schemas"))
			if err != nil {
				return ""
			}
			return filepath.ToSlash(rel) + "/"
		}
		if filepath.Dir(d) == d {
			return ""
		}
	}
}

// shellQuote quotes a path for a command line when it needs it.
func shellQuote(s string) string {
	if regexp.MustCompile(`^[A-Za-z0-9_./-]+$`).MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// yamlString writes text as a YAML (JSON) double-quoted scalar.
func yamlString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// scaffold returns the blueprint and its vectors. schemas is the folder of
// the JSON Schemas relative to the files ("" when unknown).
func scaffold(key, name, category, schemas string) (blueprint, vectors string) {
	bpSchema, vecSchema := "", ""
	if schemas != "" {
		bpSchema = "# yaml-language-server: $schema=" + schemas + "blueprint.schema.json\n#\n"
		vecSchema = "# yaml-language-server: $schema=" + schemas + "conformance.schema.json\n#\n"
	}
	r := strings.NewReplacer(
		"{{BP_SCHEMA}}", bpSchema, "{{VEC_SCHEMA}}", vecSchema,
		"{{KEY}}", key, "{{NAME}}", yamlString(name), "{{TITLE}}", strings.ReplaceAll(name, "\n", " "),
		"{{DESCRIPTION}}", yamlString("Send completed orders to "+name+" as purchase conversions."),
		"{{CATEGORY}}", category, "{{CONSENT}}", consentFor(category),
	)
	return r.Replace(scaffoldBlueprint), r.Replace(scaffoldVectors)
}

const scaffoldBlueprint = `{{BP_SCHEMA}}# {{TITLE}} 0.1.0, written by "blueprint init" as a starting point. It
# compiles, and 0.1.0.vectors.yaml beside it passes: change them together.
# The example vendor API (api.example.com) stands for yours. Each block names
# the section of docs/authoring.md that explains it.

# Metadata (docs/authoring.md#metadata). In a catalog the file is
# KEY/VERSION.yaml: keep key and version in step with its path, and bump the
# version as "blueprint diff" says (docs/authoring.md#versions).
key: {{KEY}}
version: 0.1.0
name: {{NAME}}
description: {{DESCRIPTION}}
category: {{CATEGORY}}
status: alpha
website: https://www.example.com/

# What an install must give (docs/authoring.md#config). Unknown keys are
# refused; a secret is never printed, logged or echoed in an error.
config:
  account_id:
    type: string
    label: Account ID
    required: true
    pattern: ^[a-z0-9-]+$
    placeholder: acc-123
    help_text: From the vendor's account settings.
  api_key:
    type: secret
    label: API Key
    required: true
    placeholder: sk-...

# Every request URL must be on one of these hosts (docs/authoring.md#hosts).
hosts:
  - api.example.com

# The consent that gates every event (docs/authoring.md#consent): the first
# path holding true or false decides; when none does, the event is skipped
# (consent_denied).
consent:
  category: {{CONSENT}}
  from:
    - context.consent.{{CONSENT}}
    - context.consent.categories.{{CONSENT}}
  when_missing: deny

# Named values, computed at most once per event and shared by fields
# (docs/authoring.md#identity-and-values). Where a value comes from:
# docs/authoring.md#sources; the rule it follows: docs/authoring.md#types.
identity:
  user_id:
    description: The platform's user id.
    from: [user_id, userId]
    type: string

values:
  time:
    description: When the event happened, in UTC to the second.
    from: timestamp
    type: time
  currency:
    description: ISO 4217 code of the event's amounts.
    from: properties.currency
    type: currency

# The vendor's HTTP requests (docs/authoring.md#requests) and their bodies
# (docs/authoring.md#body-fields). A required field that is absent rejects
# the event (missing_required_field); an absent optional one is left out.
# How the vendor's answers are read: docs/authoring.md#vendor-responses.
requests:
  conversion:
    description: Record one purchase.
    method: POST
    url: https://api.example.com/v1/accounts/{config.account_id}/conversions
    auth:
      type: bearer
      token: "{config.api_key}"
    body:
      order_id:
        from: properties.order_id
        type: id
        required: true
      event:
        value: vendor_event
      amount:
        from: [properties.revenue, properties.total]
        type: decimal
        currency: currency
        required: true
      currency:
        value: currency
        required: true
      occurred_at:
        value: time
        required: true
      user_id:
        value: user_id
      items:
        from: properties.products
        type: array
        items:
          sku:
            from: [sku, product_id]
            type: string
            required: true
          quantity:
            from: quantity
            type: integer
            min: 1
            default: 1
          price:
            from: price
            type: decimal
            currency: currency

# Which source events become which vendor events (docs/authoring.md#events);
# any other event is skipped (event_not_mapped). Variants
# (docs/authoring.md#variants) add mappings for some installs.
events:
  Order Completed:
    description: A completed order becomes a purchase conversion.
    vendor_event: purchase
    request: conversion
`

const scaffoldVectors = `{{VEC_SCHEMA}}# Conformance vectors for {{KEY}} 0.1.0 (docs/conformance.md), written by
# "blueprint init": one case per outcome. Add a case for every rule you write,
# and run: blueprint test THIS_FILE
blueprint_file: ./0.1.0.yaml
config: {account_id: acc-123, api_key: sk-test-123}
cases:
  - name: order completed becomes a purchase conversion
    event:
      type: track
      event: Order Completed
      user_id: u-1
      timestamp: "2026-03-01T07:00:00.250Z"
      context: {consent: {{{CONSENT}}: true}}
      properties:
        order_id: o-1
        revenue: 25.5
        currency: usd
        products: [{sku: S-1, price: 12.75, quantity: 2}]
    expect:
      outcome: deliver
      warnings: []
      requests:
        - method: POST
          url: https://api.example.com/v1/accounts/acc-123/conversions
          headers: {Authorization: Bearer sk-test-123, Content-Type: application/json}
          body:
            order_id: o-1
            event: purchase
            amount: 25.50
            currency: USD
            occurred_at: "2026-03-01T07:00:00Z"
            user_id: u-1
            items: [{sku: S-1, quantity: 2, price: 12.75}]

  - name: an event the blueprint does not map is skipped
    event: {type: track, event: Product Viewed, context: {consent: {{{CONSENT}}: true}}, properties: {sku: S-1}}
    expect: {outcome: skip, reason: event_not_mapped}

  - name: an order without order_id is rejected, naming the field
    event:
      type: track
      event: Order Completed
      timestamp: "2026-03-01T07:00:00Z"
      context: {consent: {{{CONSENT}}: true}}
      properties: {revenue: 25.5, currency: USD}
    expect: {outcome: reject, reason: missing_required_field, fields: [order_id]}

  - name: an order whose consent is refused is skipped
    event:
      type: track
      event: Order Completed
      timestamp: "2026-03-01T07:00:00Z"
      context: {consent: {{{CONSENT}}: false}}
      properties: {order_id: o-1, revenue: 25.5, currency: USD}
    expect: {outcome: skip, reason: consent_denied}

  - name: an order without any consent decision is skipped (when_missing deny)
    event:
      type: track
      event: Order Completed
      timestamp: "2026-03-01T07:00:00Z"
      properties: {order_id: o-1, revenue: 25.5, currency: USD}
    expect: {outcome: skip, reason: consent_denied}

  - name: an install without api_key is refused
    config: {account_id: acc-123}
    event: {type: track, event: Order Completed}
    expect: {outcome: reject, reason: invalid_config, fields: [api_key]}
`
