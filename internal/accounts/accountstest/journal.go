// Package accountstest holds an in-memory accounts.Journal that records
// every entry, for tests of accounts and its callers.
package accountstest

import (
	"context"
	"errors"
	"sort"
	"strings"
	"sync"

	"github.com/tracline/tracline/internal/accounts"
)

// Recorded is one journaled entry with its user.
type Recorded struct {
	accounts.Entry
	User string
}

// Journal is an in-memory accounts.Journal.
type Journal struct {
	mu      sync.Mutex
	Entries []Recorded
	meta    map[string]string
	// Fail, when set, makes Record fail (a ledger that is not writable).
	Fail bool
}

// Record implements accounts.Journal.
func (j *Journal) Record(ctx context.Context, e accounts.Entry, user string) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.Fail {
		return errors.New("journal not writable")
	}
	if j.meta == nil {
		j.meta = map[string]string{}
	}
	j.Entries = append(j.Entries, Recorded{Entry: e, User: user})
	if e.Key != "" {
		if e.Value == "" {
			delete(j.meta, e.Key)
		} else {
			j.meta[e.Key] = e.Value
		}
	}
	return nil
}

// MetaPrefix implements accounts.Journal.
func (j *Journal) MetaPrefix(ctx context.Context, prefix string, fn func(key, value string) error) error {
	j.mu.Lock()
	var keys []string
	for k := range j.meta {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	vals := make([]string, len(keys))
	for i, k := range keys {
		vals[i] = j.meta[k]
	}
	j.mu.Unlock()
	for i, k := range keys {
		if err := fn(k, vals[i]); err != nil {
			return err
		}
	}
	return nil
}

// Len is the number of entries journaled.
func (j *Journal) Len() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return len(j.Entries)
}

// Types lists the entries' types in order.
func (j *Journal) Types() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	out := make([]string, len(j.Entries))
	for i, e := range j.Entries {
		out[i] = e.Type + ":" + e.User
	}
	return out
}
