package printer

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/tracline/tracline/tracecode"
)

// ByLevel is a Labeler per packaging level: each level's labeller has a
// label printer of its own, and a label goes to the printer of its Level.
// A line whose levels share one labeller interleaves the labels of groups
// that close together in the order they were printed, which can differ
// from the order the groups reach the labeller (their reads come from
// different cameras over different links); with a labeller per level a
// level's labels keep that level's order.
type ByLevel map[tracecode.Level]Labeler

var _ Labeler = ByLevel(nil)

// PrintLabel prints l on the printer of l.Level; a level without one is an
// error (nothing is printed anywhere else).
func (b ByLevel) PrintLabel(ctx context.Context, l Label) error {
	p, ok := b[l.Level]
	if !ok || p == nil {
		return fmt.Errorf("label %s: no label printer for level %s (printers for %s)", l.Code, l.Level, b.levels())
	}
	return p.PrintLabel(ctx, l)
}

func (b ByLevel) levels() string {
	var ls []string
	for _, l := range slices.Sorted(maps.Keys(b)) {
		ls = append(ls, l.String())
	}
	if len(ls) == 0 {
		return "none"
	}
	return strings.Join(ls, ", ")
}
