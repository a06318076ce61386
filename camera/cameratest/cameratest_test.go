package cameratest

import (
	"testing"
	"time"

	"github.com/tracline/tracline/camera"
)

func TestCameraFake(t *testing.T) {
	now := time.Unix(0, 0)
	c := New(0)
	c.Read(now, 1, "X")
	c.Lose(now, 2)
	c.NoRead(now, 4)
	ev := <-c.Events()
	if ev.Kind != camera.EventResult || ev.Result.Seq != 1 || ev.Result.Codes[0] != "X" {
		t.Fatalf("%+v", ev)
	}
	if ev := <-c.Events(); ev.Kind != camera.EventGap || ev.From != 2 || ev.To != 3 || ev.Lost != 2 {
		t.Fatalf("%+v", ev)
	}
	if ev := <-c.Events(); ev.Result.Seq != 4 || len(ev.Result.Codes) != 0 || ev.Result.Pass {
		t.Fatalf("%+v", ev)
	}
	c.Close()
	c.Close()
}
