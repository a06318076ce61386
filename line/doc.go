// Package line is the packaging line: batch lifecycle, PackML-style machine
// states, item tracking from PLC trigger to reject gate, per-unit verdicts,
// automatic aggregation and reconciliation.
//
// Its decision logic is a pure state machine (Machine.Step: events in,
// actions out, time carried by the events), so a no-read, a late camera
// result, a duplicate reprint or a printer flush can be replayed in a test
// deterministically (see testdata/*.txt). The Runner around it does all I/O:
// it reads the devices, journals every decision in the ledger before it
// tells the PLC, and feeds the answers back as events.
//
// Who may import it: cmd/linectl and the HMI. It imports tracecode and, in
// the runner only, the device and ledger packages.
package line
