package main

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/blueprint-engine/blueprint/internal/service/store"
)

// rekeyLockTimeout is how long rekey waits for the state's lock: a serve
// running on the state holds it for good, so waiting longer tells nothing.
const rekeyLockTimeout = 200 * time.Millisecond

// rekeyAfterCommit, when set (tests), runs after the state is committed
// under the new key and before the bindings and STATE/secret.key are
// replaced: a crash there must leave a state that the same command, run
// again, finishes.
var rekeyAfterCommit func() error

func (a *app) rekeyCmd() *cobra.Command {
	var state, keyFile, newKeyFile string
	cmd := &cobra.Command{
		Use:   "rekey --state DIR --new-key-file NEW [--secret-key-file OLD]",
		Short: "Seal every secret of a stopped serve's state again under a new key",
		Long: `Rotate the key that encrypts the secrets of a state at rest (source secret
and pipeline keys, secret config values of integrations, and the bindings
'blueprint send' saved in STATE/bindings.json). No blueprint serve may run on
the state: rekey refuses a state in use.

--new-key-file NEW is the new key: a file that does not exist is created
(mode 0600) with a new random key; an existing key file (64 hexadecimal
characters, mode 0600) is used as it is, never overwritten. --secret-key-file
OLD (default STATE/secret.key) is the current key, e.g.
--secret-key-file /etc/blueprint/secret.key --new-key-file /etc/blueprint/secret.key.next.

Every sealed value of STATE/service.db is opened with OLD and sealed with NEW
in one transaction: a failure or a crash before it commits leaves the state
as it was, under OLD. Then, when OLD is STATE/secret.key, the bindings are
sealed again and STATE/secret.key is replaced by a copy of NEW (written to a
temporary file, then renamed): the old key is not left in the state
directory. When OLD is elsewhere, it is not touched: start serve with
--secret-key-file NEW from now on and destroy OLD.

A crash after the commit leaves a state that only NEW opens (serve with the
old key refuses to start: SECRET_KEY_MISMATCH, naming the fingerprint of the
key it needs): run the same command again, it finishes the job. Run on a
state already under NEW, it changes nothing.

The sessions of the management API end (their tokens are signed with a key
derived from the secret key): users log in again. In Kafka mode, copy NEW to
every process with role process or deliver (their --secret-key-file), then
start the owner, which publishes every integration sealed with NEW, then
restart the others. See docs/service.md, "Rotating the secret key".

Exit status: 0 done (or nothing to do), 1 failed (the state is unchanged, or
run the command again as told), 2 usage.`,
		Example: `  blueprint serve rekey --state /tmp/bp-state --new-key-file /tmp/bp-state/next.key`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if state == "" {
				return usageErr("--state DIR is required")
			}
			if newKeyFile == "" {
				return usageErr("--new-key-file NEW is required: the file to hold the new key (created when absent)")
			}
			stateKey := filepath.Join(state, defaultKeyName)
			oldPath := keyFile
			if oldPath == "" {
				oldPath = stateKey
			}
			if sameFile(oldPath, newKeyFile) {
				return usageErr("--new-key-file %s is the current key file: give another path (the new key is created there)", newKeyFile)
			}
			dbPath := filepath.Join(state, "service.db")
			hasDB := exists(dbPath)
			hasBindings := exists(filepath.Join(state, bindingsFile))
			if !hasDB && !hasBindings {
				return &exitError{code: 1, err: fmt.Errorf("%s holds no state to rekey (no service.db, no %s)", state, bindingsFile)}
			}
			oldKey, err := store.LoadKey(oldPath)
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			_, statErr := os.Lstat(newKeyFile)
			created := errors.Is(statErr, fs.ErrNotExist)
			newKey, err := store.LoadOrCreateKey(newKeyFile)
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			// The state will be sealed under NEW: NEW must be on disk first.
			if err := store.SyncKeyFile(newKeyFile); err != nil {
				return &exitError{code: 1, err: fmt.Errorf("%w; nothing was changed", err)}
			}
			if created {
				fmt.Fprintf(a.stdout, "new key: created %s (fingerprint %s)\n", newKeyFile, store.KeyFingerprint(newKey))
			} else {
				fmt.Fprintf(a.stdout, "new key: %s (fingerprint %s)\n", newKeyFile, store.KeyFingerprint(newKey))
			}
			if hasDB {
				res, err := store.Rekey(dbPath, oldKey, newKey, rekeyLockTimeout)
				switch {
				case errors.Is(err, store.ErrInUse):
					return &exitError{code: 1, err: fmt.Errorf("%w; nothing was changed", err)}
				case errors.Is(err, store.ErrWrongKey):
					return &exitError{code: 1, err: fmt.Errorf("%s: %w; nothing was changed", oldPath, err)}
				case err != nil:
					return &exitError{code: 1, err: fmt.Errorf("%w; the state is unchanged, under its old key", err)}
				case res.AlreadyRekeyed:
					fmt.Fprintf(a.stdout, "state %s: already sealed with the new key, nothing changed\n", dbPath)
				default:
					fmt.Fprintf(a.stdout, "state %s: sealed again with the new key: %d sources, %d secret values in %d integration revisions\n", dbPath, res.Sources, res.SecretValues, res.Revisions)
				}
			}
			if rekeyAfterCommit != nil {
				if err := rekeyAfterCommit(); err != nil {
					return &exitError{code: 1, err: err}
				}
			}
			replaceDefault := sameFile(oldPath, stateKey)
			if hasBindings {
				if !replaceDefault {
					fmt.Fprintf(a.stdout, "bindings %s: left as they are: they are sealed with %s, which this rekey does not replace\n", filepath.Join(state, bindingsFile), stateKey)
				} else {
					n, err := rekeyBindings(state, oldKey, newKey)
					if err != nil {
						return &exitError{code: 1, err: fmt.Errorf("%w; %s still holds the old key: run the same command again", err, stateKey)}
					}
					fmt.Fprintf(a.stdout, "bindings %s: %d sealed again with the new key\n", filepath.Join(state, bindingsFile), n)
				}
			}
			switch {
			case replaceDefault && !bytes.Equal(oldKey, newKey):
				if err := store.ReplaceKey(stateKey, newKey); err != nil {
					return &exitError{code: 1, err: fmt.Errorf("%w; the state is sealed with the key in %s: run the same command again", err, newKeyFile)}
				}
				fmt.Fprintf(a.stdout, "key file %s: replaced by the new key (the old key is gone from it)\n", stateKey)
				fmt.Fprintf(a.stdout, "%s holds the same key: copy it to the processes with role process or deliver, then delete it or keep it as a backup\n", newKeyFile)
			case !replaceDefault:
				fmt.Fprintf(a.stdout, "start serve with --secret-key-file %s from now on; %s no longer opens this state: destroy it\n", newKeyFile, oldPath)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&state, "state", "", "`DIR` of the state to rekey (no serve running on it)")
	cmd.Flags().StringVar(&keyFile, "secret-key-file", "", "`OLD` key file, the state's current key (default STATE/secret.key)")
	cmd.Flags().StringVar(&newKeyFile, "new-key-file", "", "`NEW` key file: created 0600 with a new random key when absent, used as it is (never overwritten) when it holds a key")
	return cmd
}

// defaultKeyName is the default key file's name in the state directory.
const defaultKeyName = keyFile

// rekeyBindings seals the saved bindings of state again with newKey, each
// one opened with oldKey (or left as it is when newKey opens it already:
// a rekey run again). Nothing is written unless every binding opens; the
// file is replaced whole. It returns how many it sealed again.
func rekeyBindings(state string, oldKey, newKey []byte) (int, error) {
	doc, err := readBindings(state)
	if err != nil {
		return 0, err
	}
	oldS, err := store.NewSealer(oldKey, bindingsInfo)
	if err != nil {
		return 0, err
	}
	newS, err := store.NewSealer(newKey, bindingsInfo)
	if err != nil {
		return 0, err
	}
	n := 0
	for name, b := range doc.Bindings {
		if _, err := newS.Open(name, b.Sealed); err == nil {
			continue
		}
		plain, err := oldS.Open(name, b.Sealed)
		if err != nil {
			return 0, fmt.Errorf("the saved binding of %s opens with neither key: %w (bindings unchanged)", name, err)
		}
		if b.Sealed, err = newS.Seal(name, plain); err != nil {
			return 0, err
		}
		doc.Bindings[name] = b
		n++
	}
	if n == 0 {
		return 0, nil
	}
	return n, writeBindings(state, doc)
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// sameFile reports whether a and b name one file: the same file when both
// exist, else the same absolute path.
func sameFile(a, b string) bool {
	fa, ea := os.Stat(a)
	fb, eb := os.Stat(b)
	if ea == nil && eb == nil {
		return os.SameFile(fa, fb)
	}
	aa, err1 := filepath.Abs(a)
	bb, err2 := filepath.Abs(b)
	return err1 == nil && err2 == nil && aa == bb
}
