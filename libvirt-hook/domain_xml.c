// SPDX-License-Identifier: GPL-2.0
/* The domain XML: see domain_xml.h */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/relaxng.h>
#include <libxml/tree.h>
#include <libxml/xmlsave.h>
#include <libxml/xpath.h>
#include <libxml/xpathInternals.h>

#include "domain_xml.h"

/* Parse options: no network, no entity expansion, no messages on stderr */
#define PARSE_OPTS (XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING)

static void no_generic_errors(void *ctx, const char *msg, ...)
{
	(void)ctx;
	(void)msg;
}

/* The last libxml2 error as one line */
static const char *last_xml_error(void)
{
	static char line[256];
	const xmlError *x = xmlGetLastError();

	if (!x || !x->message)
		return "unknown error";
	snprintf(line, sizeof(line), "line %d: %s", x->line, x->message);
	line[strcspn(line, "\n")] = 0;
	return line;
}

static xmlDocPtr parse(const char *xml, size_t len, struct mkerr *e)
{
	xmlDocPtr doc;

	if (len > 64 * 1024 * 1024) {
		mkerr_set(e, "the domain XML is larger than 64 MiB");
		return NULL;
	}
	xmlSetGenericErrorFunc(NULL, no_generic_errors);
	xmlResetLastError();
	doc = xmlReadMemory(xml, (int)len, "domain.xml", NULL, PARSE_OPTS);
	if (!doc)
		mkerr_set(e, "the domain XML is not well-formed (%s)", last_xml_error());
	return doc;
}

/* Evaluate EXPR; NULL if it fails (only on allocation failure here) */
static xmlXPathObjectPtr eval(xmlXPathContextPtr ctx, const char *expr)
{
	return xmlXPathEvalExpression((const xmlChar *)expr, ctx);
}

static int count(xmlXPathContextPtr ctx, const char *expr)
{
	xmlXPathObjectPtr r = eval(ctx, expr);
	int n = 0;

	if (r && r->type == XPATH_NODESET && r->nodesetval)
		n = r->nodesetval->nodeNr;
	xmlXPathFreeObject(r);
	return n;
}

/* The string value of EXPR into buf; -1 if it does not fit */
static int string_of(xmlXPathContextPtr ctx, const char *expr, char *buf, size_t len)
{
	char full[256];
	xmlXPathObjectPtr r;
	int ret = 0;

	snprintf(full, sizeof(full), "normalize-space(%s)", expr);
	r = eval(ctx, full);
	buf[0] = 0;
	if (r && r->type == XPATH_STRING && r->stringval) {
		if (strlen((const char *)r->stringval) >= len)
			ret = -1;
		else
			strcpy(buf, (const char *)r->stringval);
	}
	xmlXPathFreeObject(r);
	return ret;
}

struct rng_errors {
	struct mkerr *e;
	bool set;
};

/* libxml2 2.9's xmlStructuredErrorFunc takes a non-const error */
static void rng_error(void *data, xmlErrorPtr x)
{
	struct rng_errors *re = data;
	char msg[256];

	if (re->set || !x || !x->message)
		return;
	snprintf(msg, sizeof(msg), "%s", x->message);
	msg[strcspn(msg, "\n")] = 0;
	mkerr_set(re->e, "%s", msg);
	re->set = true;
}

/* Validate the element EL (copied into a document of its own) */
static int validate_element(xmlNodePtr el, const char *schema, struct mkerr *e)
{
	xmlRelaxNGParserCtxtPtr pctx = NULL;
	xmlRelaxNGValidCtxtPtr vctx = NULL;
	xmlRelaxNGPtr rng = NULL;
	xmlDocPtr doc = NULL;
	xmlNodePtr copy;
	struct rng_errors re = { e, false };
	int ret = -1;

	pctx = xmlRelaxNGNewParserCtxt(schema);
	if (!pctx) {
		mkerr_set(e, "out of memory");
		goto out;
	}
	xmlRelaxNGSetParserStructuredErrors(pctx, rng_error, &re);
	rng = xmlRelaxNGParse(pctx);
	if (!rng) {
		mkerr_prefix(e, "can't load the schema %s (reinstall mktme-kvm's "
			     "libvirt hook)", schema);
		goto out;
	}
	vctx = xmlRelaxNGNewValidCtxt(rng);
	doc = xmlNewDoc((const xmlChar *)"1.0");
	copy = doc ? xmlDocCopyNode(el, doc, 1) : NULL;
	if (!vctx || !copy) {
		mkerr_set(e, "out of memory");
		goto out;
	}
	xmlDocSetRootElement(doc, copy);
	xmlRelaxNGSetValidStructuredErrors(vctx, rng_error, &re);
	if (xmlRelaxNGValidateDoc(vctx, doc) != 0) {
		if (!re.set)
			mkerr_set(e, "invalid element");
		mkerr_prefix(e, "<" MKTME_NS_PREFIX ":" MKTME_ELEMENT "> does not "
			     "match the schema (type cpu|no-encrypt|user, algorithm "
			     "aes-xts-128|aes-xts-256, key NAME: required for user)");
		goto out;
	}
	ret = 0;
out:
	xmlFreeDoc(doc);
	xmlRelaxNGFreeValidCtxt(vctx);
	xmlRelaxNGFree(rng);
	xmlRelaxNGFreeParserCtxt(pctx);
	return ret;
}

static void copy_attr(xmlNodePtr el, const char *name, char *buf, size_t len)
{
	xmlChar *v = xmlGetNoNsProp(el, (const xmlChar *)name);

	buf[0] = 0;
	if (v)
		snprintf(buf, len, "%s", (const char *)v);
	xmlFree(v);
}

/* What an encrypted domain cannot have, each with its fix */
static const struct {
	const char *xpath;
	const char *why;
} unsupported[] = {
	{ "/domain/memoryBacking/hugepages",
	  "<memoryBacking><hugepages/> (keyed memory is anonymous and uses "
	  "small pages): remove it" },
	{ "/domain/memoryBacking/source[@type and @type!='anonymous']",
	  "<memoryBacking><source type='file|memfd'/> (keyed guest RAM is private "
	  "anonymous memory): remove it" },
	{ "/domain/memoryBacking/access[@mode='shared'] | "
	  "/domain/cpu/numa/cell[@memAccess='shared'] | "
	  "/domain/devices/memory/access[@mode='shared']",
	  "shared memory access (vhost-user, virtiofs; keyed guest RAM is "
	  "private): remove mode='shared'/memAccess='shared'" },
	{ "/domain/devices/memory[@model!='dimm' and @model!='virtio-mem']",
	  "a memory device other than dimm or virtio-mem (nvdimm, virtio-pmem "
	  "and sgx-epc are not guest RAM that can be keyed): remove it" },
	{ "/domain/launchSecurity",
	  "<launchSecurity> (SEV, TDX and TME-MK keys exclude each other): "
	  "remove one of them" },
};

int domain_xml_read(const char *xml, size_t len, const char *schema,
		    struct domain_info *d, struct mkerr *e)
{
	xmlXPathContextPtr ctx = NULL;
	xmlXPathObjectPtr r = NULL;
	xmlDocPtr doc;
	size_t i;
	int n, ret = -1;

	memset(d, 0, sizeof(*d));
	doc = parse(xml, len, e);
	if (!doc)
		return -1;
	ctx = xmlXPathNewContext(doc);
	if (!ctx || xmlXPathRegisterNs(ctx, (const xmlChar *)MKTME_NS_PREFIX,
				       (const xmlChar *)MKTME_NS)) {
		mkerr_set(e, "out of memory");
		goto out;
	}
	if (count(ctx, "/domain") != 1) {
		mkerr_set(e, "the XML is not a libvirt domain (no <domain> root)");
		goto out;
	}
	if (string_of(ctx, "/domain/name", d->name, sizeof(d->name)) || !d->name[0]) {
		mkerr_set(e, "the domain XML has no <name> (or one over %zu bytes)",
			  sizeof(d->name) - 1);
		goto out;
	}
	if (string_of(ctx, "/domain/uuid", d->uuid, sizeof(d->uuid)) ||
	    strlen(d->uuid) != 36 ||
	    strspn(d->uuid, "0123456789abcdefABCDEF-") != 36) {
		mkerr_set(e, "domain %s: no <uuid> in the canonical form "
			  "(libvirt always writes one)", d->name);
		goto out;
	}
	if (string_of(ctx, "/domain/devices/emulator", d->emulator,
		      sizeof(d->emulator))) {
		mkerr_set(e, "domain %s: <emulator> is too long", d->name);
		goto out;
	}
	r = eval(ctx, "/domain/metadata/mktme:*");
	n = r && r->nodesetval ? r->nodesetval->nodeNr : 0;
	if (n > 1) {
		mkerr_set(e, "domain %s: more than one element in the mktme-kvm "
			  "namespace in <metadata>; keep one <" MKTME_NS_PREFIX ":"
			  MKTME_ELEMENT ">", d->name);
		goto out;
	}
	if (n == 1) {
		xmlNodePtr el = r->nodesetval->nodeTab[0];

		if (validate_element(el, schema, e)) {
			mkerr_prefix(e, "domain %s", d->name);
			goto out;
		}
		d->marked = true;
		copy_attr(el, "type", d->attr.type, sizeof(d->attr.type));
		copy_attr(el, "algorithm", d->attr.algorithm, sizeof(d->attr.algorithm));
		copy_attr(el, "key", d->attr.key, sizeof(d->attr.key));
		for (i = 0; i < sizeof(unsupported) / sizeof(unsupported[0]); i++) {
			if (count(ctx, unsupported[i].xpath) > 0) {
				snprintf(d->unsupported, sizeof(d->unsupported),
					 "%s", unsupported[i].why);
				break;
			}
		}
	}
	ret = 0;
out:
	xmlXPathFreeObject(r);
	xmlXPathFreeContext(ctx);
	xmlFreeDoc(doc);
	return ret;
}

int domain_xml_check(const struct domain_info *d, const char *wrapper,
		     struct mkerr *e)
{
	if (!d->marked) {
		if (!strcmp(d->emulator, wrapper))
			return mkerr_set(e, "its emulator is the mktme-kvm QEMU "
					 "wrapper (%s) but it has no <mktme:encryption>: "
					 "run 'mktmectl domain enable %s' to encrypt it, "
					 "or 'mktmectl domain disable %s' to restore its "
					 "emulator", wrapper, d->name, d->name);
		return 0;
	}
	if (d->unsupported[0])
		return mkerr_set(e, "an encrypted domain cannot have %s",
				 d->unsupported);
	if (strcmp(d->emulator, wrapper))
		return mkerr_set(e, "it is marked <mktme:encryption> but its "
				 "emulator is %s, not the mktme-kvm QEMU wrapper, so "
				 "its RAM would not be keyed: run 'mktmectl domain "
				 "enable %s' (sets <emulator>%s</emulator>)",
				 d->emulator[0] ? d->emulator : "libvirt's default",
				 d->name, wrapper);
	return 0;
}

/* EL becomes the attribute ATTR: its namespace and properties; -1 on ENOMEM */
static int set_mktme_props(xmlNodePtr el, const struct mktme_attr *attr)
{
	xmlNsPtr ns = xmlNewNs(el, (const xmlChar *)MKTME_NS,
			       (const xmlChar *)MKTME_NS_PREFIX);

	if (!ns)
		return -1;
	xmlSetNs(el, ns);
	if (!xmlSetProp(el, (const xmlChar *)"type", (const xmlChar *)attr->type) ||
	    !xmlSetProp(el, (const xmlChar *)"algorithm",
			(const xmlChar *)attr->algorithm) ||
	    (attr->key[0] && !xmlSetProp(el, (const xmlChar *)"key",
					  (const xmlChar *)attr->key)))
		return -1;
	return 0;
}

char *mktme_attr_to_xml(const struct mktme_attr *attr)
{
	xmlDocPtr doc = xmlNewDoc((const xmlChar *)"1.0");
	xmlNodePtr el = doc ? xmlNewDocNode(doc, NULL,
					    (const xmlChar *)MKTME_ELEMENT, NULL) : NULL;
	xmlBufferPtr buf = NULL;
	char *out = NULL;

	if (!el)
		goto out;
	xmlDocSetRootElement(doc, el);
	if (set_mktme_props(el, attr))
		goto out;
	buf = xmlBufferCreate();
	if (buf && xmlNodeDump(buf, doc, el, 0, 0) >= 0)
		out = strdup((const char *)xmlBufferContent(buf));
out:
	xmlBufferFree(buf);
	xmlFreeDoc(doc);
	return out;
}

int mktme_attr_validate(const struct mktme_attr *attr, const char *schema,
			struct mkerr *e)
{
	char *xml = mktme_attr_to_xml(attr);
	xmlDocPtr doc;
	int ret;

	if (!xml)
		return mkerr_set(e, "out of memory");
	doc = parse(xml, strlen(xml), e);
	free(xml);
	if (!doc)
		return -1;
	ret = validate_element(xmlDocGetRootElement(doc), schema, e);
	xmlFreeDoc(doc);
	return ret;
}

/* The first element child of PARENT named NAME in no namespace, or NULL */
static xmlNodePtr child(xmlNodePtr parent, const char *name)
{
	xmlNodePtr c;

	for (c = parent ? parent->children : NULL; c; c = c->next)
		if (c->type == XML_ELEMENT_NODE && !c->ns &&
		    !strcmp((const char *)c->name, name))
			return c;
	return NULL;
}

static int set_metadata(xmlDocPtr doc, xmlNodePtr root,
			const struct mktme_attr *attr, struct mkerr *e)
{
	xmlNodePtr md = child(root, "metadata"), c, next, el;

	for (c = md ? md->children : NULL; c; c = next) {
		next = c->next;
		if (c->type == XML_ELEMENT_NODE && c->ns && c->ns->href &&
		    !strcmp((const char *)c->ns->href, MKTME_NS)) {
			xmlUnlinkNode(c);
			xmlFreeNode(c);
		}
	}
	if (!attr) {
		/* An empty <metadata/> is what libvirt leaves too: keep it */
		return 0;
	}
	if (!md) {
		md = xmlNewDocNode(doc, NULL, (const xmlChar *)"metadata", NULL);
		if (!md)
			return mkerr_set(e, "out of memory");
		xmlAddChild(root, md);
	}
	el = xmlNewDocNode(doc, NULL, (const xmlChar *)MKTME_ELEMENT, NULL);
	if (!el)
		return mkerr_set(e, "out of memory");
	xmlAddChild(md, el);
	if (set_mktme_props(el, attr))
		return mkerr_set(e, "out of memory");
	return 0;
}

static int set_emulator(xmlDocPtr doc, xmlNodePtr root, const char *path,
			struct mkerr *e)
{
	xmlNodePtr devices = child(root, "devices"), em;

	if (!devices) {
		devices = xmlNewDocNode(doc, NULL, (const xmlChar *)"devices", NULL);
		if (!devices)
			return mkerr_set(e, "out of memory");
		xmlAddChild(root, devices);
	}
	em = child(devices, "emulator");
	if (!em) {
		em = xmlNewDocNode(doc, NULL, (const xmlChar *)"emulator", NULL);
		if (!em)
			return mkerr_set(e, "out of memory");
		if (devices->children)
			xmlAddPrevSibling(devices->children, em);
		else
			xmlAddChild(devices, em);
	}
	xmlNodeSetContent(em, NULL);
	xmlNodeAddContent(em, (const xmlChar *)path);
	return 0;
}

char *domain_xml_edit(const char *xml, size_t len,
		      const struct mktme_attr *attr, const char *emulator,
		      struct mkerr *e)
{
	xmlDocPtr doc = parse(xml, len, e);
	xmlNodePtr root;
	xmlChar *mem = NULL;
	char *out = NULL;
	int size = 0;

	if (!doc)
		return NULL;
	root = xmlDocGetRootElement(doc);
	if (!root || strcmp((const char *)root->name, "domain")) {
		mkerr_set(e, "the XML is not a libvirt domain (no <domain> root)");
		goto out;
	}
	if (set_metadata(doc, root, attr, e) ||
	    (emulator && set_emulator(doc, root, emulator, e)))
		goto out;
	xmlDocDumpMemory(doc, &mem, &size);
	if (!mem) {
		mkerr_set(e, "out of memory");
		goto out;
	}
	out = strdup((const char *)mem);
	if (!out)
		mkerr_set(e, "out of memory");
out:
	xmlFree(mem);
	xmlFreeDoc(doc);
	return out;
}
