#!/bin/sh
# The example base's initramfs: load the disk and filesystem modules, mount root= on /sysroot,
# let ostree-prepare-root set up the deployment named by ostree=, and switch to it. Any failure
# ends PID 1, so the kernel panics and (with panic=-1 and qemu's -no-reboot) the VM stops.
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs -o mode=0755 tmpfs /run
while read -r module; do insmod "/modules/$module" 2>/dev/null; done < /modules/order
root=
for arg in $(cat /proc/cmdline); do
  case "$arg" in root=*) root=${arg#root=} ;; esac
done
[ -n "$root" ] || { echo "fci-initramfs: no root= on the kernel command line"; exit 1; }
tries=0
while [ ! -b "$root" ] && [ $tries -lt 50 ]; do sleep 0.1; tries=$((tries + 1)); done
mkdir -p /sysroot
mount -t ext4 -o rw "$root" /sysroot || { echo "fci-initramfs: cannot mount $root"; exit 1; }
mkdir -p /run/ostree
touch /run/ostree/initramfs-mount-var
/usr/lib/ostree/ostree-prepare-root /sysroot || { echo "fci-initramfs: ostree-prepare-root failed"; exit 1; }
mount --move /dev /sysroot/dev
mount --move /run /sysroot/run
umount /sys /proc
# By the path it has in the tree, not /sbin/init: that path is the kernel's trigger for running
# /sbin/tomoyo-init (TOMOYO) as root, which a package could ship.
exec switch_root /sysroot /usr/sbin/init
