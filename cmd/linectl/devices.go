package main

import (
	"context"
	"errors"
)

func benchDevices(ctx context.Context, c *cli, args []string) error {
	return errors.New("not built yet")
}
