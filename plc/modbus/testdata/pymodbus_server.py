"""A small PLC on pymodbus: the independent Modbus TCP server of
plc/modbus's interoperability test (pymodbus_test.go).

Run with Debian's python3 and python3-pymodbus (3.0.0):

    /usr/bin/python3 pymodbus_server.py [--port N] [--items N]

It serves unit id 1 only (requests to another unit id get no answer, as
from a PLC behind a gateway that does not know it) on 127.0.0.1:N (0: a
free port), with exactly these blocks; any request that reaches outside
them is answered with Modbus exception 2, illegal data address
(pymodbus's own range check):

    input registers 0-31   0-1 item counter (u32, high word first; starts
                           at --items), 2 heartbeat (+1 every 20 ms),
                           16-29 gate ring of 4 entries (count u32, then
                           4 x (item u32, outcome u16))
    discrete inputs 0-7    0 running
    holding         0-15   0-3 verdict, 10 tower light, 11 controller
                           alive, 12 gate ack
    coils           0-7    0 stop request, 1 alarm

Addresses are the protocol's, 0-based (zero_mode): holding 0 is 40001.

When it listens it prints "ready 127.0.0.1:PORT pymodbus VERSION". Then it
reads commands from stdin, one a line, and answers each with one line,
"ok ..." or "error ...":

    feed N             N units passed the trigger: item counter += N
    running 0|1        the line-running input
    gate ITEM OUTCOME  the gate recorded OUTCOME (raw u16) for ITEM: the
                       next ring slot, then the count, as a PLC scan would
    get hr|co ADDR N   N holding registers or coils from ADDR ("ok v v ...",
                       coils as 0/1)

It exits as soon as stdin closes, so that a test killed half-way never
leaves it behind.
"""

import argparse
import asyncio
import os
import sys
import threading

try:
    import pymodbus
    from pymodbus.datastore import (
        ModbusSequentialDataBlock,
        ModbusServerContext,
        ModbusSlaveContext,
    )
    from pymodbus.server import StartAsyncTcpServer
except ImportError as exc:
    print(
        f"pymodbus_server: {exc}: {sys.executable} has no pymodbus; "
        "install Debian's python3-pymodbus (./scripts/test does)",
        file=sys.stderr,
    )
    sys.exit(3)

UNIT = 1
IR_ITEMS, IR_HEARTBEAT, IR_RING, RING = 0, 2, 16, 4
DI_RUNNING = 0
HEARTBEAT_S = 0.02

# Function codes as the slave context names its tables.
FC_COILS, FC_DI, FC_HR, FC_IR = 1, 2, 3, 4


def put32(slave, addr, value):
    """Writes a u32 into two input registers, high word first."""
    slave.setValues(FC_IR, addr, [(value >> 16) & 0xFFFF, value & 0xFFFF])


def get32(slave, addr):
    hi, lo = slave.getValues(FC_IR, addr, 2)
    return hi << 16 | lo


def command(slave, line):
    """Runs one command on the event loop's thread (between two requests)."""
    words = line.split()
    try:
        if words[0] == "feed" and len(words) == 2:
            put32(slave, IR_ITEMS, (get32(slave, IR_ITEMS) + int(words[1])) & 0xFFFFFFFF)
            return "ok"
        if words[0] == "running" and len(words) == 2:
            slave.setValues(FC_DI, DI_RUNNING, [words[1] == "1"])
            return "ok"
        if words[0] == "gate" and len(words) == 3:
            count = get32(slave, IR_RING) + 1
            slot = IR_RING + 2 + 3 * ((count - 1) % RING)
            put32(slave, slot, int(words[1]))
            slave.setValues(FC_IR, slot + 2, [int(words[2])])
            put32(slave, IR_RING, count)
            return "ok"
        if words[0] == "get" and len(words) == 4 and words[1] in ("hr", "co"):
            fc = FC_HR if words[1] == "hr" else FC_COILS
            addr, n = int(words[2]), int(words[3])
            if not slave.validate(fc, addr, n):
                return f"error {line!r}: outside the block"
            values = slave.getValues(fc, addr, n)
            return "ok " + " ".join(str(int(v)) for v in values)
    except (ValueError, IndexError) as exc:
        return f"error {line!r}: {exc}"
    return f"error {line!r}: unknown command"


def reply(text):
    print(text, flush=True)


async def heartbeat(slave):
    while True:
        await asyncio.sleep(HEARTBEAT_S)
        (hb,) = slave.getValues(FC_IR, IR_HEARTBEAT, 1)
        slave.setValues(FC_IR, IR_HEARTBEAT, [(hb + 1) & 0xFFFF])


def read_stdin(loop, slave):
    for line in sys.stdin:
        if line.strip():
            loop.call_soon_threadsafe(lambda l=line.strip(): reply(command(slave, l)))
    os._exit(0)  # stdin closed: the test is over (or was killed)


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--items", type=int, default=0)
    args = ap.parse_args()

    slave = ModbusSlaveContext(
        di=ModbusSequentialDataBlock(0, [False] * 8),
        co=ModbusSequentialDataBlock(0, [False] * 8),
        hr=ModbusSequentialDataBlock(0, [0] * 16),
        ir=ModbusSequentialDataBlock(0, [0] * 32),
        zero_mode=True,
    )
    put32(slave, IR_ITEMS, args.items)
    context = ModbusServerContext(slaves={UNIT: slave}, single=False)
    # defer_start: the server object back, to learn the bound port.
    # allow_reuse_address: a new server on the port of a killed one (the
    # reconnect test) binds while the old connections are in TIME_WAIT.
    server = await StartAsyncTcpServer(
        context=context,
        address=("127.0.0.1", args.port),
        defer_start=True,
        allow_reuse_address=True,
    )
    serving = asyncio.create_task(server.serve_forever())
    await asyncio.wait({serving, server.serving}, return_when=asyncio.FIRST_COMPLETED)
    if serving.done():
        serving.result()  # raises why it could not listen
    port = server.server.sockets[0].getsockname()[1]
    asyncio.create_task(heartbeat(slave))
    threading.Thread(target=read_stdin, args=(asyncio.get_running_loop(), slave), daemon=True).start()
    reply(f"ready 127.0.0.1:{port} pymodbus {pymodbus.__version__}")
    await serving


if __name__ == "__main__":
    asyncio.run(main())
