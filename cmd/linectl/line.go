package main

import (
	"context"
	"errors"
)

func cmdDemo(ctx context.Context, c *cli, args []string) error   { return errors.New("not built yet") }
func cmdRun(ctx context.Context, c *cli, args []string) error    { return errors.New("not built yet") }
func benchLine(ctx context.Context, c *cli, args []string) error { return errors.New("not built yet") }
func benchSoak(ctx context.Context, c *cli, args []string) error { return errors.New("not built yet") }
