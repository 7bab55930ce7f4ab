// SPDX-License-Identifier: GPL-2.0
/*
 * mktmectl domain enable|disable|show: a libvirt domain's encryption
 * attribute (<mktme:encryption> in its <metadata>) and the <emulator> it
 * needs (mktme-kvm's QEMU wrapper), through libvirt's C API.  Changes go
 * to the persistent definition and take effect at the domain's next
 * start.  See mktmectl(8) and mktme-kvm-hook(8).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "cli.h"
#include "mktme.h"
#include "../../libvirt-hook/domain_xml.h"
#include "../../libvirt-hook/hook_config.h"
#include "../../libvirt-hook/hook_state.h"

static const char *uri;	/* --connect; NULL: libvirt's default */

static void quiet(void *data, virErrorPtr err)
{
	(void)data;
	(void)err;
}

static const char *virt_error(void)
{
	const char *m = virGetLastErrorMessage();

	return m ? m : "unknown libvirt error";
}

static void load_config(struct hook_config *cfg)
{
	struct mkerr e;

	if (hook_config_load(cfg, &e))
		die(1, "%s", e.msg);
}

struct session {
	virConnectPtr conn;
	virDomainPtr dom;
};

static void open_domain(struct session *s, const char *name)
{
	virSetErrorFunc(NULL, quiet);
	s->conn = virConnectOpen(uri);
	if (!s->conn)
		die(1, "can't connect to libvirt (%s): %s", uri ? uri : "default URI",
		    virt_error());
	s->dom = virDomainLookupByName(s->conn, name);
	if (!s->dom)
		s->dom = virDomainLookupByUUIDString(s->conn, name);
	if (!s->dom) {
		virConnectClose(s->conn);
		die(1, "no domain %s (virsh list --all)", name);
	}
}

static void close_domain(struct session *s)
{
	virDomainFree(s->dom);
	virConnectClose(s->conn);
}

/* The domain's XML: persistent (INACTIVE) or, when it runs, live */
static char *domain_xml(struct session *s, bool live)
{
	char *xml = virDomainGetXMLDesc(s->dom, VIR_DOMAIN_XML_SECURE |
					(live ? 0 : VIR_DOMAIN_XML_INACTIVE));

	if (!xml) {
		close_domain(s);
		die(1, "can't read the domain's XML: %s", virt_error());
	}
	return xml;
}

static void read_info(const char *xml, const struct hook_config *cfg,
		      struct domain_info *d)
{
	struct mkerr e;

	if (domain_xml_read(xml, strlen(xml), cfg->schema, d, &e))
		die(1, "%s", e.msg);
}

/* The domain's persistent (or live) XML, read into D */
static void read_domain(struct session *s, const struct hook_config *cfg,
			bool live, struct domain_info *d)
{
	char *xml = domain_xml(s, live);

	read_info(xml, cfg, d);
	free(xml);
}

/*
 * A managed save image carries the domain's XML as it was saved, and
 * virsh start restores from it: without this, a domain enabled after
 * virsh managedsave would come back unencrypted (and one disabled would
 * fail to restore).  The image gets the same edit; the emulator changes
 * only where the definition's did (EMULATOR NULL: unchanged; for disable,
 * only if the image's is the wrapper).
 */
static void redefine_managed_save(struct session *s,
				  const struct mktme_attr *attr,
				  const char *emulator,
				  const struct hook_config *cfg)
{
	struct domain_info d;
	char *xml, *edited;
	struct mkerr e;

	if (virDomainHasManagedSaveImage(s->dom, 0) != 1)
		return;
	xml = virDomainManagedSaveGetXMLDesc(s->dom, VIR_DOMAIN_SAVE_IMAGE_XML_SECURE);
	if (!xml) {
		close_domain(s);
		die(1, "the definition changed, but libvirt does not show the XML "
		    "of the domain's managed save image (%s): remove the image "
		    "(virsh managedsave-remove) or restore it and shut the domain "
		    "down, then run this again", virt_error());
	}
	if (!attr) {
		read_info(xml, cfg, &d);
		emulator = strcmp(d.emulator, cfg->wrapper) ? NULL : cfg->qemu;
	}
	edited = domain_xml_edit(xml, strlen(xml), attr, emulator, &e);
	free(xml);
	if (!edited) {
		close_domain(s);
		die(1, "the managed save image's XML: %s", e.msg);
	}
	if (virDomainManagedSaveDefineXML(s->dom, edited, 0) < 0) {
		free(edited);
		close_domain(s);
		die(1, "the definition changed, but libvirt refused the edited XML "
		    "of the domain's managed save image (%s): remove the image "
		    "(virsh managedsave-remove) or restore it and shut the domain "
		    "down, then run this again", virt_error());
	}
	free(edited);
}

/*
 * Redefine the domain with its encryption ATTR (NULL: none) and EMULATOR,
 * and its managed save image if it has one
 */
static void redefine(struct session *s, const struct mktme_attr *attr,
		     const char *emulator, const struct hook_config *cfg)
{
	char *xml = domain_xml(s, false), *edited;
	struct domain_info d;
	virDomainPtr nd;
	struct mkerr e;

	edited = domain_xml_edit(xml, strlen(xml), attr, emulator, &e);
	free(xml);
	if (!edited) {
		close_domain(s);
		die(1, "%s", e.msg);
	}
	read_info(edited, cfg, &d);
	if (attr && domain_xml_check(&d, cfg->wrapper, &e)) {
		free(edited);
		close_domain(s);
		die(1, "domain %s: %s", d.name, e.msg);
	}
	nd = virDomainDefineXML(s->conn, edited);
	free(edited);
	if (!nd) {
		close_domain(s);
		die(1, "libvirt refused the edited definition: %s", virt_error());
	}
	virDomainFree(nd);
	redefine_managed_save(s, attr, emulator, cfg);
}

/* --json: {"domain": NAME, "encrypted": ENCRYPTED} */
static void print_encrypted_json(const char *name, bool encrypted)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "domain", json_object_new_string(name));
	json_object_object_add(o, "encrypted", json_object_new_boolean(encrypted));
	print_json(o);
}

static void copy_option(const char *name, char *dst, size_t len)
{
	if (strlen(optarg) >= len)
		die(2, "--%s %s is too long", name, optarg);
	strcpy(dst, optarg);
}

static int act_domain_enable(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "type", required_argument, NULL, 't' },
		{ "algorithm", required_argument, NULL, 'a' },
		{ "key", required_argument, NULL, 'k' },
		{ NULL, 0, NULL, 0 },
	};
	struct mktme_attr attr = { "cpu", "aes-xts-128", "" };
	struct hook_config cfg;
	struct session s;
	struct mkerr e;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "t:a:k:", opts, NULL)) != -1) {
		switch (c) {
		case 't': copy_option("type", attr.type, sizeof(attr.type)); break;
		case 'a': copy_option("algorithm", attr.algorithm, sizeof(attr.algorithm)); break;
		case 'k': copy_option("key", attr.key, sizeof(attr.key)); break;
		default: usage();
		}
	}
	if (optind != argc - 1)
		usage();
	load_config(&cfg);
	if (mktme_attr_validate(&attr, cfg.schema, &e))
		die(2, "%s", e.msg);
	if (access(cfg.wrapper, X_OK))
		die(1, "mktme-kvm's QEMU wrapper %s is not installed (make "
		    "install-libvirt)", cfg.wrapper);
	open_domain(&s, argv[optind]);
	redefine(&s, &attr, cfg.wrapper, &cfg);
	if (!json) {
		printf("domain %s: encryption %s %s%s%s, emulator %s; takes effect "
		       "at its next start%s\n", argv[optind], attr.type,
		       attr.algorithm, attr.key[0] ? " key " : "", attr.key,
		       cfg.wrapper, virDomainIsActive(s.dom) == 1 ?
		       " (it runs unencrypted until it is shut down)" : "");
	} else {
		print_encrypted_json(argv[optind], true);
	}
	close_domain(&s);
	return 0;
}

static int act_domain_disable(int argc, char **argv)
{
	struct hook_config cfg;
	struct domain_info d;
	struct session s;

	if (argc != 2)
		usage();
	load_config(&cfg);
	open_domain(&s, argv[1]);
	read_domain(&s, &cfg, false, &d);
	/* The wrapper goes only where it is the emulator */
	redefine(&s, NULL, strcmp(d.emulator, cfg.wrapper) ? NULL : cfg.qemu, &cfg);
	if (json) {
		print_encrypted_json(argv[1], false);
	} else {
		printf("domain %s: encryption disabled%s; takes effect at its next "
		       "start\n", argv[1], strcmp(d.emulator, cfg.wrapper) ? "" :
		       ", emulator restored");
	}
	close_domain(&s);
	return 0;
}

/* The key the hook gave a running domain, and its KeyID (/proc/keys) */
struct running_key {
	bool found;
	char description[128];
	int serial;
	int keyid;
};

static void running_key(const struct hook_config *cfg, const char *uuid,
			struct running_key *rk)
{
	struct mktme_key_info *keys;
	struct state_domain *d;
	struct state_key *k;
	struct state st;
	struct mkerr e;
	int n, i;

	memset(rk, 0, sizeof(*rk));
	rk->keyid = -1;
	if (state_load(cfg->state_dir, &st, &e)) {
		fprintf(stderr, "mktmectl: %s\n", e.msg);
		return;
	}
	d = state_find_domain(&st, uuid);
	k = d ? state_find_key(&st, d->key) : NULL;
	if (k) {
		rk->found = true;
		snprintf(rk->description, sizeof(rk->description), "%s", k->description);
		rk->serial = k->serial;
		n = mktme_keys_read(MKTME_PROC_KEYS, &keys);
		for (i = 0; i < n; i++)
			if ((int)keys[i].serial == k->serial)
				rk->keyid = keys[i].keyid;
		if (n >= 0)
			free(keys);
	}
	state_free(&st);
}

static int act_domain_show(int argc, char **argv)
{
	struct domain_info d, live;
	struct hook_config cfg;
	struct running_key rk = { 0 };
	struct session s;
	struct mkerr e;
	bool active, ready, pending = false;

	if (argc != 2)
		usage();
	load_config(&cfg);
	open_domain(&s, argv[1]);
	read_domain(&s, &cfg, false, &d);
	active = virDomainIsActive(s.dom) == 1;
	ready = !domain_xml_check(&d, cfg.wrapper, &e);
	if (active) {
		read_domain(&s, &cfg, true, &live);
		pending = live.marked != d.marked ||
			  memcmp(&live.attr, &d.attr, sizeof(d.attr));
		if (live.marked)
			running_key(&cfg, d.uuid, &rk);
	}
	close_domain(&s);
	if (json) {
		json_object *o = json_object_new_object();

		json_object_object_add(o, "domain", json_object_new_string(d.name));
		json_object_object_add(o, "uuid", json_object_new_string(d.uuid));
		json_object_object_add(o, "encrypted", json_object_new_boolean(d.marked));
		json_object_object_add(o, "type", d.marked ?
				       json_object_new_string(d.attr.type) : NULL);
		json_object_object_add(o, "algorithm", d.marked ?
				       json_object_new_string(d.attr.algorithm) : NULL);
		json_object_object_add(o, "key", d.attr.key[0] ?
				       json_object_new_string(d.attr.key) : NULL);
		json_object_object_add(o, "emulator", json_object_new_string(d.emulator));
		json_object_object_add(o, "ready", json_object_new_boolean(ready));
		json_object_object_add(o, "problem", ready ? NULL :
				       json_object_new_string(e.msg));
		json_object_object_add(o, "active", json_object_new_boolean(active));
		json_object_object_add(o, "pending_restart", json_object_new_boolean(pending));
		json_object_object_add(o, "key_description", rk.found ?
				       json_object_new_string(rk.description) : NULL);
		json_object_object_add(o, "key_serial", rk.found ?
				       json_object_new_int(rk.serial) : NULL);
		json_object_object_add(o, "keyid", rk.found && rk.keyid >= 0 ?
				       json_object_new_int(rk.keyid) : NULL);
		print_json(o);
		return 0;
	}
	printf("domain:     %s (%s)\n", d.name, d.uuid);
	if (d.marked)
		printf("encryption: %s %s%s%s\n", d.attr.type, d.attr.algorithm,
		       d.attr.key[0] ? " key " : "", d.attr.key);
	else
		printf("encryption: none\n");
	printf("emulator:   %s%s\n", d.emulator[0] ? d.emulator : "(libvirt's default)",
	       strcmp(d.emulator, cfg.wrapper) ? "" : " (mktme-kvm QEMU wrapper)");
	printf("ready:      %s%s\n", ready ? "yes" : "no: ", ready ? "" : e.msg);
	printf("state:      %s%s\n", active ? "running" : "shut off",
	       pending ? " (the definition changed: takes effect at the next start)" : "");
	if (rk.found) {
		printf("key:        %s serial %d", rk.description, rk.serial);
		if (rk.keyid >= 0)
			printf(" KeyID %d", rk.keyid);
		printf("\n");
	}
	return 0;
}

const struct command domain_commands[] = {
	{ act_domain_disable, "disable", "DOMAIN" },
	{ act_domain_enable, "enable", "[--type cpu|no-encrypt|user] [--algorithm aes-xts-128|aes-xts-256] [--key NAME] DOMAIN" },
	{ act_domain_show, "show", "DOMAIN" },
	{ NULL, NULL, NULL },
};

int act_domain(int argc, char **argv)
{
	/* --connect URI before the verb */
	if (argc >= 3 && (!strcmp(argv[1], "--connect") || !strcmp(argv[1], "-c"))) {
		uri = argv[2];
		argc -= 2;
		argv += 2;
	}
	return do_subcommand(domain_commands, argc, argv);
}
