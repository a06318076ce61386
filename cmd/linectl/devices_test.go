package main

import (
	"encoding/json"
	"testing"
)

func TestBenchDevices(t *testing.T) {
	code, out, errs := run(t, "", "bench", "devices", "--samples", "5", "--publish", "5ms", "--poll", "5ms")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var rep map[string]any
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	for _, k := range []string{"modbus_verdict_write_ms", "opcua_verdict_write_ms", "opcua_write_to_notification_ms", "modbus_trigger_to_event_ms", "opcua_item_to_verdict_ms"} {
		m, ok := rep[k].(map[string]any)
		if !ok || m["n"].(float64) != 5 {
			t.Errorf("%s: %v", k, rep[k])
		}
		for _, q := range []string{"p50", "p99", "max"} {
			if _, ok := m[q]; !ok {
				t.Errorf("%s.%s missing", k, q)
			}
		}
	}
	if code, _, _ := run(t, "", "bench", "devices", "--samples", "0"); code == 0 {
		t.Error("--samples 0 accepted")
	}
}
