package campaign

// The operator's rework before a crashed batch is completed. A group whose
// label was not applied when the controller was killed (between pack and
// label, or label and journal) is taken out of its parent at the restart,
// and the purge sends it to rework: its units are commissioned and loose in
// the ledger. The release requires nothing loose below the top level, and
// rework needs the batch on the line, so before `complete` the operator
// takes those units out of circulation (decommission, with the reason).
//
// Packing them into a new parent at the manual station would ship them,
// but a parent the station opens with a new code has its label printed and
// never verified, and on a level with a label check `linectl verify` then
// fails the completed batch (docs/linectl.md, found by this campaign): the
// operator cannot use it here.

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/tracline/tracline/aggregation"
	"github.com/tracline/tracline/cmd/linesim/sim"
	"github.com/tracline/tracline/hmi"
	"github.com/tracline/tracline/tracecode"
)

// takenOff are the units the operator took off at rework, by code.
type takenOff map[tracecode.Code]bool

// reworkOrphans takes out of circulation the units of every group the line
// packed physically whose units the ledger has loose (the group's parent
// taken out at a restart): the operator finds such a group in the rework
// bin, looks one of its units up, and decommissions the group's units. The
// batch's last group, closed partial at the end of the run, waits for
// `complete` and is left alone.
func reworkOrphans(ctx context.Context, log lineHMI, d *qaDesk, gt sim.GroundTruth) (takenOff, error) {
	out := takenOff{}
	if err := d.login(ctx); err != nil {
		return out, err
	}
	for _, g := range gt.Groups {
		if g.Level != 2 || g.Partial || len(g.Children) == 0 {
			continue
		}
		var lk hmi.LookupDoc
		if err := d.op.Do(ctx, http.MethodGet, "/api/v1/qa/lookup?code="+url.QueryEscape(g.Children[0]), nil, &lk); err != nil {
			return out, fmt.Errorf("looking up unit %s of group %d: %w", g.Children[0], g.ID, err)
		}
		if lk.Code.Code.State != aggregation.StateCommissioned || lk.Code.Code.Parent != "" {
			continue // packed (or taken out already): not a group sent to rework
		}
		n := 0
		for _, raw := range g.Children {
			p, err := tracecode.Parse(raw)
			if err != nil {
				return out, fmt.Errorf("group %d: unit code %q: %v", g.ID, raw, err)
			}
			err = d.op.Do(ctx, http.MethodPost, "/api/v1/line/rework", hmi.ReworkReq{Kind: "decommission", Code: raw,
				Reason: "rework: unit of a group left unlabelled by a controller crash"}, nil)
			if err != nil {
				return out, fmt.Errorf("group %d: decommission %s: %w", g.ID, raw, err)
			}
			out[p.Code] = true
			n++
		}
		log.logf("rework: group %d's %d loose units taken out of circulation", g.ID, n)
	}
	return out, nil
}

// lineHMI is what reworkOrphans logs through (the campaign's Env).
type lineHMI interface{ logf(string, ...any) }
