// Package receiver holds stand-in receivers for hand-off documents: an EPCIS
// 2.0 capture interface and a 码上放心-style platform upload, each a real HTTP
// server on 127.0.0.1. They validate what they get (structure, or a JSON
// schema check the caller plugs in; event and code counts; every expected
// code present) and say so plainly in their answers and in a Summary.
//
// Behaviours for tests (refuse, hang until the client times out, 5xx, lose
// the first answer so that the document arrives twice, take an hour to
// process, answer garbage) are set per server; time is an injectable Clock,
// so an hour of processing costs a test nothing but polls.
//
// The wire formats are those of docs/handoff-delivery.md. The network beyond
// a line is never ours: these receivers exist for tests and `linectl demo`.
//
// Who may import it: tests, and cmd/linectl for the demo. It imports nothing
// of the project.
package receiver
