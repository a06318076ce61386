package badinput

import (
	"context"
	"fmt"

	"github.com/tracline/tracline/aggregation"
)

// RequestedEvents is a Server.Requested for a ledger: the events after a
// sequence number made by a user (the actor of anything an HTTP request
// journals), named by seq, kind and actor. The line's own events — by the
// system or a device (an alarm raised and cleared by a device watchdog on a
// loaded machine) — are left out.
func RequestedEvents(st *aggregation.Store) func(after uint64) ([]string, error) {
	return func(after uint64) ([]string, error) {
		var out []string
		err := st.Events(context.Background(), after+1, func(ev aggregation.Event) error {
			if ev.Actor.Kind != aggregation.ActorSystem && ev.Actor.Kind != aggregation.ActorDevice {
				out = append(out, fmt.Sprintf("event %d %s by %s %s", ev.Seq, ev.Kind, ev.Actor.Kind, ev.Actor.ID))
			}
			return nil
		})
		return out, err
	}
}
