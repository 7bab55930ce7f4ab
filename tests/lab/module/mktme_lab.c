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

#include "mktme_lab_uapi.h"

#define MSR_TME_ACTIVATE	0x982
#define TME_ACTIVATE_KEYID_BITS(x)	(((x) >> 32) & 0xf)

static struct mktme_lab_info lab_info;

struct lab_page {
	struct list_head list;
	struct page *page;
	atomic_t mapcount;	/* user mappings of one of its aliases */
};

struct lab_file {
	struct mutex lock;	/* protects pages */
	struct list_head pages;
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
