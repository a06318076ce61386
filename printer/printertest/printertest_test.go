package printertest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/tracline/tracline/printer"
	"github.com/tracline/tracline/tracecode"
)

func TestCoderFake(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(0, 0)
	c := NewCoder(0)
	if err := c.Send(ctx, []tracecode.Code{"A", "B", "C", "D"}); err != nil {
		t.Fatal(err)
	}
	if code, ok := c.PrintNext(now); !ok || code != "A" {
		t.Fatalf("PrintNext = %s %v", code, ok)
	}
	c.Reprint(now, "A")
	if unc := c.Lose(now, 1); !slices.Equal(unc, []tracecode.Code{"B"}) {
		t.Fatalf("Lose = %v", unc)
	}
	res, err := c.Flush(ctx)
	if err != nil || !slices.Equal(res.Unconfirmed, []tracecode.Code{"C", "D"}) {
		t.Fatalf("Flush = %+v %v", res, err)
	}
	want := []printer.EventKind{printer.EventPrinted, printer.EventPrinted, printer.EventGap}
	for i, k := range want {
		if ev := <-c.Events(); ev.Kind != k {
			t.Fatalf("event %d = %v, want %v", i, ev.Kind, k)
		}
	}
	c.SendErr = errors.New("boom")
	if err := c.Send(ctx, []tracecode.Code{"E"}); err == nil || len(c.Pending()) != 0 {
		t.Fatal("SendErr ignored")
	}
	c.Close()
	c.Close()
	if _, ok := <-c.Events(); ok {
		t.Fatal("events open after Close")
	}
	var l Labeler
	l.PrintLabel(ctx, printer.Label{Code: "X"})
	if len(l.Labels()) != 1 {
		t.Fatal("label not recorded")
	}
}
