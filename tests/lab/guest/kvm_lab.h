/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A minimal VMM for the lab's KVM programs (kvm_keyed.c, kvmfaultbench.c):
 * one vCPU in flat 32-bit protected mode, no paging, running a few bytes
 * of code, in guest memory that may be keyed and bound to a TME-MK key.
 */
#ifndef KVM_LAB_H
#define KVM_LAB_H

#include <keyutils.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/kvm.h>

#ifndef KVM_CAP_X86_MKTME
#define KVM_CAP_X86_MKTME		239
#endif
#ifndef KVM_MEMORY_EXIT_FLAG_KEYID
#define KVM_MEMORY_EXIT_FLAG_KEYID	(1ULL << 4)
#endif

#define KVM_LAB_CODE_GPA	0x1000

struct kvm_lab_vm {
	int kvm, vm, vcpu;
	struct kvm_run *run;
	size_t run_size;
	uint8_t *mem;		/* guest physical 0 .. mem_size */
	size_t mem_size;
};

/*
 * A VM with @mem_size bytes of memory at guest physical 0.  With @key,
 * the VM is bound to it (KVM_CAP_X86_MKTME) and the memory keyed with it
 * (encrypt_mprotect()) before anything is written there.  0 or -errno;
 * *@what names the step that failed.
 */
int kvm_lab_vm_create(struct kvm_lab_vm *v, size_t mem_size,
		      key_serial_t key, const char **what);
/* Copy @code to KVM_LAB_CODE_GPA and start the vCPU there, flat 32-bit */
int kvm_lab_vcpu_start(struct kvm_lab_vm *v, const uint8_t *code,
		       size_t len);
/* KVM_RUN: the exit reason, or -errno */
int kvm_lab_run(struct kvm_lab_vm *v);
void kvm_lab_vm_destroy(struct kvm_lab_vm *v);

#endif
