#!/usr/bin/python3
"""Host-side tests of the TME-MK emulator: CPU properties, their errors, and
the monitor commands, without booting a guest.  TAP output.

    test_options.py QEMU-BINARY
"""

import json
import subprocess
import sys

QEMU = sys.argv[1]
BASE = [QEMU, "-accel", "tcg", "-display", "none", "-nic", "none",
        "-L", "/usr/share/seabios", "-L", "/usr/share/qemu", "-S"]
n = 0
failed = 0


def ok(cond, what, detail=""):
    global n, failed
    n += 1
    print("%sok %d - %s" % ("" if cond else "not ", n, what))
    if not cond:
        failed += 1
        for line in str(detail).splitlines():
            print("# " + line)


def start_error(cpu, *extra):
    """Start QEMU (quitting at once if it starts); returns status, stderr."""
    p = subprocess.run(BASE + ["-cpu", cpu, "-qmp", "stdio"] + list(extra),
                       input='{"execute": "qmp_capabilities"}\n'
                             '{"execute": "quit"}\n',
                       capture_output=True, text=True, timeout=60)
    return p.returncode, p.stderr


def qmp(cpu, commands, *extra):
    """Run QMP commands on a stopped VM; returns the replies in order."""
    lines = [{"execute": "qmp_capabilities"}] + commands + [{"execute": "quit"}]
    p = subprocess.run(BASE + ["-cpu", cpu, "-qmp", "stdio"] + list(extra),
                       input="".join(json.dumps(c) + "\n" for c in lines),
                       capture_output=True, text=True, timeout=60)
    replies = [json.loads(l) for l in p.stdout.splitlines() if l.startswith("{")]
    replies = [r for r in replies if "event" not in r and "QMP" not in r]
    return replies[1:1 + len(commands)], p.stderr


def main():
    rc, err = start_error("max,tme-mk=on,tme-mk-keyid-bits=16")
    ok(rc != 0 and "tme-mk-keyid-bits must be between 1 and 15" in err,
       "tme-mk-keyid-bits=16 is refused", err)
    rc, err = start_error("max,tme-mk=on,tme-mk-keyid-bits=0")
    ok(rc != 0 and "between 1 and 15" in err, "tme-mk-keyid-bits=0 is refused", err)
    rc, err = start_error("max,tme-mk=on,phys-bits=40,tme-mk-keyid-bits=10")
    ok(rc != 0 and "phys-bits 40 leaves no room for 10 KeyID bits" in err
       and "phys-bits must be at least" in err,
       "phys-bits too small for the KeyID bits is refused, with a hint", err)
    rc, err = start_error("max,tme-mk=on,tme-mk-keyid-bits=2,tme-mk-max-keys=4")
    ok(rc != 0 and "tme-mk-max-keys 4 needs more than 2 KeyID bits" in err,
       "tme-mk-max-keys beyond 2^bits - 1 is refused", err)
    rc, err = start_error("max,tme-mk=on,tme-mk-aes-xts-128=off,tme-mk-aes-xts-256=off")
    ok(rc != 0 and "at least one of" in err, "no algorithm is refused", err)
    rc, err = start_error("max,+tme")
    ok("TCG doesn't support requested feature: CPUID.07H:ECX.tme" in err,
       "+tme without tme-mk=on is filtered out with a warning", err)

    r, err = qmp("max,tme-mk=on", [{"execute": "query-mktme"}],
                 "-smp", "2,sockets=2")
    info = r[0].get("return", {}) if r else {}
    ok(info.get("keyid-bits") == 6 and info.get("keyid-shift") == 40 and
       info.get("usable-keyids") == 63,
       "defaults: 6 KeyID bits at bit 40 (phys-bits 46), 63 KeyIDs", r)
    ok(info.get("algorithms") == ["aes-xts-128", "aes-xts-256"],
       "defaults: both algorithms", r)
    ok(info.get("keyed-pages") == 0 and info.get("owner-changes") == 0,
       "no page is keyed at start", r)
    ok([p.get("socket") for p in info.get("packages", [])] == [0, 1] and
       all(p.get("keys") == [] for p in info.get("packages", [])),
       "one empty key table per socket at start", r)

    r, err = qmp("max,tme-mk=on,tme-mk-keyid-bits=15,phys-bits=52,"
                 "tme-mk-aes-xts-256=off", [{"execute": "query-mktme"}])
    info = r[0].get("return", {}) if r else {}
    ok(info.get("usable-keyids") == 32767 and info.get("keyid-shift") == 37
       and info.get("algorithms") == ["aes-xts-128"],
       "15 KeyID bits: 32767 KeyIDs; algorithms as configured", r)

    r, err = qmp("max,tme-mk=on,tme-mk-keyid-bits=2,tme-mk-max-keys=3",
                 [{"execute": "query-mktme"}])
    ok(r and r[0].get("return", {}).get("usable-keyids") == 3,
       "the smallest real part: 3 KeyIDs", r)

    r, err = qmp("max", [{"execute": "query-mktme"},
                         {"execute": "query-mktme-checker"},
                         {"execute": "mktme-checker-set",
                          "arguments": {"enabled": True}}])
    ok(len(r) == 3 and all("TME-MK is not enabled" in
                           x.get("error", {}).get("desc", "") for x in r),
       "monitor commands fail clearly without tme-mk", r)

    r, err = qmp("max,tme-mk=on", [
        {"execute": "mktme-checker-set", "arguments": {"enabled": True}},
        {"execute": "query-mktme-checker"},
        {"execute": "mktme-inject-pconfig-error",
         "arguments": {"status": "entropy-error", "count": 2}},
        {"execute": "mktme-inject-pconfig-error",
         "arguments": {"status": "bogus", "count": 1}},
        {"execute": "human-monitor-command",
         "arguments": {"command-line": "info mktme"}}])
    ok(len(r) == 5 and r[1].get("return", {}).get("enabled") is True,
       "mktme-checker-set switches the checker on", r)
    ok(len(r) == 5 and "return" in r[2] and "error" in r[3],
       "mktme-inject-pconfig-error takes entropy-error, refuses bogus", r)
    ok(len(r) == 5 and "TME-MK: 6 KeyID bits at bit 40" in r[4].get("return", "")
       and "checker: on" in r[4].get("return", ""),
       "HMP info mktme", r)

    # pc_memory_init() moves AMD guests' RAM above 4 GiB to 1 TiB when
    # maxmem reaches the HyperTransport hole: with 46 physical and 6 KeyID
    # bits, 1 TiB is where the KeyID-1 alias starts.
    rc, err = start_error("max,tme-mk=on", "-m", "4G,slots=2,maxmem=1T")
    ok(rc != 0 and "overlap the KeyID aliases from 0x10000000000" in err and
       "phys-bits 46, tme-mk-keyid-bits 6" in err and "maxmem" in err,
       "AMD: RAM relocated to 1 TiB (the KeyID-1 alias) is refused", err)
    rc, err = start_error("max,vendor=GenuineIntel,tme-mk=on",
                          "-m", "1G,slots=1,maxmem=1100G")
    ok(rc != 0 and "overlap the KeyID aliases" in err,
       "Intel: hotpluggable memory up to the KeyID aliases is refused", err)
    rc, err = start_error("max,tme-mk=on,phys-bits=48", "-m",
                          "4G,slots=2,maxmem=1T")
    ok(rc == 0, "the same layout with phys-bits=48 (aliases from 4 TiB) "
       "starts", err)
    rc, err = start_error("max,tme-mk=on", "-m", "1G,slots=1,maxmem=64G")
    ok(rc == 0, "a layout below the aliases starts", err)

    r, err = qmp("max,tme-mk=on", [{"execute": "query-migrate"},
                                   {"execute": "migrate",
                                    "arguments": {"uri": "exec:cat >/dev/null"}}])
    ok(len(r) == 2 and "TME-MK emulation does not support migration" in
       r[1].get("error", {}).get("desc", ""),
       "migration is blocked with a reason", r)

    # memory-backend-mktme on this machine, whose kernel cannot key memory
    # (the lab's qemu_keyed suite runs it where it can)
    r, err = qmp("max", [{"execute": "qom-list-types",
                          "arguments": {"implements": "memory-backend"}},
                         {"execute": "query-mktme-memory"},
                         {"execute": "human-monitor-command",
                          "arguments": {"command-line": "info mktme-memory"}}])
    types = [t.get("name") for t in r[0].get("return", [])] if r else []
    ok("memory-backend-ram" in types and "memory-backend-mktme" not in types,
       "memory-backend-mktme is not registered where the host cannot key "
       "memory (qom-list-types)", r)
    ok(len(r) == 3 and r[1].get("return") ==
       {"enabled": False, "kvm": False, "backends": []},
       "query-mktme-memory answers: not enabled", r)
    ok(len(r) == 3 and r[2].get("return") == "guest RAM: not encrypted\r\n",
       "HMP info mktme-memory: not encrypted", r)
    rc, err = start_error("max", "-object",
                          "memory-backend-mktme,id=m,size=64M,key=1")
    ok(rc != 0 and "memory-backend-mktme" in err,
       "-object memory-backend-mktme fails where the host cannot key memory",
       err)

    print("1..%d" % n)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
