/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The domain XML as libvirt hands it to hooks and as mktmectl edits it:
 * name, UUID, emulator, and the encryption attribute in <metadata> under
 * the mktme-kvm namespace (libxml2; the attribute is validated against
 * the RELAX NG schema domain-encryption.rng).
 */
#ifndef DOMAIN_XML_H
#define DOMAIN_XML_H

#include <stdbool.h>
#include <stddef.h>

#include "mkerr.h"

#define MKTME_NS		"https://mktme-kvm.org/schemas/domain/1.0"
#define MKTME_NS_PREFIX		"mktme"
#define MKTME_ELEMENT		"encryption"
#define MKTME_KEY_NAME_MAX	64

struct mktme_attr {
	char type[16];		/* cpu, no-encrypt or user */
	char algorithm[16];	/* aes-xts-128 or aes-xts-256 */
	char key[MKTME_KEY_NAME_MAX + 1]; /* shared key's name, "" if none */
};

struct domain_info {
	char name[256];
	char uuid[37];
	char emulator[4096];	/* "" when the XML names none */
	bool marked;		/* has a (valid) <mktme:encryption> */
	struct mktme_attr attr;
	/*
	 * For a marked domain: "" or the first thing in its XML that an
	 * encrypted domain cannot have, with the fix (hugepages, shared or
	 * file-backed memory, ...)
	 */
	char unsupported[512];
};

/*
 * Read a domain's XML.  -1 with e set when it is not well-formed, lacks
 * a name or UUID, or carries an mktme element the schema SCHEMA (path of
 * domain-encryption.rng) rejects.
 */
int domain_xml_read(const char *xml, size_t len, const char *schema,
		    struct domain_info *d, struct mkerr *e);

/*
 * Can D start as its XML says?  0, or -1 with e naming what stands in the
 * way and the fix: marked but its emulator is not WRAPPER, or something
 * an encrypted domain cannot have; or WRAPPER as the emulator of an
 * unmarked domain.
 */
int domain_xml_check(const struct domain_info *d, const char *wrapper,
		     struct mkerr *e);

/* Validate ATTR against SCHEMA as the element it becomes; 0 or -1 */
int mktme_attr_validate(const struct mktme_attr *attr, const char *schema,
			struct mkerr *e);

/* The element for ATTR, as libvirt stores it (malloc'd) */
char *mktme_attr_to_xml(const struct mktme_attr *attr);

/*
 * XML with the encryption attribute set to ATTR (NULL: removed) and the
 * <emulator> set to EMULATOR (NULL: unchanged).  malloc'd, or NULL with
 * e set.
 */
char *domain_xml_edit(const char *xml, size_t len,
		      const struct mktme_attr *attr, const char *emulator,
		      struct mkerr *e);

#endif
