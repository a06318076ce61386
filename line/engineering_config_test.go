package line

import (
	"testing"
	"time"
)

type reportingEngineering struct{ fakeEngineering }

func (*reportingEngineering) DeviceConfig() []DeviceConfig {
	return []DeviceConfig{{Name: "plc", Kind: "plc", Driver: "modbus", Endpoint: "10.0.0.5:502",
		Settings: []Setting{{Key: "signals.reject", Value: "coil 3"}}}, {Name: "camera", Kind: "camera"}}
}

func TestLoadedConfig(t *testing.T) {
	base := LineConfig{Line: "L1", IOTimeout: time.Second,
		Machine: Config{Deadline: 200 * time.Millisecond, PrinterBuffer: 8, AllocChunk: 64, MinGrade: 'C',
			Challenge: []ChallengeStep{{Name: "good", Expect: ReasonNone}, {Name: "blank", Expect: ReasonNoRead}}},
		Devices: Devices{PLC: &fakePLC{}}, Links: map[string]LinkReporter{"camera": nil, "plc": nil}}
	for _, tc := range []struct {
		name     string
		eng      Engineering
		reported bool
		devices  []string
		settings int
	}{
		{"no engineering", nil, false, []string{"plc", "camera"}, 0},
		{"engineering without settings", &fakeEngineering{}, false, []string{"plc", "camera"}, 0},
		{"engineering with settings", &reportingEngineering{}, true, []string{"plc", "camera"}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base
			cfg.Engineering = tc.eng
			got := (&Line{cfg: cfg}).LoadedConfig()
			if got.Line != "L1" || got.Machine.DeadlineMs != 200 || got.Machine.MinGrade != "C" || got.Machine.IOTimeoutMs != 1000 ||
				len(got.Machine.Challenge) != 2 || got.Machine.Challenge[0] != "good → pass" {
				t.Errorf("machine settings: %+v", got)
			}
			if got.Reported != tc.reported || len(got.Devices) != len(tc.devices) {
				t.Fatalf("devices: %+v", got)
			}
			for i, d := range got.Devices {
				if d.Name != tc.devices[i] || d.Settings == nil {
					t.Errorf("device %d: %+v", i, d)
				}
			}
			if n := len(got.Devices[0].Settings); n != tc.settings {
				t.Errorf("plc settings: %d, want %d", n, tc.settings)
			}
		})
	}
}
