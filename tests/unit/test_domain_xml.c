// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests of libvirt-hook/domain_xml.c: reading domain XML as libvirt
 * hands it to hooks, the schema of <mktme:encryption>, what an encrypted
 * domain cannot have, and the edits mktmectl makes.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../libvirt-hook/domain_xml.h"

#define SCHEMA "libvirt-hook/domain-encryption.rng"
#define WRAPPER "/usr/libexec/mktme-kvm/qemu-system-x86_64"
#define NS "https://mktme-kvm.org/schemas/domain/1.0"

static char xml[8192];

/* A domain with METADATA inside <metadata> (or none) and EXTRA elements */
static const char *domain(const char *metadata, const char *extra)
{
	snprintf(xml, sizeof(xml),
		 "<domain type='kvm'><name>vm1</name>"
		 "<uuid>0b8f1e4c-1111-2222-3333-444455556666</uuid>"
		 "%s%s%s<memory unit='MiB'>512</memory>%s"
		 "<devices><emulator>" WRAPPER "</emulator></devices></domain>",
		 metadata ? "<metadata><other:x xmlns:other='urn:other'/>" : "",
		 metadata ? metadata : "", metadata ? "</metadata>" : "",
		 extra ? extra : "");
	return xml;
}

static int read_dom(const char *x, struct domain_info *d, struct mkerr *e)
{
	return domain_xml_read(x, strlen(x), SCHEMA, d, e);
}

Test(domain_xml, unmarked_domain)
{
	struct domain_info d;
	struct mkerr e;

	cr_assert_eq(read_dom(domain(NULL, NULL), &d, &e), 0, "%s", e.msg);
	cr_expect_str_eq(d.name, "vm1");
	cr_expect_str_eq(d.uuid, "0b8f1e4c-1111-2222-3333-444455556666");
	cr_expect_str_eq(d.emulator, WRAPPER);
	cr_expect(!d.marked);
}

Test(domain_xml, marked_domain_every_form)
{
	static const struct {
		const char *el, *type, *alg, *key;
	} ok[] = {
		{ "type='cpu' algorithm='aes-xts-256'", "cpu", "aes-xts-256", "" },
		{ "type='no-encrypt' algorithm='aes-xts-128'", "no-encrypt", "aes-xts-128", "" },
		{ "type='cpu' algorithm='aes-xts-128' key='tenant-a'", "cpu", "aes-xts-128", "tenant-a" },
		{ "type='user' algorithm='aes-xts-256' key='k.1_x-2'", "user", "aes-xts-256", "k.1_x-2" },
	};
	char md[512];
	size_t i;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		struct domain_info d;
		struct mkerr e;

		snprintf(md, sizeof(md), "<m:encryption xmlns:m='" NS "' %s/>", ok[i].el);
		cr_assert_eq(read_dom(domain(md, NULL), &d, &e), 0, "%s: %s", ok[i].el, e.msg);
		cr_expect(d.marked);
		cr_expect_str_eq(d.attr.type, ok[i].type);
		cr_expect_str_eq(d.attr.algorithm, ok[i].alg);
		cr_expect_str_eq(d.attr.key, ok[i].key);
		cr_expect_str_eq(d.unsupported, "");
		cr_expect_eq(domain_xml_check(&d, WRAPPER, &e), 0, "%s", e.msg);
	}
}

Test(domain_xml, schema_rejects_with_a_message)
{
	static const char *bad[] = {
		"type='user' algorithm='aes-xts-256'",		/* user needs key */
		"type='cpu'",					/* no algorithm */
		"algorithm='aes-xts-128'",			/* no type */
		"type='tdx' algorithm='aes-xts-128'",
		"type='cpu' algorithm='aes-gcm'",
		"type='cpu' algorithm='aes-xts-128' key='a:b'",	/* reserved ':' */
		"type='cpu' algorithm='aes-xts-128' key=''",
		"type='cpu' algorithm='aes-xts-128' colour='red'",
	};
	char md[512];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct domain_info d;
		struct mkerr e;

		snprintf(md, sizeof(md), "<m:encryption xmlns:m='" NS "' %s/>", bad[i]);
		cr_expect_eq(read_dom(domain(md, NULL), &d, &e), -1, "%s accepted", bad[i]);
		cr_expect(strstr(e.msg, "does not match the schema"), "%s: %s", bad[i], e.msg);
		cr_expect(strstr(e.msg, "domain vm1"), "%s", e.msg);
	}
}

Test(domain_xml, children_and_second_element_rejected)
{
	struct domain_info d;
	struct mkerr e;

	cr_expect_eq(read_dom(domain("<m:encryption xmlns:m='" NS "' type='cpu' "
				     "algorithm='aes-xts-128'><m:x/></m:encryption>",
				     NULL), &d, &e), -1);
	cr_expect_eq(read_dom(domain("<m:encryption xmlns:m='" NS "' type='cpu' "
				     "algorithm='aes-xts-128'/><m:other xmlns:m='" NS "'/>",
				     NULL), &d, &e), -1);
	cr_expect(strstr(e.msg, "more than one element"), "%s", e.msg);
}

Test(domain_xml, malformed_and_incomplete_xml)
{
	static const char *bad[] = {
		"", "<domain", "<notadomain/>",
		"<domain><uuid>0b8f1e4c-1111-2222-3333-444455556666</uuid></domain>",
		"<domain><name>x</name><uuid>nope</uuid></domain>",
		"<!DOCTYPE d [<!ENTITY e SYSTEM 'file:///etc/passwd'>]><domain><name>&e;</name></domain>",
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct domain_info d;
		struct mkerr e;

		cr_expect_eq(read_dom(bad[i], &d, &e), -1, "accepted: %s", bad[i]);
		cr_expect_neq(e.msg[0], 0);
		cr_expect(!strstr(d.name, "root:"), "an external entity was read");
	}
}

Test(domain_xml, unsupported_features_named)
{
	static const struct {
		const char *extra, *word;
	} cases[] = {
		{ "<memoryBacking><hugepages/></memoryBacking>", "hugepages" },
		{ "<memoryBacking><source type='memfd'/></memoryBacking>", "memfd" },
		{ "<memoryBacking><access mode='shared'/></memoryBacking>", "shared" },
		{ "<devices><memory model='nvdimm'/></devices>", "nvdimm" },
		{ "<launchSecurity type='sev'/>", "launchSecurity" },
	};
	const char *md = "<m:encryption xmlns:m='" NS "' type='cpu' algorithm='aes-xts-128'/>";
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct domain_info d;
		struct mkerr e;

		cr_assert_eq(read_dom(domain(md, cases[i].extra), &d, &e), 0, "%s", e.msg);
		cr_expect(strstr(d.unsupported, cases[i].word), "%s: %s",
			  cases[i].word, d.unsupported);
		cr_expect_eq(domain_xml_check(&d, WRAPPER, &e), -1);
		cr_expect(strstr(e.msg, "cannot have"), "%s", e.msg);
	}
}

Test(domain_xml, check_emulator_both_ways)
{
	const char *md = "<m:encryption xmlns:m='" NS "' type='cpu' algorithm='aes-xts-128'/>";
	struct domain_info d;
	struct mkerr e;

	cr_assert_eq(read_dom(domain(md, NULL), &d, &e), 0);
	cr_expect_eq(domain_xml_check(&d, "/other/wrapper", &e), -1);
	cr_expect(strstr(e.msg, "mktmectl domain enable vm1"), "%s", e.msg);
	cr_assert_eq(read_dom(domain(NULL, NULL), &d, &e), 0);
	cr_expect_eq(domain_xml_check(&d, WRAPPER, &e), -1);
	cr_expect(strstr(e.msg, "mktmectl domain disable vm1"), "%s", e.msg);
	cr_expect_eq(domain_xml_check(&d, "/other/wrapper", &e), 0);
}

Test(domain_xml, edit_enable_then_disable)
{
	struct mktme_attr a = { "cpu", "aes-xts-256", "tenant-b" };
	struct domain_info d;
	struct mkerr e;
	char *on, *off;

	domain("", NULL);	/* another application's metadata only */
	on = domain_xml_edit(xml, strlen(xml), &a, "/new/emu", &e);
	cr_assert_not_null(on, "%s", e.msg);
	cr_assert_eq(read_dom(on, &d, &e), 0, "%s", e.msg);
	cr_expect(d.marked);
	cr_expect_str_eq(d.attr.key, "tenant-b");
	cr_expect_str_eq(d.emulator, "/new/emu");
	cr_expect(strstr(on, "urn:other"), "other applications' metadata is kept");
	off = domain_xml_edit(on, strlen(on), NULL, "/usr/bin/qemu-system-x86_64", &e);
	cr_assert_not_null(off, "%s", e.msg);
	cr_assert_eq(read_dom(off, &d, &e), 0, "%s", e.msg);
	cr_expect(!d.marked);
	cr_expect_str_eq(d.emulator, "/usr/bin/qemu-system-x86_64");
	cr_expect(strstr(off, "urn:other"));
	free(on);
	free(off);
}

Test(domain_xml, edit_adds_metadata_and_emulator)
{
	const char *bare = "<domain type='kvm'><name>b</name>"
		"<uuid>0b8f1e4c-1111-2222-3333-444455556666</uuid></domain>";
	struct mktme_attr a = { "no-encrypt", "aes-xts-128", "" };
	struct domain_info d;
	struct mkerr e;
	char *x = domain_xml_edit(bare, strlen(bare), &a, WRAPPER, &e);

	cr_assert_not_null(x, "%s", e.msg);
	cr_assert_eq(read_dom(x, &d, &e), 0, "%s", e.msg);
	cr_expect(d.marked);
	cr_expect_str_eq(d.attr.type, "no-encrypt");
	cr_expect_str_eq(d.emulator, WRAPPER);
	free(x);
}

Test(domain_xml, attr_validate_and_serialise)
{
	struct mktme_attr good = { "user", "aes-xts-128", "t1" };
	struct mktme_attr bad = { "user", "aes-xts-128", "" };
	struct mkerr e;
	char *x;

	cr_expect_eq(mktme_attr_validate(&good, SCHEMA, &e), 0, "%s", e.msg);
	cr_expect_eq(mktme_attr_validate(&bad, SCHEMA, &e), -1);
	cr_expect_eq(mktme_attr_validate(&good, "/nonexistent.rng", &e), -1);
	cr_expect(strstr(e.msg, "can't load the schema"), "%s", e.msg);
	x = mktme_attr_to_xml(&good);
	cr_assert_not_null(x);
	cr_expect(strstr(x, "xmlns:mktme=\"" NS "\""), "%s", x);
	cr_expect(strstr(x, "key=\"t1\""), "%s", x);
	free(x);
}
