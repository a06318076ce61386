package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"time"

	"github.com/tracline/tracline/cmd/linesim/sim"
	"github.com/tracline/tracline/plc"
	plcmodbus "github.com/tracline/tracline/plc/modbus"
	plcopcua "github.com/tracline/tracline/plc/opcua"
)

// latency is a set of timings in milliseconds.
type latency struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

func summarise(ds []time.Duration) latency {
	if len(ds) == 0 {
		return latency{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	at := func(q float64) time.Duration { return s[min(len(s)-1, int(q*float64(len(s))))] }
	return latency{N: len(s), P50: ms(at(0.50)), P99: ms(at(0.99)), Max: ms(s[len(s)-1])}
}

// devicesReport is what `linectl bench devices` prints.
type devicesReport struct {
	Samples int `json:"samples"`
	// ModbusVerdictWrite: WriteVerdict (one FC16) → the simulated PLC holds it.
	ModbusVerdictWrite latency `json:"modbus_verdict_write_ms"`
	// OPCUAVerdictWrite: WriteVerdict (one OPC UA Write) → the simulated PLC holds it.
	OPCUAVerdictWrite latency `json:"opcua_verdict_write_ms"`
	// OPCUAWriteToNotification: the PLC's item counter is written (server
	// side) → the driver's subscription delivers the item event.
	OPCUAWriteToNotification latency `json:"opcua_write_to_notification_ms"`
	// ModbusTriggerToEvent: the same, seen by the Modbus driver's polling.
	ModbusTriggerToEvent latency `json:"modbus_trigger_to_event_ms"`
	// OPCUAItemToVerdict: item counter changes → notification → verdict
	// written back over OPC UA → the PLC holds it (the controller's device
	// share of the unit's deadline, without its decision).
	OPCUAItemToVerdict latency `json:"opcua_item_to_verdict_ms"`
	ModbusPollMS       float64 `json:"modbus_poll_period_ms"`
	OPCUAPublishMS     float64 `json:"opcua_publishing_interval_ms"`
	GoVersion          string  `json:"go"`
	CPUs               int     `json:"cpus"`
	Note               string  `json:"note"`
}

// benchDevices: linectl bench devices [--samples N] [--poll D] [--publish D]
// — the PLC drivers against linesim's PLC over loopback.
func benchDevices(ctx context.Context, c *cli, args []string) error {
	fs := newFlags("bench devices", c)
	samples := fs.Int("samples", 300, "samples per measurement")
	poll := fs.Duration("poll", 10*time.Millisecond, "Modbus poll period")
	publish := fs.Duration("publish", 20*time.Millisecond, "OPC UA publishing interval")
	if err := fs.Parse(args); err != nil {
		return exitError{2}
	}
	if *samples < 1 || *samples > 100000 {
		return fmt.Errorf("--samples %d is outside 1..100000", *samples)
	}
	s, err := sim.New(sim.Config{Seed: 1, Rate: 6000, Heartbeat: 50 * time.Millisecond, Listen: sim.Listen{HTTP: "off"}}, c.log, sim.ManualInfeed())
	if err != nil {
		return err
	}
	if err := s.Start(ctx); err != nil {
		return err
	}
	defer s.Close()
	ep := s.Endpoints()

	mcfg := sim.ModbusProfile(ep.Modbus)
	mcfg.Modbus.PollPeriod = *poll
	md, err := plcmodbus.New(mcfg, c.log)
	if err != nil {
		return err
	}
	ocfg := sim.OPCUAProfile(ep.PLCOPCUA)
	ocfg.OPCUA.PublishingInterval = *publish
	od, err := plcopcua.New(ocfg, c.log)
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := md.Connect(cctx); err != nil {
		return err
	}
	defer md.Close()
	if err := od.Connect(cctx); err != nil {
		return err
	}
	defer od.Close()
	mItems, oItems := items(md), items(od)

	rep := devicesReport{Samples: *samples, ModbusPollMS: ms(*poll), OPCUAPublishMS: ms(*publish),
		GoVersion: runtime.Version(), CPUs: runtime.NumCPU(),
		Note: "loopback, linesim PLC in-process, machine shared; triggers at a random phase: OPC UA notification latency is dominated by the publishing interval (0..interval), Modbus trigger latency by the poll period; verdict writes are request round trips"}
	// wait returns when the driver saw item want (its event's At).
	wait := func(ch <-chan plc.Event, want uint32) (time.Time, error) {
		t := time.NewTimer(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case e, ok := <-ch:
				if !ok {
					return time.Time{}, errors.New("driver closed")
				}
				if e.Item == want {
					return e.At, nil
				}
			case <-t.C:
				return time.Time{}, fmt.Errorf("item %d: no event within 5s", want)
			case <-ctx.Done():
				return time.Time{}, ctx.Err()
			}
		}
	}
	writeRT := func(d plc.PLC, item uint32) (time.Duration, error) {
		got := s.ExpectVerdict(item)
		t0 := time.Now()
		if err := d.WriteVerdict(ctx, plc.Verdict{Item: item, Result: plc.ResultPass}); err != nil {
			return 0, err
		}
		select {
		case <-got:
			return time.Since(t0), nil
		case <-time.After(5 * time.Second):
			return 0, fmt.Errorf("verdict %d not at the PLC within 5s", item)
		}
	}

	var mw, ow, on, mt, loop []time.Duration
	// Verdicts for items far ahead of the belt: the PLC holds them.
	for i := 0; i < *samples; i++ {
		d, err := writeRT(md, uint32(10_000_000+i))
		if err != nil {
			return fmt.Errorf("modbus verdict: %w", err)
		}
		mw = append(mw, d)
		if d, err = writeRT(od, uint32(20_000_000+i)); err != nil {
			return fmt.Errorf("opc ua verdict: %w", err)
		}
		ow = append(ow, d)
	}
	// Item trigger → events on both drivers, then the verdict loop. Each
	// trigger comes at a random phase of the poll / publishing cycle (a
	// trigger right after the previous notification would always wait a
	// whole interval and bias the numbers).
	rng := rand.New(rand.NewPCG(1, 2))
	cycle := max(*poll, *publish)
	for i := 1; i <= *samples; i++ {
		item := uint32(i)
		dephase := time.NewTimer(time.Duration(rng.Int64N(int64(cycle))))
		select {
		case <-dephase.C:
		case <-ctx.Done():
			dephase.Stop()
			return ctx.Err()
		}
		t0 := time.Now()
		if err := s.Feed(ctx, 1); err != nil {
			return err
		}
		seen, err := wait(oItems, item)
		if err != nil {
			return fmt.Errorf("opc ua: %w", err)
		}
		on = append(on, seen.Sub(t0))
		got := s.ExpectVerdict(item)
		if err := od.WriteVerdict(ctx, plc.Verdict{Item: item, Result: plc.ResultPass}); err != nil {
			return err
		}
		<-got
		loop = append(loop, time.Since(t0))
		if seen, err = wait(mItems, item); err != nil {
			return fmt.Errorf("modbus: %w", err)
		}
		mt = append(mt, seen.Sub(t0))
	}
	rep.ModbusVerdictWrite, rep.OPCUAVerdictWrite = summarise(mw), summarise(ow)
	rep.OPCUAWriteToNotification, rep.ModbusTriggerToEvent, rep.OPCUAItemToVerdict = summarise(on), summarise(mt), summarise(loop)
	enc := json.NewEncoder(c.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// items forwards a driver's item events (others are dropped).
func items(d plc.PLC) <-chan plc.Event {
	ch := make(chan plc.Event, 1024)
	go func() {
		defer close(ch)
		for e := range d.Events() {
			if e.Kind == plc.EventItem {
				ch <- e
			}
		}
	}()
	return ch
}
