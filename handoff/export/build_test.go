package export

import (
	"context"
	"testing"

	"github.com/tracline/tracline/aggregation"
	"github.com/tracline/tracline/handoff/export/exporttest"
	"github.com/tracline/tracline/tracecode"
)

var (
	ctx   = context.Background()
	line  = aggregation.Actor{Kind: aggregation.ActorDevice, ID: "camera-1"}
	qa    = aggregation.Actor{Kind: aggregation.ActorUser, ID: "qa"}
	relAt = exporttest.ReleasedAt
)

const (
	nmpaProduct = "../../examples/amoxicillin-nmpa20.yaml"
	gs1Product  = "../../examples/amoxicillin-gs1.yaml"
)

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func loadProduct(t testing.TB, path string) *tracecode.Product {
	t.Helper()
	p, err := tracecode.LoadProduct(path)
	must(t, err)
	return p
}

func openLedger(t testing.TB, dir string) *aggregation.Store {
	t.Helper()
	s, err := aggregation.Open(dir, aggregation.Options{NoSync: true})
	must(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}
