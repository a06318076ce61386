package main

import (
	"context"
	"errors"
)

func cmdVerify(ctx context.Context, c *cli, args []string) error  { return errors.New("not built yet") }
func cmdBackup(ctx context.Context, c *cli, args []string) error  { return errors.New("not built yet") }
func cmdRestore(ctx context.Context, c *cli, args []string) error { return errors.New("not built yet") }
func benchLedger(ctx context.Context, c *cli, args []string) error {
	return errors.New("not built yet")
}
