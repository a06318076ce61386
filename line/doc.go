// Package line is the packaging line: batch lifecycle, PackML-style machine
// states, item tracking from PLC trigger to reject gate, per-unit verdicts,
// automatic aggregation and reconciliation.
//
// Its decision logic is a pure state machine (Machine.Step: events in,
// actions out, time carried by the events), so a no-read, a late camera
// result, a duplicate reprint or a printer flush can be replayed in a test
// deterministically (see testdata/*.txt). The Runner around it does all I/O:
// it reads the devices, journals every decision in the ledger before it
// tells the PLC, and feeds the answers back as events. The Line is the
// long-lived controller around runners: it owns the devices for the
// process's life, runs one Runner per batch (started from a work order,
// resumed at a restart), routes device events to the current batch, and
// gives the HMI everything a screen shows or does (overview and live
// updates, commands and alarms journaled with the user, code pools, the
// manual aggregation station, engineering access).
//
// Who may import it: cmd/linectl and the HMI. It imports tracecode and, in
// the runner only, the device and ledger packages.
package line
