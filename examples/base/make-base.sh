#!/usr/bin/env bash
# Makes a small OSTree-ready base tree in OUTDIR from this Debian host's packages:
#   - usr-merged (bin, sbin, lib, lib64 link into /usr), config in usr/etc (OSTree's layout);
#   - busybox-static with relative applet links (an absolute link would lead writes onto
#     the host's busybox when fci writes into the tree);
#   - the host's C library loader and libc, so the example package's binary runs in it;
#   - an empty rpm database at usr/lib/sysimage/rpm (OSTree does not carry /var);
#   - os-release in usr/lib and usr/etc.
#   - the host's Debian kernel at usr/lib/modules/KVER/vmlinuz, with a small busybox initramfs
#     around ostree-prepare-root beside it (initramfs.img), where OSTree's deploy looks;
#   - an init (guest-init.sh) that prints the booted commit and runs fci smoke's checks.
#   examples/base/make-base.sh [--no-kernel] OUTDIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
kernel=yes
if [ "${1:-}" = --no-kernel ]; then kernel=no; shift; fi
out=${1:?usage: make-base.sh [--no-kernel] OUTDIR}
for tool in busybox rpm; do
  command -v "$tool" >/dev/null || { echo "make-base: $tool not found (apt-get install -y busybox-static rpm)" >&2; exit 3; }
done
if [ $kernel = yes ]; then
  kver=$(ls /usr/lib/modules 2>/dev/null | sort -V | tail -n 1)
  if [ -z "$kver" ] || [ ! -r "/boot/vmlinuz-$kver" ]; then
    echo "make-base: no kernel on this host (apt-get install -y linux-image-amd64)" >&2
    exit 3
  fi
  prepare_root=/usr/lib/ostree/ostree-prepare-root
  [ -x $prepare_root ] || { echo "make-base: $prepare_root not found (apt-get install -y ostree-boot)" >&2; exit 3; }
  for tool in cpio modprobe ldd gzip; do
    command -v "$tool" >/dev/null || { echo "make-base: $tool not found (apt-get install -y cpio kmod libc-bin gzip)" >&2; exit 3; }
  done
fi
busybox_bin=$(command -v busybox)
if ! file_type=$(LC_ALL=C readelf -l "$busybox_bin" 2>/dev/null) || grep -q INTERP <<<"$file_type"; then
  echo "make-base: $busybox_bin is not statically linked (apt-get install -y busybox-static)" >&2
  exit 3
fi
if [ -e "$out" ] && [ -n "$(ls -A "$out" 2>/dev/null)" ]; then
  echo "make-base: $out exists and is not empty" >&2
  exit 2
fi
mkdir -p "$out"
cd "$out"
mkdir -p usr/bin usr/sbin usr/lib/x86_64-linux-gnu usr/lib64 usr/etc usr/lib/sysimage/rpm \
         usr/share dev proc sys run tmp var sysroot boot root home mnt
ln -s usr/bin bin
ln -s usr/sbin sbin
ln -s usr/lib lib
ln -s usr/lib64 lib64
cp "$busybox_bin" usr/bin/busybox
chmod 0755 usr/bin/busybox
# busybox's rpm and rpm2cpio are not rpm: leave those names to a real one (the host's, seen
# through the tests' overlay, or one the base gets later).
for applet in $(usr/bin/busybox --list); do
  case "$applet" in busybox|rpm|rpm2cpio) continue ;; esac
  [ -e "usr/bin/$applet" ] || ln -s busybox "usr/bin/$applet"
done
install -m 0755 "$here/guest-init.sh" usr/sbin/init
# The C library of this host, for dynamically linked programs of this host's architecture.
for lib in ld-linux-x86-64.so.2 libc.so.6; do
  src=$(readlink -f "/lib/x86_64-linux-gnu/$lib")
  cp "$src" "usr/lib/x86_64-linux-gnu/$lib"
done
ln -s ../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 usr/lib64/ld-linux-x86-64.so.2
cat > usr/lib/os-release <<'OSR'
NAME="fci example base"
ID=fci-base
VERSION_ID=1
PRETTY_NAME="fci example base (busybox)"
OSR
cp usr/lib/os-release usr/etc/os-release
# fci-check: the unprivileged user the guest runs fci smoke's checks as.
printf 'root:x:0:0:root:/root:/bin/sh\nfci-check:x:1000:1000:fci smoke checks:/tmp:/bin/sh\n' > usr/etc/passwd
printf 'root:x:0:\nfci-check:x:1000:\n' > usr/etc/group
rpm --root "$PWD" --dbpath /usr/lib/sysimage/rpm --initdb
rm -f usr/lib/sysimage/rpm/.rpm.lock usr/lib/sysimage/rpm/rpmdb.sqlite-shm usr/lib/sysimage/rpm/rpmdb.sqlite-wal
if [ $kernel = yes ]; then
  moddir=usr/lib/modules/$kver
  mkdir -p "$moddir"
  cp "/boot/vmlinuz-$kver" "$moddir/vmlinuz"
  initrd=$(mktemp -d)
  trap 'rm -rf "$initrd"' EXIT
  mkdir -p "$initrd"/{bin,dev,proc,sys,run,sysroot,modules,usr/lib/ostree}
  cp usr/bin/busybox "$initrd/bin/busybox"
  for applet in sh mount umount mkdir touch sleep cat insmod switch_root echo; do
    ln -s busybox "$initrd/bin/$applet"
  done
  cp $prepare_root "$initrd/usr/lib/ostree/"
  # The libraries ostree-prepare-root links against, at the paths the loader looks in.
  for lib in $(ldd $prepare_root | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}'); do
    mkdir -p "$initrd$(dirname "$lib")"
    cp -L "$lib" "$initrd$lib"
  done
  # virtio disk and ext4 modules with their dependencies, each loaded once, in order.
  for module in crc32c_generic ext4 virtio_pci virtio_blk; do
    modprobe -S "$kver" --show-depends "$module" | awk '$1 == "insmod" {print $2}'
  done | awk '!seen[$0]++' | while read -r ko; do
    cp "$ko" "$initrd/modules/"
    basename "$ko" >> "$initrd/modules/order"
  done
  install -m 0755 "$here/initramfs-init.sh" "$initrd/init"
  (cd "$initrd" && find . | LC_ALL=C sort | cpio -o -H newc --quiet --reproducible | gzip -n) > "$moddir/initramfs.img"
fi
echo "make-base: base tree in $out" >&2
