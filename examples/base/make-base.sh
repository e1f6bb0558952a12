#!/usr/bin/env bash
# Makes a small OSTree-ready base tree in OUTDIR from this Debian host's files, as a set of
# RPMs built here from the specs in specs/ (Fedora's package names and idioms) and installed
# with rpm, so that the tree's rpm database (usr/lib/sysimage/rpm; OSTree does not carry /var)
# owns every file of the base and its Provides are rpm's own generators' (elfdeps for the
# libraries):
#   - filesystem: usr-merged (bin, sbin, lib, lib64 link into /usr), os-release, passwd, group;
#   - glibc: the host's loader, libc, libm and (static) ldconfig; ld.so.conf lists Fedora's /usr/lib64 and
#     /usr/lib before the host's directory, and its cache is built here with ldconfig;
#   - bash: the host's bash as /usr/bin/sh (busybox's sh would run its own applets before a
#     real sed or grep on PATH, so a script would never exercise an update of them);
#   - busybox: busybox-static with relative applet links (an absolute link would lead writes
#     onto the host's busybox when fci writes into the tree), but for the commands Fedora
#     ships in packages of their own: sed, grep, gzip, bzip2 are packages of Version 0 whose
#     links a real package of that name updates;
#   - rpm: the host's rpm and its library closure, so `rpm -q` works in the tree;
#   - python3: the host's Python and its standard library, with Fedora's site-packages on its
#     path, for Fedora's Python packages (and their /usr/bin/python3 scripts);
#   - systemd: the host's systemctl and systemd's unit and preset directories (the base boots
#     its own init): what %systemd_requires asks for and %systemd_post runs;
#   - shadow-utils: the host's useradd, groupadd and kin, for %sysusers_create_compat;
#   - fci-guest-init: an init (guest-init.sh) that prints the booted commit and runs fci
#     smoke's checks;
#   - kernel: the host's Debian kernel at usr/lib/modules/KVER/vmlinuz, with a small busybox
#     initramfs around ostree-prepare-root beside it (initramfs.img), where OSTree's deploy
#     looks (left out with --no-kernel).
# Config is packaged at /etc, as in Fedora, and moved to usr/etc (OSTree's layout) once
# installed, as rpm-ostree does: the database names /etc paths.
#   examples/base/make-base.sh [--no-kernel] OUTDIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
kernel=yes
if [ "${1:-}" = --no-kernel ]; then kernel=no; shift; fi
out=${1:?usage: make-base.sh [--no-kernel] OUTDIR}
for tool in busybox rpm rpmbuild ldd ldconfig readelf; do
  command -v "$tool" >/dev/null || { echo "make-base: $tool not found (apt-get install -y busybox-static rpm libc-bin binutils)" >&2; exit 3; }
done
if [ $kernel = yes ]; then
  kver=$(ls /usr/lib/modules 2>/dev/null | sort -V | tail -n 1)
  if [ -z "$kver" ] || [ ! -r "/boot/vmlinuz-$kver" ]; then
    echo "make-base: no kernel on this host (apt-get install -y linux-image-amd64)" >&2
    exit 3
  fi
  prepare_root=/usr/lib/ostree/ostree-prepare-root
  [ -x $prepare_root ] || { echo "make-base: $prepare_root not found (apt-get install -y ostree-boot)" >&2; exit 3; }
  for tool in cpio modprobe gzip; do
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
out=$(cd "$out" && pwd)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
if [ $kernel = yes ]; then
  initrd=$stage/initrd
  mkdir -p "$initrd"/{bin,dev,proc,sys,run,sysroot,modules,usr/lib/ostree}
  cp "$busybox_bin" "$initrd/bin/busybox"
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
  (cd "$initrd" && find . | LC_ALL=C sort | cpio -o -H newc --quiet --reproducible | gzip -n) > "$stage/initramfs.img"
fi
# What the specs take from this host, as macros.
rpm_bin=$(readlink -f "$(command -v rpm)")
# rpm's library closure but glibc's own (the glibc package has those).
rpm_libs=$(ldd "$rpm_bin" | awk '$2 == "=>" && $3 ~ /^\// {print $3}' \
  | grep -Ev '/(libc|libm|ld-linux-x86-64)\.so' | LC_ALL=C sort | tr '\n' ' ')
glibc_version=$(getconf GNU_LIBC_VERSION | awk '{print $2}')
busybox_version=$("$busybox_bin" 2>&1 | awk 'NR == 1 {sub(/^v/, "", $2); print $2}')
rpm_version=$(rpm --version | awk '{print $3}')
# Debian's own Python (not one first on PATH, as pyenv's): the one whose files are packaged.
python=/usr/bin/python3
[ -x $python ] || { echo "make-base: $python not found (apt-get install -y python3)" >&2; exit 3; }
python_version=$($python -c 'import sys; print("%d.%d" % sys.version_info[:2])')
python_full_version=$($python -c 'import platform; print(platform.python_version())')
# The libraries the packages below bring: each program's closure less what the packages
# before it carry (glibc's, rpm's, python3's), so that no file is in two packages.
packaged="libc.so.6 libm.so.6 ld-linux-x86-64.so.2 libexpat.so.1 libffi.so.8 libuuid.so.1"
for lib in $rpm_libs; do packaged="$packaged ${lib##*/}"; done
closure() {
  local lib out=""
  for lib in $(ldd "$@" | awk '$2 == "=>" && $3 ~ /^\// {print $3}' | LC_ALL=C sort -u); do
    case " $packaged " in *" ${lib##*/} "*) continue ;; esac
    packaged="$packaged ${lib##*/}"
    out="$out $lib"
  done
  echo "$out"
}
for tool in systemctl useradd groupadd usermod userdel groupmod groupdel; do
  command -v "$tool" >/dev/null || { echo "make-base: $tool not found (apt-get install -y systemd passwd)" >&2; exit 3; }
done
bash_bin=$(readlink -f "$(command -v bash)")
bash_libs=$(closure "$bash_bin")
bash_version=$("$bash_bin" -c 'echo ${BASH_VERSINFO[0]}.${BASH_VERSINFO[1]}.${BASH_VERSINFO[2]}')
systemctl_bin=$(command -v systemctl)
systemd_libs=$(closure "$systemctl_bin")
systemd_version=$("$systemctl_bin" --version | awk 'NR == 1 {print $2}')
shadow_libs=$(closure /usr/sbin/useradd /usr/sbin/groupadd /usr/sbin/usermod /usr/sbin/userdel /usr/sbin/groupmod /usr/sbin/groupdel)
shadow_version=$(dpkg-query -W -f='${Version}' passwd 2>/dev/null | sed -e 's/^[0-9]*://' -e 's/[+~-].*//')
shadow_version=${shadow_version:-0}
specs="filesystem glibc bash busybox sed grep gzip bzip2 rpm python3 systemd shadow-utils fci-guest-init"
[ $kernel = yes ] && specs="$specs kernel"
for spec in $specs; do
  # --nodeps: Debian's rpm database does not hold the host's packages (there are no
  # BuildRequires here anyway). A failed build is this script's or the host's: exit 3.
  if ! rpmbuild -bb --quiet --nodeps \
      --define "_topdir $stage/rpmbuild" \
      --define "fci_examples $here" \
      --define "fci_busybox $busybox_bin" \
      --define "fci_busybox_version $busybox_version" \
      --define "fci_glibc_version $glibc_version" \
      --define "fci_ldconfig $(command -v ldconfig)" \
      --define "fci_getent $(command -v getent)" \
      --define "fci_host_rpm $rpm_bin" \
      --define "fci_rpm_version $rpm_version" \
      --define "fci_rpm_libs $rpm_libs" \
      --define "fci_python $python" \
      --define "fci_python_version $python_version" \
      --define "fci_python_full_version $python_full_version" \
      --define "fci_host_libdir /lib/x86_64-linux-gnu" \
      --define "fci_systemctl $systemctl_bin" \
      --define "fci_systemd_libs $systemd_libs" \
      --define "fci_systemd_version $systemd_version" \
      --define "fci_shadow_libs $shadow_libs" \
      --define "fci_bash $bash_bin" \
      --define "fci_bash_libs $bash_libs" \
      --define "fci_bash_version $bash_version" \
      --define "fci_shadow_version $shadow_version" \
      --define "fci_kver ${kver:-none}" \
      --define "fci_initramfs $stage/initramfs.img" \
      "$here/specs/$spec.spec" >"$stage/rpmbuild-$spec.log" 2>&1; then
    cat "$stage/rpmbuild-$spec.log" >&2
    echo "make-base: rpmbuild of specs/$spec.spec failed" >&2
    exit 3
  fi
done
rpm --root "$out" --dbpath /usr/lib/sysimage/rpm --initdb
debian=()
# Debian's rpm asks to be told that it is meant to manage this root.
[ -e /etc/debian_version ] && debian=(--force-debian)
# Dependencies checked: the base's packages satisfy one another's Requires.
if ! rpm --root "$out" --dbpath /usr/lib/sysimage/rpm -i "${debian[@]}" \
    "$stage"/rpmbuild/RPMS/*/*.rpm; then
  echo "make-base: rpm could not install the base's packages" >&2
  exit 3
fi
cd "$out"
# OSTree's layout: the packages' /etc is usr/etc (what rpm-ostree does after installing).
mv etc usr/etc
# The loader's cache, where the deployed /etc will have it; no links made (-X): every file
# stays one of a package.
ldconfig -X -r "$out" -f /usr/etc/ld.so.conf -C /usr/etc/ld.so.cache
rm -f usr/lib/sysimage/rpm/.rpm.lock usr/lib/sysimage/rpm/rpmdb.sqlite-shm usr/lib/sysimage/rpm/rpmdb.sqlite-wal
echo "make-base: base tree in $out" >&2
