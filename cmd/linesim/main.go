// Command linesim plays a packaging line over real protocols on loopback:
// the PLC (Modbus TCP and OPC UA), a coding printer, a vision camera, an
// aggregation camera and a ZPL label printer, wired to a simulated conveyor.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "linesim: not built yet")
	os.Exit(1)
}
