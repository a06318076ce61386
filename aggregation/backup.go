package aggregation

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
)

// Backup writes a consistent snapshot of the whole ledger to w in Badger's
// backup stream format. Writers may go on meanwhile.
func (s *Store) Backup(ctx context.Context, w io.Writer) error {
	s.mu.RLock()
	closed := s.closed
	s.mu.RUnlock()
	if closed {
		return ErrClosed
	}
	if err := s.caughtUp(); err != nil {
		return fmt.Errorf("ledger backup: %w", err)
	}
	if _, err := s.db.Backup(w, 0); err != nil {
		return fmt.Errorf("ledger backup: %w", err)
	}
	return nil
}

// Restore loads a backup made by Backup into dir, which must be empty or
// absent, and checks that the result opens with this schema. Run Verify
// afterwards to prove the restored ledger.
func Restore(ctx context.Context, dir string, r io.Reader, opts Options) error {
	if dir == "" {
		return errors.New("restore: data directory is empty")
	}
	if ents, err := os.ReadDir(dir); err == nil && len(ents) > 0 {
		return fmt.Errorf("restore: %s is not empty (restore only into a fresh directory)", dir)
	}
	s, err := Open(dir, opts)
	if err != nil {
		return err
	}
	// The committer is idle: nothing else writes while Load runs.
	if err := s.db.Load(r, 256); err != nil {
		s.Close()
		return fmt.Errorf("restore into %s: %w", dir, err)
	}
	if err := s.Close(); err != nil {
		return err
	}
	s, err = Open(dir, opts) // reload caches and check the schema from the restored data
	if err != nil {
		return fmt.Errorf("restore into %s: restored data does not open: %w", dir, err)
	}
	return s.Close()
}
