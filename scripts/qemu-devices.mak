# The device set of the mktme-kvm QEMU build (configure --with-devices-x86_64).
# Only what the lab, the demo and libvirt's default x86 guests need, so that
# a cold build stays short.
CONFIG_I440FX=y
CONFIG_Q35=y
CONFIG_VIRTIO_PCI=y
CONFIG_VIRTIO_SERIAL=y
CONFIG_VIRTIO_BLK=y
# The network between two emulated hosts (libvirt_migrate: live migration)
CONFIG_VIRTIO_NET=y
CONFIG_VIRTIO_RNG=y
CONFIG_VIRTIO_BALLOON=y
CONFIG_ISA_DEBUG=y
CONFIG_PVPANIC_ISA=y
CONFIG_USB_UHCI=y
CONFIG_USB_EHCI_PCI=y
