// Package netport picks a free TCP port for a server that must know its
// port before it listens (an OPC UA server's endpoint URL is fixed when it
// is built).
package netport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
)

// Free returns a TCP port on host that was free a moment ago. A port the
// kernel picks (listen on port 0, then close) is from the ephemeral range,
// which every outgoing connection also draws from: on a busy machine another
// process's connection can take it before the server binds it (seen: "bind:
// address already in use" in the tests). So Free tries random ports below
// the ephemeral range first, where only other servers of this kind look, and
// falls back to the kernel's pick.
func Free(host string) (int, error) {
	lo, hi := 20000, ephemeralLow()
	for i := 0; hi-lo > 100 && i < 64; i++ {
		p := lo + rand.IntN(hi-lo)
		if l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(p))); err == nil {
			l.Close()
			return p, nil
		}
	}
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, fmt.Errorf("pick a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// ephemeralLow is the first port of Linux's ephemeral range (32768 when it
// cannot be read).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 32768
	}
	n, err := strconv.Atoi(f[0])
	if err != nil || n < 1024 {
		return 32768
	}
	return n
}
