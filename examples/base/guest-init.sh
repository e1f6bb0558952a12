#!/bin/sh
# PID 1 of the example base. It proves which OSTree commit booted and runs fci smoke's checks:
#   - the commit comes from the kernel's ostree= argument, resolved through /sysroot (the
#     physical root, which ostree-prepare-root mounted there) to
#     /ostree/deploy/OS/deploy/CHECKSUM.SERIAL;
#   - fci smoke attaches a second disk whose first line is "fci-smoke-v1 NONCE" and whose
#     other lines are the checks, one shell command per line;
#   - the answers go to the second serial port (ttyS1), which only root can open, every one
#     carrying the nonce; the checks run as the unprivileged user fci-check, with no way back
#     to root (no_new_privs: setuid bits are ignored), with the first serial port (the
#     console) as their output and neither the disk nor ttyS1 open to them;
#   - a root without capabilities (a kernel helper the package ships, below) owns root's
#     files: everything this init runs or reads once the checks start is on read-only mounts
#     (/, /usr, /etc and the physical root /sysroot), or held here; and no such root should
#     run at all (see harden below).
# Without that disk the guest starts busybox init and a shell on the console.
# Only the base's busybox applets, every one linked in /usr/bin: a package can add a new
# program to /usr/sbin, never replace one of these (compose refuses a conflict). Until /proc
# is mounted busybox cannot start its own applets and would search PATH: it is called by
# its path for that.
PATH=/usr/bin
export PATH
/usr/bin/busybox mount -t proc proc /proc 2>/dev/null
# The kernel runs helpers as root on behalf of any process: modprobe for an unloaded socket
# family or binary format, request-key for a key not found, the hotplug helper; a package may
# ship programs at their paths. From the start, module autoloading and the hotplug helper are
# off and every helper is left without capabilities (a root without them can neither make a
# device node nor reach PID 1). The TOMOYO loader never runs: the initramfs starts this init
# by another path than its trigger.
echo > /proc/sys/kernel/modprobe
[ -w /proc/sys/kernel/hotplug ] && echo > /proc/sys/kernel/hotplug
echo 0 0 > /proc/sys/kernel/usermodehelper/bset
echo 0 0 > /proc/sys/kernel/usermodehelper/inheritable
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
  umask 077
  tr -d '\000' < /dev/vdb > /run/fci-smoke 2>/dev/null
  read -r magic nonce < /run/fci-smoke
  [ "$magic" = fci-smoke-v1 ] || nonce=
  umask 022
fi
if [ -z "$nonce" ] || [ ! -c /dev/ttyS1 ]; then
  echo "fci-guest: booted ${commit:-unknown}"
  exec /usr/bin/busybox init
fi
chmod 0600 /dev/ttyS1 /dev/vdb
exec 3>/dev/ttyS1
# The checks' stdin, opened while /dev is still as the kernel made it.
exec 5</dev/null
# The answers' port stays open here only: its node goes, and so does the disk's (its nonce is
# read). Making a node again takes a capability nothing below has.
rm -f /dev/ttyS1 /dev/vdb
echo "fci-guest $nonce booted ${commit:-unknown}" >&3
echo "fci-guest: booted ${commit:-unknown}"
# The checks are held here, not in a file a helper running as root could rewrite.
checks=$(tail -n +2 /run/fci-smoke)
rm -f /run/fci-smoke
# Nothing the checks leave behind may reach into the next check or into this shell, and no
# root the kernel starts may reach PID 1 or the answers; without all of this, no check runs:
#  - no ptrace at all (Yama);
#  - every file this init or su reads or runs from here on (the passwd su reads for each
#    check, the shell it starts, busybox) read-only, including through the physical root,
#    where the deployment's /etc is the same files;
#  - the one helper any process can make the kernel run as root, request-key (for a key not
#    found), is no program: a package's own is covered by a file that cannot be executed;
#  - and in case a root without capabilities ever runs anyway: no block device node (such a
#    root can write a mounted disk below every read-only mount), sysfs read-only (rebinding
#    a driver makes its device nodes again, the answers' port among them), /dev and the
#    kernel's knobs under /proc/sys read-only.
harden() {
  [ -w /proc/sys/kernel/yama/ptrace_scope ] && echo 3 > /proc/sys/kernel/yama/ptrace_scope
  mount --bind /etc /etc && mount -o remount,bind,ro /etc &&
    mount -o remount,bind,ro / && mount -o remount,bind,ro /sysroot || return 1
  helper=$(readlink -f /sbin/request-key)
  if [ -e "$helper" ]; then
    : > /run/fci-no-helper && chmod 0444 /run/fci-no-helper &&
      mount --bind /run/fci-no-helper "$helper" &&
      mount -o remount,bind,ro "$helper" || return 1
  elif [ -L /sbin/request-key ]; then
    # A link to nothing yet: a check could put a program there (/tmp is writable).
    echo "fci-guest: /sbin/request-key is a link to nothing ($helper)"
    return 1
  fi
  find /dev -type b > /run/fci-block-nodes || return 1
  while IFS= read -r node; do rm -f "$node" || return 1; done < /run/fci-block-nodes
  [ -z "$(find /dev -type b)" ] || return 1
  mount -o remount,ro /sys &&
    mount -o remount,bind,ro /dev &&
    mount --bind /proc/sys /proc/sys && mount -o remount,bind,ro /proc/sys
}
if ! harden; then
  echo "fci-guest: cannot close the guest to a root helper: no check runs"
  sync
  reboot -f
fi
# An answer that cannot be written (the port gone) ends the boot: fci never reads `done`.
answer() {
  echo "fci-guest $nonce $*" >&3 && return 0
  echo "fci-guest: the answers' port is gone: no more checks"
  sync
  reboot -f
}
# One check per line, taken from the text held here (a here-document's writer would be a
# process of its own, which the cleanup below must not kill).
nl='
'
rest=$checks
n=0
while [ -n "$rest" ]; do
  case $rest in
    *"$nl"*) check=${rest%%"$nl"*}; rest=${rest#*"$nl"} ;;
    *) check=$rest; rest= ;;
  esac
  n=$((n + 1))
  answer "check $n start"
  echo "fci-guest: check $n: $check"
  # no_new_privs: a setuid or file-capability binary the package ships cannot make a check
  # root again (root could read the nonce and answer for the guest). The shell is the base's,
  # by a path on a read-only mount.
  # The check itself finds programs where a system would (the package's /usr/sbin too).
  setpriv --nnp su -s /usr/bin/sh fci-check \
    -c "PATH=/usr/local/bin:/usr/bin:/usr/local/sbin:/usr/sbin; export PATH; $check" \
    <&5 3>&- 5<&-
  rc=$?
  answer "check $n rc=$rc"
  # Then everything but this init dies (the check's leftovers, a kernel helper it started)
  # before the next check: by this shell's own kill, nothing it would have to look up (not
  # even /dev/null: a root without capabilities can put a FIFO there, which would hang it).
  kill -9 -1 2>&-
done
answer done
sync
reboot -f
