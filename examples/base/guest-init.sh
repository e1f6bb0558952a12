#!/bin/sh
# PID 1 of the example base. It proves which OSTree commit booted and runs fci smoke's checks:
#   - the commit comes from the kernel's ostree= argument, resolved through /sysroot (the
#     physical root, which ostree-prepare-root mounted there) to
#     /ostree/deploy/OS/deploy/CHECKSUM.SERIAL;
#   - fci smoke attaches a second disk whose first line is "fci-smoke-v1 NONCE" and whose
#     other lines are the checks, one shell command per line. Every marker carries the nonce,
#     so output from an earlier boot or another guest can never pass for this one.
# Without that disk the guest starts busybox init and a shell on the console.
PATH=/usr/sbin:/usr/bin
export PATH
mount -t proc proc /proc 2>/dev/null
mount -t sysfs sysfs /sys 2>/dev/null
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t tmpfs -o mode=1777 tmpfs /tmp 2>/dev/null
hostname fci-guest
ostree_arg=
for arg in $(cat /proc/cmdline); do
  case "$arg" in ostree=*) ostree_arg=${arg#ostree=} ;; esac
done
deployment=
[ -n "$ostree_arg" ] && deployment=$(readlink -f "/sysroot$ostree_arg")
commit=${deployment##*/}
commit=${commit%.*}
nonce=
if [ -b /dev/vdb ]; then
  tr -d '\000' < /dev/vdb > /run/fci-smoke 2>/dev/null
  read -r magic nonce < /run/fci-smoke
  [ "$magic" = fci-smoke-v1 ] || nonce=
fi
if [ -z "$nonce" ]; then
  echo "fci-guest: booted ${commit:-unknown}"
  exec /usr/bin/busybox init
fi
echo "fci-guest $nonce booted ${commit:-unknown}"
n=0
tail -n +2 /run/fci-smoke | while IFS= read -r check; do
  n=$((n + 1))
  echo "fci-guest $nonce check $n start"
  sh -c "$check" < /dev/null
  echo "fci-guest $nonce check $n rc=$?"
done
echo "fci-guest $nonce done"
sync
reboot -f
