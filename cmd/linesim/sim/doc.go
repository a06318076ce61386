// Package sim is the simulated packaging line behind cmd/linesim: a conveyor
// at a configured rate with its stations (trigger photo-eye → coding printer
// → vision camera → reject gate → aggregation camera → labeller), the PLC
// (Modbus TCP server via simonvetter/modbus and the same signals over OPC UA
// via uasim), fault injection at a rate or at a moment, and the ground truth
// of every unit and group.
//
// It is a library so that tests and `linectl demo --headless` can run a
// batch in-process:
//
//	s, err := sim.New(cfg, log)
//	err = s.Start(ctx)             // serves every device on 127.0.0.1
//	ep := s.Endpoints()            // where the controller connects
//	<-s.Done()                     // cfg.Units have left the line
//	gt := s.GroundTruth()          // what physically happened
//	s.Close()
//
// Every device is reached through a netsim proxy so that disconnects, stalls
// and slow answers can be injected (Config.Faults, or Sim.Cut/Stall/Restore/
// SetDelay by device name).
//
// The printer, cameras and label printer are driven through the small
// interfaces in devices.go (Printer.PrintOnto, Camera.Inspect,
// AggCamera.Read, LabelPrinter.NextLabel), implemented over OPC UA and raw
// TCP by cmd/linesim/devsim; StandIns gives in-process stand-ins for tests
// that need no controller.
//
// Only cmd/linesim, cmd/linectl and tests import it.
package sim
