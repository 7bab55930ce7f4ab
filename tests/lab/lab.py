#!/usr/bin/python3
"""mktme-kvm lab: boot a kernel and initramfs on the emulated TME-MK platform.

The guest's console (ttyS0) streams to a log; TAP lines a test program prints
between "@@TAP-BEGIN" and "@@TAP-END" are the result.  The guest's second
serial port (ttyS1) is the lab channel: one JSON request per line, answered
with one JSON line, so that tests inside can use the emulator's monitor:

  {"qmp": {"execute": ..., "arguments": ...}}   -> the QMP reply
  {"hmp": "xp /2gx 0x1000"}                     -> {"return": "<text>"}
  {"wakeup_after": SECONDS}                     -> QMP system_wakeup then
                                                   (for suspend-to-RAM tests)
  {"physread": {"addr": PA, "len": N}}         -> {"return": HEX}
                                                   (QMP pmemsave)
  {"xts": {"key": HEX, "tweak": INT, "data": HEX, "decrypt": false}}
                                                -> {"return": HEX}
  (AES-XTS by the python3-cryptography package, as a reference that is
   independent of QEMU's crypto code)

Exit status: 0 when the guest printed a complete TAP stream without a
"not ok", 1 when it did not, 2 on timeout or a crash of QEMU.
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time


def xts(req):
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    key = bytes.fromhex(req["key"])
    tweak = int(req["tweak"]).to_bytes(16, "little")
    data = bytes.fromhex(req["data"])
    c = Cipher(algorithms.AES(key), modes.XTS(tweak))
    op = c.decryptor() if req.get("decrypt") else c.encryptor()
    return (op.update(data) + op.finalize()).hex()


def physread(qmp, req):
    """Physical memory as devices see it (through the owning package's keys)."""
    with tempfile.NamedTemporaryFile(prefix="mktme-lab-pmem-") as f:
        r = qmp.cmd({"execute": "pmemsave",
                     "arguments": {"val": int(req["addr"]),
                                   "size": int(req["len"]),
                                   "filename": f.name}})
        if "error" in r:
            return r
        return {"return": f.read().hex()}


class Qmp:
    """A minimal synchronous QMP client over a connected socket."""

    def __init__(self, sock):
        self.f = sock.makefile("rw", encoding="utf-8", newline="\n")
        self.lock = threading.Lock()
        self._read()                      # greeting
        self.cmd({"execute": "qmp_capabilities"})

    def _read(self):
        while True:
            line = self.f.readline()
            if not line:
                raise EOFError("QMP connection closed")
            msg = json.loads(line)
            if "event" not in msg:
                return msg

    def cmd(self, request):
        with self.lock:
            self.f.write(json.dumps(request) + "\n")
            self.f.flush()
            return self._read()


def qemu_did_not_start(proc):
    """Kill QEMU, write its output to stderr and fail the run in its TAP
    with QEMU's last line (its error, if it gave one); returns 2"""
    proc.kill()
    out = proc.stdout.read().decode(errors="replace")
    sys.stderr.write("lab: QEMU did not start:\n" + out)
    lines = [l for l in out.splitlines() if l.strip()]
    print("not ok - lab: QEMU did not start: %s"
          % (lines[-1] if lines else "no output"))
    return 2


def serve_channel(conn, qmp, log):
    f = conn.makefile("rw", encoding="utf-8", newline="\n")
    for line in f:
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            req = json.loads(line)
            if "qmp" in req:
                reply = qmp.cmd(req["qmp"])
            elif "hmp" in req:
                reply = qmp.cmd({"execute": "human-monitor-command",
                                 "arguments": {"command-line": req["hmp"]}})
            elif "wakeup_after" in req:
                # The guest is about to suspend to RAM: wake it later
                threading.Timer(float(req["wakeup_after"]), qmp.cmd,
                                args=({"execute": "system_wakeup"},)).start()
                reply = {"return": {}}
            elif "physread" in req:
                reply = physread(qmp, req["physread"])
            elif "xts" in req:
                reply = {"return": xts(req["xts"])}
            else:
                reply = {"error": {"desc": "unknown lab request"}}
        except Exception as e:  # reported to the guest, which fails its test
            reply = {"error": {"desc": "%s: %s" % (type(e).__name__, e)}}
        log.write("lab-channel: %s -> %s\n" % (line[:200], json.dumps(reply)[:200]))
        f.write(json.dumps(reply, separators=(",", ":")) + "\n")
        f.flush()


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--qemu", required=True)
    ap.add_argument("--kernel", required=True)
    ap.add_argument("--initrd", help="initramfs (the busybox lab)")
    ap.add_argument("--disk", help="root file system image on virtio-blk"
                    " (/dev/vda; the Debian host), opened snapshot=on so that"
                    " the image itself is never written")
    ap.add_argument("--cpu", default="max,tme-mk=on")
    ap.add_argument("--sockets", type=int, default=1,
                    help="sockets, one CPU and one NUMA node each")
    ap.add_argument("--memory", default="512M")
    ap.add_argument("--append", default="", help="extra kernel command line")
    ap.add_argument("--timeout", type=int, default=300)
    ap.add_argument("--log", help="console log file (default: stderr)")
    ap.add_argument("--console", action="store_true",
                    help="echo the whole guest console, not only TAP")
    ap.add_argument("--net", metavar="PORT:PEER_PORT",
                    help="a virtio-net NIC (eth0 inside) whose frames go as UDP"
                    " datagrams from 127.0.0.1:PORT to 127.0.0.1:PEER_PORT"
                    " (-netdev dgram): two lab instances with mirrored ports"
                    " share a link, and nothing else (tests/lab/pair.sh)")
    ap.add_argument("--icount", type=int, metavar="SHIFT",
                    help="count instructions (-icount shift=SHIFT): the "
                    "guest's clocks then measure instructions, whatever "
                    "else the host is doing (one vCPU thread)")
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="mktme-lab-")
    paths = {n: os.path.join(tmp, n + ".sock") for n in ("qmp", "lab")}
    listeners = {}
    for n, p in paths.items():
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(p)
        s.listen(1)
        listeners[n] = s

    log = open(args.log, "w") if args.log else sys.stderr
    cmd = [args.qemu, "-accel", "tcg", "-cpu", args.cpu,
           "-smp", "%d,sockets=%d" % (args.sockets, args.sockets),
           "-m", args.memory, "-machine", "pc", "-vga", "none",
           "-global", "PIIX4_PM.disable_s3=0", "-display", "none", "-nic", "none",
           "-no-reboot", "-L", "/usr/share/seabios", "-L", "/usr/share/qemu",
           "-kernel", args.kernel,
           # no5lvl: with LA57 (-cpu max), an interrupt taken while
           # identify_cpu() has zeroed boot_cpu_data's capabilities makes
           # KASAN see 4-level bounds and report a wild access (6.12).
           "-append", "console=ttyS0 panic=-1 oops=panic no5lvl " + args.append,
           "-chardev", "stdio,id=con,signal=off", "-serial", "chardev:con",
           "-chardev", "socket,id=lab,path=" + paths["lab"], "-serial", "chardev:lab",
           "-chardev", "socket,id=qmp,path=" + paths["qmp"],
           "-mon", "chardev=qmp,mode=control"]
    if args.icount is not None:
        cmd += ["-icount", "shift=%d,sleep=off" % args.icount]
    if args.net:
        try:
            port, peer = (int(p) for p in args.net.split(":"))
        except ValueError:
            ap.error("--net takes PORT:PEER_PORT (two UDP ports on 127.0.0.1)")
        cmd += ["-netdev", "dgram,id=lab0,local.type=inet,local.host=127.0.0.1,"
                "local.port=%d,remote.type=inet,remote.host=127.0.0.1,"
                "remote.port=%d" % (port, peer),
                # A locally administered MAC of the port: unique per link
                # end; no option ROM (no network boot, and none is built)
                "-device", "virtio-net-pci,netdev=lab0,romfile=,"
                "mac=52:54:00:6c:%02x:%02x" % (port >> 8, port & 0xff)]
    if args.initrd:
        cmd += ["-initrd", args.initrd]
    if args.disk:
        cmd += ["-drive", "file=%s,format=raw,if=virtio,snapshot=on,cache=unsafe"
                % args.disk]
    if not args.initrd and not args.disk:
        ap.error("--initrd or --disk is needed")
    if args.sockets > 1:
        # One NUMA node per socket: each package's memory controller owns
        # its node's RAM, and encrypts it with its own key table.
        mem = int(args.memory.rstrip("M"))
        for i in range(args.sockets):
            cmd += ["-object", "memory-backend-ram,id=node%d,size=%dM"
                    % (i, mem // args.sockets),
                    "-numa", "node,nodeid=%d,memdev=node%d" % (i, i),
                    "-numa", "cpu,node-id=%d,socket-id=%d" % (i, i)]
    log.write("lab: " + " ".join(cmd) + "\n")
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + args.timeout

    conns = {}
    for n, s in listeners.items():
        s.settimeout(30)
        try:
            conns[n], _ = s.accept()
        except socket.timeout:
            return qemu_did_not_start(proc)
    try:
        qmp = Qmp(conns["qmp"])
    except (EOFError, OSError):
        # QEMU accepted the sockets, then refused its command line
        return qemu_did_not_start(proc)
    threading.Thread(target=serve_channel, args=(conns["lab"], qmp, log),
                     daemon=True).start()

    tap, in_tap, begun, ended = [], False, 0, 0
    plans, ran = [], []         # per TAP stream: its plan, its results
    timer = threading.Timer(max(1, deadline - time.monotonic()), proc.kill)
    timer.start()
    for raw in proc.stdout:
        line = raw.decode(errors="replace").rstrip("\r\n")
        log.write(line + "\n")
        log.flush()
        if line.startswith("@@TAP-BEGIN"):
            in_tap, begun = True, begun + 1
            plans.append(None)
            ran.append(0)
        elif line.startswith("@@TAP-END"):
            in_tap, ended = False, ended + 1
        elif in_tap:
            tap.append(line)
            print(line, flush=True)
            if line.startswith("1.."):
                plans[-1] = int(line[3:].split()[0] or 0)
            elif line.startswith("ok") or line.startswith("not ok"):
                ran[-1] += 1
        elif args.console:
            print(line, flush=True)
    proc.wait()
    timed_out = not timer.is_alive() and proc.returncode < 0
    timer.cancel()
    for f in paths.values():
        try:
            os.unlink(f)
        except OSError:
            pass
    os.rmdir(tmp)

    if timed_out:
        print("not ok - lab: timed out after %d s" % args.timeout)
        return 2
    # Each program run (lab.run=A,B,...) prints its own TAP stream
    if not ended or ended != begun:
        print("not ok - lab: the guest ended without completing its TAP output"
              " (%d of %d streams complete, QEMU exit %d)"
              % (ended, begun, proc.returncode))
        return 2
    # A program that died before its plan was done: a failure of its own
    short = False
    for i, (plan, n) in enumerate(zip(plans, ran)):
        if plan is not None and n < plan:
            print("not ok - lab: TAP stream %d planned %d tests and ran %d"
                  % (i + 1, plan, n))
            short = True
    return 1 if short or any(l.startswith("not ok") for l in tap) else 0


if __name__ == "__main__":
    sys.exit(main())
