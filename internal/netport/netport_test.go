package netport

import (
	"net"
	"strconv"
	"testing"
)

// TestFreeIsBindableAndBelowTheEphemeralRange: the port can be listened on,
// and is not one the kernel would hand an outgoing connection.
func TestFreeIsBindableAndBelowTheEphemeralRange(t *testing.T) {
	for range 20 {
		p, err := Free("127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		if p >= ephemeralLow() || p < 20000 {
			t.Errorf("port %d: want one in [20000, %d)", p, ephemeralLow())
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			t.Fatalf("port %d not bindable: %v", p, err)
		}
		l.Close()
	}
}
