// SPDX-License-Identifier: GPL-2.0
/*
 * A minimal VMM for the lab's KVM programs: see kvm_lab.h.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "kvm_lab.h"

#define NR_encrypt_mprotect	463

static int fail(const char **what, const char *step)
{
	int e = errno;

	*what = step;
	return -e;
}

int kvm_lab_vm_create(struct kvm_lab_vm *v, size_t mem_size,
		      key_serial_t key, const char **what)
{
	struct kvm_userspace_memory_region region = { .slot = 0 };
	struct kvm_enable_cap cap = { .cap = KVM_CAP_X86_MKTME };

	memset(v, 0, sizeof(*v));
	v->kvm = v->vm = v->vcpu = -1;
	v->kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (v->kvm < 0)
		return fail(what, "open /dev/kvm");
	v->vm = ioctl(v->kvm, KVM_CREATE_VM, 0);
	if (v->vm < 0)
		return fail(what, "KVM_CREATE_VM");
	if (key) {
		cap.args[0] = key;
		if (ioctl(v->vm, KVM_ENABLE_CAP, &cap))
			return fail(what, "KVM_ENABLE_CAP(KVM_CAP_X86_MKTME)");
	}
	v->mem = mmap(NULL, mem_size, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (v->mem == MAP_FAILED) {
		v->mem = NULL;
		return fail(what, "mmap guest memory");
	}
	v->mem_size = mem_size;
	if (key && syscall(NR_encrypt_mprotect, v->mem, mem_size,
			   PROT_READ | PROT_WRITE, key, 0))
		return fail(what, "encrypt_mprotect guest memory");
	region.memory_size = mem_size;
	region.userspace_addr = (uintptr_t)v->mem;
	if (ioctl(v->vm, KVM_SET_USER_MEMORY_REGION, &region))
		return fail(what, "KVM_SET_USER_MEMORY_REGION");
	v->vcpu = ioctl(v->vm, KVM_CREATE_VCPU, 0);
	if (v->vcpu < 0)
		return fail(what, "KVM_CREATE_VCPU");
	v->run_size = ioctl(v->kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	v->run = mmap(NULL, v->run_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		      v->vcpu, 0);
	if (v->run == MAP_FAILED) {
		v->run = NULL;
		return fail(what, "mmap kvm_run");
	}
	return 0;
}

/* A flat 4 GiB segment */
static void flat(struct kvm_segment *s, uint16_t selector, uint8_t type)
{
	*s = (struct kvm_segment){
		.base = 0, .limit = 0xffffffff, .selector = selector,
		.type = type, .present = 1, .dpl = 0, .db = 1, .s = 1,
		.l = 0, .g = 1,
	};
}

int kvm_lab_vcpu_start(struct kvm_lab_vm *v, const uint8_t *code,
		       size_t len)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs = { .rip = KVM_LAB_CODE_GPA, .rflags = 2 };

	memcpy(v->mem + KVM_LAB_CODE_GPA, code, len);
	if (ioctl(v->vcpu, KVM_GET_SREGS, &sregs))
		return -errno;
	flat(&sregs.cs, 8, 11);		/* code, execute/read, accessed */
	flat(&sregs.ds, 16, 3);		/* data, read/write, accessed */
	sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
	sregs.cr0 |= 1;			/* PE, no paging */
	if (ioctl(v->vcpu, KVM_SET_SREGS, &sregs) ||
	    ioctl(v->vcpu, KVM_SET_REGS, &regs))
		return -errno;
	return 0;
}

int kvm_lab_run(struct kvm_lab_vm *v)
{
	if (ioctl(v->vcpu, KVM_RUN, 0))
		return -errno;
	return v->run->exit_reason;
}

void kvm_lab_vm_destroy(struct kvm_lab_vm *v)
{
	if (v->run)
		munmap(v->run, v->run_size);
	if (v->mem)
		munmap(v->mem, v->mem_size);
	if (v->vcpu >= 0)
		close(v->vcpu);
	if (v->vm >= 0)
		close(v->vm);
	if (v->kvm >= 0)
		close(v->kvm);
	memset(v, 0, sizeof(*v));
	v->kvm = v->vm = v->vcpu = -1;
}
