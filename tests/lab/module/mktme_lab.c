// SPDX-License-Identifier: GPL-2.0
/*
 * mktme_lab - test driver for the emulated TME-MK platform
 *
 * Gives the lab's conformance suite direct access to what a kernel with
 * TME-MK support uses: PCONFIG, the TME MSRs, and KeyID aliases of pages
 * (kernel mappings whose PTEs carry a KeyID in the upper physical address
 * bits).  It runs on a stock distribution kernel, so that the emulator is
 * tested independently of mktme-kvm's own kernel patches.
 *
 * Locking: pages allocated through a file are on that file's list,
 * protected by its mutex.  Accesses run on the requested CPU by IPI, with
 * the mapping prepared (and torn down) in process context.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/cpu.h>
#include <linux/io.h>
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/slab.h>
#include <linux/smp.h>
#include <linux/uaccess.h>
#include <linux/unaligned.h>
#include <linux/vmalloc.h>
#include <linux/ktime.h>
#include <asm/asm.h>
#include <asm/cacheflush.h>
#include <asm/msr.h>
#include <asm/processor.h>
#include <asm/smp.h>
#include <asm/svm.h>
#include <asm/pgtable.h>

#include "mktme_lab_uapi.h"

#define MSR_TME_ACTIVATE	0x982
#define TME_ACTIVATE_KEYID_BITS(x)	(((x) >> 32) & 0xf)

static struct mktme_lab_info lab_info;

struct lab_page {
	struct list_head list;
	struct page *page;
	atomic_t mapcount;	/* user mappings of one of its aliases */
};

/* Guest RAM of the driver's SVM hypervisor */
struct lab_guest {
	struct page **pages;	/* guest-physical page n */
	unsigned long npages;
};

struct lab_file {
	struct mutex lock;	/* protects pages and guest */
	struct list_head pages;
	struct lab_guest guest;
};

/* PCONFIG */

struct lab_pconfig_call {
	u8 *st;
	u32 leaf;
	u32 faulted, trapnr, status, zf;
};

static void lab_pconfig_fn(void *arg)
{
	struct lab_pconfig_call *c = arg;
	u32 eax = c->leaf;
	u32 faulted = 1;
	bool zf;

	/*
	 * On an exception the EX_TYPE_FAULT fixup puts the vector in EAX and
	 * resumes at 2, leaving faulted == 1.
	 */
	asm volatile("1: .byte 0x0f, 0x01, 0xc5\n\t"	/* pconfig */
		     "movl $0, %[f]\n\t"
		     "2:\n\t"
		     _ASM_EXTABLE_TYPE(1b, 2b, EX_TYPE_FAULT)
		     : "+a" (eax), [f] "+r" (faulted), "=@ccz" (zf)
		     : "b" (c->st)
		     : "memory");
	c->faulted = faulted;
	if (faulted) {
		c->trapnr = eax;
	} else {
		c->status = eax;
		c->zf = zf;
	}
}

static long lab_pconfig(void __user *argp)
{
	struct mktme_lab_pconfig *p;
	struct lab_pconfig_call c = {};
	u8 *buf;
	long ret;

	p = memdup_user(argp, sizeof(*p));
	if (IS_ERR(p))
		return PTR_ERR(p);
	ret = -EINVAL;
	if (p->misalign >= 256 || p->cpu >= nr_cpu_ids || !cpu_online(p->cpu))
		goto out_free;
	/* kmalloc(512) is 512-byte aligned */
	ret = -ENOMEM;
	buf = kzalloc(512, GFP_KERNEL);
	if (!buf)
		goto out_free;
	memcpy(buf + p->misalign, p->st, sizeof(p->st));
	c.st = buf + p->misalign;
	c.leaf = p->leaf;
	ret = smp_call_function_single(p->cpu, lab_pconfig_fn, &c, 1);
	kfree_sensitive(buf);
	if (ret)
		goto out_free;
	p->faulted = c.faulted;
	p->trapnr = c.trapnr;
	p->status = c.status;
	p->zf = c.zf;
	memzero_explicit(p->st, sizeof(p->st));
	ret = copy_to_user(argp, p, sizeof(*p)) ? -EFAULT : 0;
out_free:
	kfree_sensitive(p);
	return ret;
}

/* MSRs */

static long lab_msr(void __user *argp)
{
	struct mktme_lab_msr m;
	int err;

	if (copy_from_user(&m, argp, sizeof(m)))
		return -EFAULT;
	if (m.cpu >= nr_cpu_ids || !cpu_online(m.cpu))
		return -EINVAL;
	if (m.write)
		err = wrmsrl_safe_on_cpu(m.cpu, m.index, m.value);
	else
		err = rdmsrl_safe_on_cpu(m.cpu, m.index, &m.value);
	if (err && err != -EIO)
		return err;
	m.faulted = err == -EIO;
	return copy_to_user(argp, &m, sizeof(m)) ? -EFAULT : 0;
}

/* Pages and their KeyID aliases */

static struct lab_page *lab_find(struct lab_file *f, u64 phys)
{
	struct lab_page *lp;

	lockdep_assert_held(&f->lock);
	list_for_each_entry(lp, &f->pages, list)
		if (page_to_phys(lp->page) == phys)
			return lp;
	return NULL;
}

static long lab_alloc(struct lab_file *f, void __user *argp)
{
	struct lab_page *lp;
	u64 phys, node;

	if (get_user(node, (u64 __user *)argp))
		return -EFAULT;
	if (node > nr_node_ids || (node && !node_online(node - 1)))
		return -EINVAL;
	lp = kzalloc(sizeof(*lp), GFP_KERNEL);
	if (!lp)
		return -ENOMEM;
	lp->page = node ? alloc_pages_node(node - 1, GFP_KERNEL | __GFP_ZERO |
					   __GFP_THISNODE, 0) :
			  alloc_page(GFP_KERNEL | __GFP_ZERO);
	if (!lp->page) {
		kfree(lp);
		return -ENOMEM;
	}
	/* The zeroing went through the KeyID-0 direct map: write it back */
	clflush_cache_range(page_address(lp->page), PAGE_SIZE);
	phys = page_to_phys(lp->page);
	mutex_lock(&f->lock);
	list_add(&lp->list, &f->pages);
	mutex_unlock(&f->lock);
	return put_user(phys, (u64 __user *)argp);
}

static void lab_free_page(struct lab_page *lp)
{
	list_del(&lp->list);
	__free_page(lp->page);
	kfree(lp);
}

static long lab_free(struct lab_file *f, void __user *argp)
{
	struct lab_page *lp;
	u64 phys;
	long ret = -ENOENT;

	if (get_user(phys, (u64 __user *)argp))
		return -EFAULT;
	mutex_lock(&f->lock);
	lp = lab_find(f, phys);
	if (lp && atomic_read(&lp->mapcount)) {
		ret = -EBUSY;
	} else if (lp) {
		lab_free_page(lp);
		ret = 0;
	}
	mutex_unlock(&f->lock);
	return ret;
}

struct lab_mem_call {
	struct mktme_lab_mem *m;
	u8 *va;
	u8 *bounce;
};

static void lab_mem_fn(void *arg)
{
	struct lab_mem_call *c = arg;
	struct mktme_lab_mem *m = c->m;
	u8 *p = c->va + m->offset;
	u64 t0 = ktime_get_ns();

	switch (m->op) {
	case MKTME_LAB_READ:
		memcpy(c->bounce, p, m->len);
		break;
	case MKTME_LAB_WRITE:
		memcpy(p, c->bounce, m->len);
		break;
	case MKTME_LAB_CLFLUSH:
		clflush_cache_range(p, m->len);
		break;
	case MKTME_LAB_WBINVD:
		wbinvd();
		break;
	case MKTME_LAB_XADD:
		m->value = xadd((u64 *)p, m->value);
		break;
	case MKTME_LAB_CMPXCHG:
		m->value = cmpxchg((u64 *)p, m->expected, m->value);
		break;
	case MKTME_LAB_WRITE64:
		put_unaligned(m->value, (u64 *)p);
		break;
	case MKTME_LAB_READ64:
		m->value = get_unaligned((u64 *)p);
		break;
	}
	m->ns = ktime_get_ns() - t0;
}

static long lab_mem(struct lab_file *f, void __user *argp)
{
	struct mktme_lab_mem m;
	struct lab_mem_call c = { .m = &m };
	struct lab_page *lp;
	unsigned long pfn;
	long ret;

	if (copy_from_user(&m, argp, sizeof(m)))
		return -EFAULT;
	if (m.cpu >= nr_cpu_ids || !cpu_online(m.cpu) ||
	    m.offset > PAGE_SIZE || m.len > PAGE_SIZE - m.offset ||
	    m.op > MKTME_LAB_READ64)
		return -EINVAL;
	if ((m.op == MKTME_LAB_XADD || m.op == MKTME_LAB_CMPXCHG ||
	     m.op == MKTME_LAB_WRITE64 || m.op == MKTME_LAB_READ64) &&
	    m.offset > PAGE_SIZE - 8)
		return -EINVAL;
	if (m.keyid && (!lab_info.tme || m.keyid >> lab_info.keyid_bits))
		return -EINVAL;

	c.bounce = kvzalloc(PAGE_SIZE, GFP_KERNEL);
	if (!c.bounce)
		return -ENOMEM;
	if (m.op == MKTME_LAB_WRITE &&
	    copy_from_user(c.bounce, u64_to_user_ptr(m.buf), m.len)) {
		ret = -EFAULT;
		goto out_bounce;
	}

	mutex_lock(&f->lock);
	ret = -ENOENT;
	lp = lab_find(f, m.phys);
	if (!lp)
		goto out_unlock;
	/*
	 * KeyID 0 is the direct map.  A KeyID alias is a PFN beyond the
	 * kernel's physical address width: not pfn_valid(), so vmap_pfn()
	 * maps it as a special PTE.
	 */
	if (m.keyid) {
		pfn = (m.phys | ((u64)m.keyid << lab_info.keyid_shift)) >>
		      PAGE_SHIFT;
		ret = -ENOMEM;
		c.va = vmap_pfn(&pfn, 1, PAGE_KERNEL);
		if (!c.va)
			goto out_unlock;
	} else {
		c.va = page_address(lp->page);
	}
	ret = smp_call_function_single(m.cpu, lab_mem_fn, &c, 1);
	if (m.keyid)
		vunmap(c.va);
	if (ret)
		goto out_unlock;
	if (m.op == MKTME_LAB_READ &&
	    copy_to_user(u64_to_user_ptr(m.buf), c.bounce, m.len)) {
		ret = -EFAULT;
		goto out_unlock;
	}
	ret = copy_to_user(argp, &m, sizeof(m)) ? -EFAULT : 0;
out_unlock:
	mutex_unlock(&f->lock);
out_bounce:
	kvfree(c.bounce);
	return ret;
}

/*
 * The driver's own SVM hypervisor, for the nested-paging suite: a guest
 * whose nested page tables carry KeyIDs, run with VMRUN on the calling
 * CPU (no KVM).  Guest RAM is a list of host pages; the NPT maps them at
 * guest-physical 0.., leaf entries with run.keyid, and the NPT's own
 * pages are written and walked through run.npt_keyid.
 */

#define LAB_GUEST_MAX_PAGES	(512UL * 512)		/* 1 GiB */
#define LAB_NPT_FLAGS		(_PAGE_PRESENT | _PAGE_RW | _PAGE_USER)

static u64 lab_keyed(u64 pa, unsigned int keyid)
{
	return pa | (u64)keyid << lab_info.keyid_shift;
}

static bool lab_keyid_ok(unsigned int keyid)
{
	return !keyid || (lab_info.tme && !(keyid >> lab_info.keyid_bits));
}

/* Map page through keyid (vunmap() unless it returned page_address()) */
static void *lab_map_keyed(struct page *page, unsigned int keyid)
{
	unsigned long pfn;

	if (!keyid)
		return page_address(page);
	pfn = lab_keyed(page_to_phys(page), keyid) >> PAGE_SHIFT;
	return vmap_pfn(&pfn, 1, PAGE_KERNEL);
}

static void lab_unmap_keyed(void *va, unsigned int keyid)
{
	if (keyid)
		vunmap(va);
}

static void lab_guest_free(struct lab_guest *g)
{
	for (unsigned long i = 0; i < g->npages; i++)
		__free_page(g->pages[i]);
	kvfree(g->pages);
	g->pages = NULL;
	g->npages = 0;
}

static long lab_guest_alloc(struct lab_file *f, void __user *argp)
{
	struct mktme_lab_guest_alloc a;
	struct lab_guest g = {};
	long ret = -ENOMEM;

	if (copy_from_user(&a, argp, sizeof(a)))
		return -EFAULT;
	if (!a.pages || a.pages > LAB_GUEST_MAX_PAGES || a.node > nr_node_ids ||
	    (a.node && !node_online(a.node - 1)))
		return -EINVAL;
	g.pages = kvcalloc(a.pages, sizeof(*g.pages), GFP_KERNEL);
	if (!g.pages)
		return -ENOMEM;
	for (; g.npages < a.pages; g.npages++) {
		struct page *p = a.node ?
			alloc_pages_node(a.node - 1, GFP_KERNEL | __GFP_ZERO |
					 __GFP_THISNODE, 0) :
			alloc_page(GFP_KERNEL | __GFP_ZERO);

		if (!p)
			goto out;
		g.pages[g.npages] = p;
		cond_resched();
	}
	/* The zeroing went through the KeyID-0 direct map: write it back */
	wbinvd_on_all_cpus();
	mutex_lock(&f->lock);
	lab_guest_free(&f->guest);
	f->guest = g;
	mutex_unlock(&f->lock);
	return 0;
out:
	lab_guest_free(&g);
	return ret;
}

static long lab_guest_mem(struct lab_file *f, void __user *argp)
{
	struct mktme_lab_guest_mem m;
	struct lab_guest *g = &f->guest;
	u8 __user *ubuf;
	u64 gpa;
	u32 left;
	long ret = 0;

	if (copy_from_user(&m, argp, sizeof(m)))
		return -EFAULT;
	if (!lab_keyid_ok(m.keyid))
		return -EINVAL;
	mutex_lock(&f->lock);
	if (m.gpa >= (u64)g->npages << PAGE_SHIFT ||
	    m.len > ((u64)g->npages << PAGE_SHIFT) - m.gpa) {
		ret = -EINVAL;
		goto out;
	}
	m.hpa = page_to_phys(g->pages[m.gpa >> PAGE_SHIFT]) +
		offset_in_page(m.gpa);
	ubuf = u64_to_user_ptr(m.buf);
	for (gpa = m.gpa, left = m.len; left && !ret; ) {
		u32 off = offset_in_page(gpa);
		u32 n = min_t(u32, left, PAGE_SIZE - off);
		u8 *va = lab_map_keyed(g->pages[gpa >> PAGE_SHIFT], m.keyid);

		if (!va) {
			ret = -ENOMEM;
			break;
		}
		if (m.write)
			ret = copy_from_user(va + off, ubuf, n) ? -EFAULT : 0;
		else
			ret = copy_to_user(ubuf, va + off, n) ? -EFAULT : 0;
		lab_unmap_keyed(va, m.keyid);
		gpa += n;
		ubuf += n;
		left -= n;
		cond_resched();
	}
	if (!ret && copy_to_user(argp, &m, sizeof(m)))
		ret = -EFAULT;
out:
	mutex_unlock(&f->lock);
	return ret;
}

/* The NPT: 4 levels, allocated for one run */
struct lab_npt {
	struct page **pages;
	unsigned int npages;
	u64 root;		/* host physical address of the PML4 */
};

static void lab_npt_free(struct lab_npt *npt)
{
	for (unsigned int i = 0; i < npt->npages; i++)
		if (npt->pages[i])
			__free_page(npt->pages[i]);
	kfree(npt->pages);
}

/* Write one NPT page's entries through keyid */
static int lab_npt_write(struct page *page, unsigned int keyid,
			 const u64 *entries)
{
	u64 *va = lab_map_keyed(page, keyid);

	if (!va)
		return -ENOMEM;
	memcpy(va, entries, PAGE_SIZE);
	clflush_cache_range(va, PAGE_SIZE);
	lab_unmap_keyed(va, keyid);
	return 0;
}

static int lab_npt_build(struct lab_npt *npt, struct lab_guest *g,
			 const struct mktme_lab_svm_run *r)
{
	unsigned int n_pt = DIV_ROUND_UP(g->npages, 512);
	unsigned int n_pd = DIV_ROUND_UP(n_pt, 512);
	unsigned int nk = r->npt_keyid;
	u64 *e;
	int ret = -ENOMEM;

	/* pages[0] PML4, [1] PDPT, [2 ..] PDs, then PTs */
	npt->npages = 2 + n_pd + n_pt;
	npt->pages = kcalloc(npt->npages, sizeof(*npt->pages), GFP_KERNEL);
	e = kmalloc(PAGE_SIZE, GFP_KERNEL);
	if (!npt->pages || !e)
		goto out;
	for (unsigned int i = 0; i < npt->npages; i++) {
		npt->pages[i] = alloc_page(GFP_KERNEL | __GFP_ZERO);
		if (!npt->pages[i])
			goto out;
	}
	/* Zeroed through KeyID 0: write that back before using another */
	for (unsigned int i = 0; i < npt->npages; i++)
		clflush_cache_range(page_address(npt->pages[i]), PAGE_SIZE);
#define NPT_PA(i)	page_to_phys(npt->pages[i])
	memset(e, 0, PAGE_SIZE);
	e[0] = lab_keyed(NPT_PA(1), nk) | LAB_NPT_FLAGS;
	ret = lab_npt_write(npt->pages[0], nk, e);
	memset(e, 0, PAGE_SIZE);
	for (unsigned int i = 0; i < n_pd; i++)
		e[i] = lab_keyed(NPT_PA(2 + i), nk) | LAB_NPT_FLAGS;
	ret = ret ?: lab_npt_write(npt->pages[1], nk, e);
	for (unsigned int i = 0; i < n_pd && !ret; i++) {
		memset(e, 0, PAGE_SIZE);
		for (unsigned int j = 0; j < 512 && i * 512 + j < n_pt; j++)
			e[j] = lab_keyed(NPT_PA(2 + n_pd + i * 512 + j), nk) |
			       LAB_NPT_FLAGS;
		ret = lab_npt_write(npt->pages[2 + i], nk, e);
	}
	for (unsigned int i = 0; i < n_pt && !ret; i++) {
		memset(e, 0, PAGE_SIZE);
		for (unsigned int j = 0; j < 512 && i * 512 + j < g->npages;
		     j++) {
			unsigned long n = i * 512 + j;

			e[j] = lab_keyed(page_to_phys(g->pages[n]), r->keyid) |
			       LAB_NPT_FLAGS;
			if (n == r->leaf_gpa >> PAGE_SHIFT)
				e[j] |= r->leaf_bits;
		}
		ret = lab_npt_write(npt->pages[2 + n_pd + i], nk, e);
	}
#undef NPT_PA
	npt->root = lab_keyed(page_to_phys(npt->pages[0]), nk);
out:
	kfree(e);
	return ret;
}

/* The NPT leaf entry of gpa, read through the NPT's KeyID */
static u64 lab_npt_leaf(struct lab_npt *npt, struct lab_guest *g,
			const struct mktme_lab_svm_run *r, u64 gpa)
{
	unsigned int n_pd = DIV_ROUND_UP(DIV_ROUND_UP(g->npages, 512), 512);
	unsigned long n = gpa >> PAGE_SHIFT;
	u64 *va, pte;

	if (n >= g->npages)
		return 0;
	va = lab_map_keyed(npt->pages[2 + n_pd + n / 512], r->npt_keyid);
	if (!va)
		return 0;
	pte = READ_ONCE(va[n % 512]);
	lab_unmap_keyed(va, r->npt_keyid);
	return pte;
}

/* Guest registers that VMRUN and #VMEXIT leave in the CPU */
struct lab_svm_gprs {
	u64 rbx, rcx, rdx, rsi, rdi, rbp;
	u64 r8, r9, r10, r11, r12, r13, r14, r15;
	u64 vmcb_pa;
};

/*
 * One VMRUN, with GIF clear and interrupts disabled: STI before it lets a
 * host interrupt end the guest (#VMEXIT INTR), taken after STGI.
 */
static noinline void lab_svm_vmrun(struct lab_svm_gprs *gprs)
{
	asm volatile("push %%rbp\n\t"
		     "push %%rbx\n\t"
		     "push %%r12\n\t"
		     "push %%r13\n\t"
		     "push %%r14\n\t"
		     "push %%r15\n\t"
		     "push %%rax\n\t"
		     "mov 0x08(%%rax), %%rcx\n\t"
		     "mov 0x10(%%rax), %%rdx\n\t"
		     "mov 0x18(%%rax), %%rsi\n\t"
		     "mov 0x20(%%rax), %%rdi\n\t"
		     "mov 0x28(%%rax), %%rbp\n\t"
		     "mov 0x30(%%rax), %%r8\n\t"
		     "mov 0x38(%%rax), %%r9\n\t"
		     "mov 0x40(%%rax), %%r10\n\t"
		     "mov 0x48(%%rax), %%r11\n\t"
		     "mov 0x50(%%rax), %%r12\n\t"
		     "mov 0x58(%%rax), %%r13\n\t"
		     "mov 0x60(%%rax), %%r14\n\t"
		     "mov 0x68(%%rax), %%r15\n\t"
		     "mov 0x00(%%rax), %%rbx\n\t"
		     "mov 0x70(%%rax), %%rax\n\t"
		     "clgi\n\t"
		     "sti\n\t"
		     "vmrun %%rax\n\t"
		     "cli\n\t"
		     "stgi\n\t"
		     "xchg %%rax, (%%rsp)\n\t"
		     "mov %%rbx, 0x00(%%rax)\n\t"
		     "mov %%rcx, 0x08(%%rax)\n\t"
		     "mov %%rdx, 0x10(%%rax)\n\t"
		     "mov %%rsi, 0x18(%%rax)\n\t"
		     "mov %%rdi, 0x20(%%rax)\n\t"
		     "mov %%rbp, 0x28(%%rax)\n\t"
		     "mov %%r8, 0x30(%%rax)\n\t"
		     "mov %%r9, 0x38(%%rax)\n\t"
		     "mov %%r10, 0x40(%%rax)\n\t"
		     "mov %%r11, 0x48(%%rax)\n\t"
		     "mov %%r12, 0x50(%%rax)\n\t"
		     "mov %%r13, 0x58(%%rax)\n\t"
		     "mov %%r14, 0x60(%%rax)\n\t"
		     "mov %%r15, 0x68(%%rax)\n\t"
		     "pop %%rax\n\t"
		     "pop %%r15\n\t"
		     "pop %%r14\n\t"
		     "pop %%r13\n\t"
		     "pop %%r12\n\t"
		     "pop %%rbx\n\t"
		     "pop %%rbp\n\t"
		     : "+a" (gprs)
		     :
		     : "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11",
		       "memory", "cc");
}

static void lab_vmcb_seg(struct vmcb_seg *s, u16 sel, u16 attrib)
{
	s->selector = sel;
	s->attrib = attrib;
	s->limit = 0xffffffff;
	s->base = 0;
}

static void lab_vmcb_init(struct vmcb *vmcb, const struct mktme_lab_svm_run *r,
			  u64 ncr3)
{
	struct vmcb_control_area *c = &vmcb->control;
	struct vmcb_save_area *s = &vmcb->save;
	bool lm = r->flags & MKTME_LAB_SVM_LONG;
	/* type, S, P; code: L (64-bit) or D/B and G (32-bit) */
	u16 code = lm ? 0x29b : 0xc9b, data = 0xc93;

	c->intercepts[INTERCEPT_INTR / 32] |= BIT(INTERCEPT_INTR % 32);
	c->intercepts[INTERCEPT_NMI / 32] |= BIT(INTERCEPT_NMI % 32);
	c->intercepts[INTERCEPT_HLT / 32] |= BIT(INTERCEPT_HLT % 32);
	c->intercepts[INTERCEPT_SHUTDOWN / 32] |= BIT(INTERCEPT_SHUTDOWN % 32);
	c->intercepts[INTERCEPT_VMRUN / 32] |= BIT(INTERCEPT_VMRUN % 32);
	c->intercepts[INTERCEPT_VMMCALL / 32] |= BIT(INTERCEPT_VMMCALL % 32);
	c->intercepts[INTERCEPT_EXCEPTION_OFFSET / 32] = 0xffffffff;
	c->asid = 1;
	c->tlb_ctl = TLB_CONTROL_FLUSH_ALL_ASID;
	c->int_ctl = V_INTR_MASKING_MASK;
	c->nested_ctl = SVM_NESTED_CTL_NP_ENABLE;
	c->nested_cr3 = ncr3;

	lab_vmcb_seg(&s->cs, 0x08, code);
	lab_vmcb_seg(&s->ds, 0x10, data);
	lab_vmcb_seg(&s->es, 0x10, data);
	lab_vmcb_seg(&s->ss, 0x10, data);
	lab_vmcb_seg(&s->fs, 0x10, data);
	lab_vmcb_seg(&s->gs, 0x10, data);
	s->gdtr.limit = 0xffff;
	s->idtr.limit = 0xffff;
	s->efer = EFER_SVME | (lm ? EFER_LME | EFER_LMA : 0);
	s->cr0 = X86_CR0_PE | X86_CR0_ET | (lm ? X86_CR0_PG : 0);
	s->cr4 = lm ? X86_CR4_PAE : 0;
	s->cr3 = lm ? r->cr3 : 0;
	s->dr6 = 0xffff0ff0;
	s->dr7 = 0x400;
	s->rflags = X86_EFLAGS_FIXED;
	s->rip = r->rip;
	s->rsp = r->rsp;
	s->rax = r->regs[0];
	s->g_pat = 0x0007040600070406ULL;
}

static long lab_svm_run(struct lab_file *f, void __user *argp)
{
	struct mktme_lab_svm_run r;
	struct lab_guest *g = &f->guest;
	struct lab_npt npt = {};
	struct lab_svm_gprs gprs = {};
	struct page *vmcb_page = NULL, *hsave = NULL;
	struct vmcb *vmcb;
	u64 efer, t0, deadline;
	long ret;

	if (copy_from_user(&r, argp, sizeof(r)))
		return -EFAULT;
	if (!boot_cpu_has(X86_FEATURE_SVM) || !boot_cpu_has(X86_FEATURE_NPT) ||
	    pgtable_l5_enabled())
		return -EOPNOTSUPP;
	if (!lab_keyid_ok(r.keyid) || !lab_keyid_ok(r.npt_keyid))
		return -EINVAL;
	mutex_lock(&f->lock);
	ret = -EINVAL;
	if (!g->npages)
		goto out;
	ret = lab_npt_build(&npt, g, &r);
	if (ret)
		goto out;
	ret = -ENOMEM;
	vmcb_page = alloc_page(GFP_KERNEL | __GFP_ZERO);
	hsave = alloc_page(GFP_KERNEL | __GFP_ZERO);
	if (!vmcb_page || !hsave)
		goto out;
	vmcb = page_address(vmcb_page);
	lab_vmcb_init(vmcb, &r, npt.root);
	gprs.rbx = r.regs[1];
	gprs.rcx = r.regs[2];
	gprs.rdx = r.regs[3];
	gprs.rsi = r.regs[4];
	gprs.rdi = r.regs[5];
	gprs.rbp = r.regs[6];
	gprs.vmcb_pa = page_to_phys(vmcb_page);

	/* On this CPU from here to the end, preemptible between VMRUNs */
	migrate_disable();
	r.cpu = smp_processor_id();
	rdmsrl(MSR_EFER, efer);
	t0 = ktime_get_ns();
	deadline = t0 + (u64)(r.timeout_ms ?: 10000) * NSEC_PER_MSEC;
	for (;;) {
		local_irq_disable();
		wrmsrl(MSR_EFER, efer | EFER_SVME);
		wrmsrl(MSR_VM_HSAVE_PA, page_to_phys(hsave));
		lab_svm_vmrun(&gprs);
		wrmsrl(MSR_EFER, efer);
		local_irq_enable();
		vmcb->control.tlb_ctl = TLB_CONTROL_DO_NOTHING;
		if (vmcb->control.exit_code != SVM_EXIT_INTR &&
		    vmcb->control.exit_code != SVM_EXIT_NMI)
			break;
		r.intr_exits++;
		if (ktime_get_ns() > deadline) {
			r.timed_out = 1;
			break;
		}
		cond_resched();
	}
	r.ns = ktime_get_ns() - t0;
	migrate_enable();

	r.exit_code = vmcb->control.exit_code;
	r.exit_info1 = vmcb->control.exit_info_1;
	r.exit_info2 = vmcb->control.exit_info_2;
	r.rip_out = vmcb->save.rip;
	r.regs[0] = vmcb->save.rax;
	r.regs[1] = gprs.rbx;
	r.regs[2] = gprs.rcx;
	r.regs[3] = gprs.rdx;
	r.regs[4] = gprs.rsi;
	r.regs[5] = gprs.rdi;
	r.regs[6] = gprs.rbp;
	r.regs[7] = vmcb->save.rsp;
	for (int i = 0; i < ARRAY_SIZE(r.ad_gpa); i++)
		r.npt_pte[i] = lab_npt_leaf(&npt, g, &r, r.ad_gpa[i]);
	ret = copy_to_user(argp, &r, sizeof(r)) ? -EFAULT : 0;
out:
	mutex_unlock(&f->lock);
	if (vmcb_page)
		__free_page(vmcb_page);
	if (hsave)
		__free_page(hsave);
	lab_npt_free(&npt);
	return ret;
}

static long lab_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct lab_file *f = file->private_data;
	void __user *argp = (void __user *)arg;

	switch (cmd) {
	case MKTME_LAB_INFO:
		return copy_to_user(argp, &lab_info, sizeof(lab_info)) ?
		       -EFAULT : 0;
	case MKTME_LAB_PCONFIG:
		return lab_pconfig(argp);
	case MKTME_LAB_MSR:
		return lab_msr(argp);
	case MKTME_LAB_ALLOC_NODE:
		return lab_alloc(f, argp);
	case MKTME_LAB_FREE:
		return lab_free(f, argp);
	case MKTME_LAB_MEM:
		return lab_mem(f, argp);
	case MKTME_LAB_GUEST_ALLOC:
		return lab_guest_alloc(f, argp);
	case MKTME_LAB_GUEST_MEM:
		return lab_guest_mem(f, argp);
	case MKTME_LAB_SVM_RUN:
		return lab_svm_run(f, argp);
	default:
		return -ENOTTY;
	}
}

static void lab_vm_open(struct vm_area_struct *vma)
{
	struct lab_page *lp = vma->vm_private_data;

	atomic_inc(&lp->mapcount);
}

static void lab_vm_close(struct vm_area_struct *vma)
{
	struct lab_page *lp = vma->vm_private_data;

	atomic_dec(&lp->mapcount);
}

static const struct vm_operations_struct lab_vm_ops = {
	.open = lab_vm_open,
	.close = lab_vm_close,
};

/*
 * mmap(offset = page | keyid << keyid_shift): the page through a KeyID, in
 * user space (with PROT_EXEC if asked: vmap_pfn() mappings are never
 * executable).
 */
static int lab_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct lab_file *f = file->private_data;
	u64 keyed = (u64)vma->vm_pgoff << PAGE_SHIFT;
	u64 phys = lab_info.keyid_shift ?
		   keyed & GENMASK_ULL(lab_info.keyid_shift - 1, 0) : keyed;
	struct lab_page *lp;
	int ret;

	if (vma->vm_end - vma->vm_start != PAGE_SIZE)
		return -EINVAL;
	mutex_lock(&f->lock);
	lp = lab_find(f, phys);
	ret = -ENOENT;
	if (!lp)
		goto out;
	vm_flags_set(vma, VM_IO | VM_DONTEXPAND | VM_DONTDUMP | VM_DONTCOPY);
	vma->vm_ops = &lab_vm_ops;
	vma->vm_private_data = lp;
	ret = remap_pfn_range(vma, vma->vm_start, keyed >> PAGE_SHIFT,
			      PAGE_SIZE, vma->vm_page_prot);
	if (!ret)
		atomic_inc(&lp->mapcount);
out:
	mutex_unlock(&f->lock);
	return ret;
}

static int lab_open(struct inode *inode, struct file *file)
{
	struct lab_file *f;

	if (!capable(CAP_SYS_RAWIO))
		return -EPERM;
	f = kzalloc(sizeof(*f), GFP_KERNEL);
	if (!f)
		return -ENOMEM;
	mutex_init(&f->lock);
	INIT_LIST_HEAD(&f->pages);
	file->private_data = f;
	return 0;
}

static int lab_release(struct inode *inode, struct file *file)
{
	struct lab_file *f = file->private_data;
	struct lab_page *lp, *tmp;

	list_for_each_entry_safe(lp, tmp, &f->pages, list)
		lab_free_page(lp);
	lab_guest_free(&f->guest);
	mutex_destroy(&f->lock);
	kfree(f);
	return 0;
}

static const struct file_operations lab_fops = {
	.owner = THIS_MODULE,
	.open = lab_open,
	.release = lab_release,
	.unlocked_ioctl = lab_ioctl,
	.mmap = lab_mmap,
};

static struct miscdevice lab_dev = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "mktme_lab",
	.fops = &lab_fops,
};

static int __init lab_init(void)
{
	u32 eax, ebx, ecx, edx;
	u64 activate;

	cpuid_count(7, 0, &eax, &ebx, &ecx, &edx);
	lab_info.tme = !!(ecx & BIT(13));
	lab_info.pconfig = !!(edx & BIT(18));
	lab_info.maxphyaddr = cpuid_eax(0x80000008) & 0xff;
	lab_info.kernel_phys_bits = boot_cpu_data.x86_phys_bits;
	if (lab_info.tme && !rdmsrl_safe(MSR_TME_ACTIVATE, &activate)) {
		lab_info.keyid_bits = TME_ACTIVATE_KEYID_BITS(activate);
		lab_info.keyid_shift = lab_info.maxphyaddr -
				       lab_info.keyid_bits;
	}
	return misc_register(&lab_dev);
}

static void __exit lab_exit(void)
{
	misc_deregister(&lab_dev);
}

module_init(lab_init);
module_exit(lab_exit);
MODULE_DESCRIPTION("Test driver for the emulated TME-MK platform");
MODULE_LICENSE("GPL");
