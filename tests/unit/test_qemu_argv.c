// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests of libvirt-hook/qemu_argv.c: libvirt 11.3's QEMU command
 * lines (as virsh domxml-to-native shows them) turned into keyed RAM, and
 * the command lines the wrapper refuses.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <string.h>

#include "../../libvirt-hook/qemu_argv.h"

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* ARGV rewritten with the key SERIAL, which must work and key KEYED backends */
static char **rewrite_keyed(int argc, char **argv, int serial, int keyed)
{
	struct mkerr e;
	char **out;
	int n;

	out = qemu_argv_rewrite(argc, argv, serial, &n, &e);
	cr_assert_not_null(out, "%s", e.msg);
	cr_expect_eq(n, keyed);
	return out;
}

Test(qemu_argv, uuid_found_or_a_probe)
{
	char *dom[] = { "qemu", "-name", "guest=vm1", "-uuid",
			"0b8f1e4c-1111-2222-3333-444455556666", "-S" };
	char *probe[] = { "qemu", "-machine", "none", "-qmp", "unix:/x" };

	cr_expect_str_eq(qemu_argv_uuid(N(dom), dom), "0b8f1e4c-1111-2222-3333-444455556666");
	cr_expect_null(qemu_argv_uuid(N(probe), probe));
}

Test(qemu_argv, q35_pc_ram_becomes_mktme)
{
	char *argv[] = { "qemu", "-machine",
		"pc-q35-10.0,usb=off,dump-guest-core=off,memory-backend=pc.ram,acpi=on",
		"-m", "size=524288k", "-object",
		"{\"qom-type\":\"memory-backend-ram\",\"id\":\"pc.ram\",\"size\":536870912}",
		"-uuid", "u" };
	char **out = rewrite_keyed(N(argv), argv, 4242, 1);

	cr_expect_str_eq(out[6], "memory-backend-mktme,id=pc.ram,size=536870912,key=4242");
	cr_expect_str_eq(out[2], argv[2], "everything else is untouched");
	cr_expect_null(out[N(argv)]);
	qemu_argv_free(out);
}

Test(qemu_argv, numa_cells_and_dimms_all_keyed)
{
	char *argv[] = { "qemu", "-machine", "pc-q35-10.0,usb=off",
		"-object", "{\"qom-type\":\"memory-backend-ram\",\"id\":\"ram-node0\","
			   "\"size\":268435456,\"host-nodes\":[0,1],\"policy\":\"bind\"}",
		"-numa", "node,nodeid=0,cpus=0,memdev=ram-node0",
		"-object", "{\"qom-type\":\"memory-backend-ram\",\"id\":\"ram-node1\","
			   "\"size\":268435456,\"prealloc\":true}",
		"-numa", "node,nodeid=1,cpus=1,memdev=ram-node1",
		"-object", "{\"qom-type\":\"memory-backend-ram\",\"id\":\"memdimm0\","
			   "\"size\":134217728}",
		"-device", "{\"driver\":\"pc-dimm\",\"memdev\":\"memdimm0\",\"id\":\"dimm0\"}",
		"-object", "{\"qom-type\":\"secret\",\"id\":\"s0\",\"data\":\"x\"}" };
	char **out = rewrite_keyed(N(argv), argv, 7, 3);

	cr_expect_str_eq(out[4], "memory-backend-mktme,id=ram-node0,size=268435456,"
			 "host-nodes.0=0,host-nodes.1=1,policy=bind,key=7");
	cr_expect_str_eq(out[8], "memory-backend-mktme,id=ram-node1,size=268435456,"
			 "prealloc=on,key=7");
	cr_expect_str_eq(out[12], "memory-backend-mktme,id=memdimm0,size=134217728,key=7");
	cr_expect_str_eq(out[16], argv[16], "other objects stay JSON");
	qemu_argv_free(out);
}

Test(qemu_argv, commas_in_values_are_doubled)
{
	struct mkerr e;
	char *kv = qemu_object_keyval("{\"qom-type\":\"memory-backend-ram\","
				      "\"id\":\"a,b\",\"size\":1}", MKTME_BACKEND, 3, &e);

	cr_assert_not_null(kv, "%s", e.msg);
	cr_expect_str_eq(kv, "memory-backend-mktme,id=a,,b,size=1,key=3");
	free(kv);
}

Test(qemu_argv, refusals_fail_closed)
{
	static const struct {
		const char *flag, *arg, *word;
	} bad[] = {
		{ "-object", "{\"qom-type\":\"memory-backend-memfd\",\"id\":\"pc.ram\","
			     "\"size\":1}", "cannot key" },
		{ "-object", "{\"qom-type\":\"memory-backend-file\",\"id\":\"pc.ram\","
			     "\"size\":1,\"mem-path\":\"/dev/hugepages\"}", "cannot key" },
		{ "-object", "memory-backend-ram,id=pc.ram,size=1", "cannot key" },
		{ "-object", "{\"qom-type\":\"memory-backend-ram\",\"id\":\"pc.ram\","
			     "\"size\":1,\"key\":99}", "already has a key" },
		{ "-object", "{\"qom-type\":\"memory-backend-ram\",\"id\":\"pc.ram\","
			     "\"size\":1,\"x\":{\"nested\":1}}", "cannot pass on" },
		{ "-numa", "node,nodeid=0,mem=512", "NUMA" },
	};
	int i;

	for (i = 0; i < N(bad); i++) {
		char *argv[] = { "qemu", "-machine", "pc,memory-backend=pc.ram",
			(char *)bad[i].flag, (char *)bad[i].arg };
		struct mkerr e;
		int n;

		cr_expect_null(qemu_argv_rewrite(N(argv), argv, 1, &n, &e), "%s", bad[i].arg);
		cr_expect(strstr(e.msg, bad[i].word), "%s: %s", bad[i].arg, e.msg);
	}
}

Test(qemu_argv, no_ram_backend_fails)
{
	char *none[] = { "qemu", "-machine", "pc", "-m", "512" };
	char *loose[] = { "qemu", "-machine", "pc", "-m", "512", "-object",
		"{\"qom-type\":\"memory-backend-ram\",\"id\":\"memdimm0\",\"size\":1}" };
	struct mkerr e;
	int n;

	cr_expect_null(qemu_argv_rewrite(N(none), none, 1, &n, &e));
	cr_expect(strstr(e.msg, "no memory-backend-ram"), "%s", e.msg);
	/* A DIMM keyed, but the machine's own RAM not from a backend */
	cr_expect_null(qemu_argv_rewrite(N(loose), loose, 1, &n, &e));
}
