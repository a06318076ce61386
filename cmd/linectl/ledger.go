package main

import (
	"context"
	"errors"

	"github.com/tracline/tracline/tracecode"
)

func cmdVerify(ctx context.Context, c *cli, args []string) error  { return errors.New("not built yet") }
func cmdBackup(ctx context.Context, c *cli, args []string) error  { return errors.New("not built yet") }
func cmdRestore(ctx context.Context, c *cli, args []string) error { return errors.New("not built yet") }
func benchLedger(ctx context.Context, c *cli, args []string) error {
	return errors.New("not built yet")
}

// openPoolStore opens the ledger in dir as the pools' store; the returned
// func closes it.
func openPoolStore(ctx context.Context, c *cli, dir string) (tracecode.PoolStore, func() error, error) {
	return nil, nil, errors.New("not built yet")
}
