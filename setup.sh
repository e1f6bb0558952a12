#!/usr/bin/env bash
# Sets up everything fci needs on a Debian machine, builds it, and runs the pipeline
# (build | test | compose | integrate | image | smoke | report) on examples/hello-atomic.
#   ./setup.sh             install, build, demo
#   ./setup.sh --deps-only install the system packages and tmt, nothing else
set -euo pipefail
cd "$(dirname "$0")"

# rpm/rpmbuild/rpmspec, createrepo_c, ansible-playbook, bwrap, libseccomp (fci links it for the
# sandbox's seccomp filters), tmt's rsync, git, unshare, a venv
# for tmt; gcc/make/binutils for the example's %build; procps for the tests' process checks;
# acl for a %check that sets ACLs; ostree, busybox-static, cpio and kmod for the OSTree base
# (examples/base/make-base.sh) and `fci compose`; for `fci image` and `fci smoke`: the Debian
# kernel and ostree-prepare-root (ostree-boot) for the base, e2fsprogs (mkfs.ext4, debugfs),
# qemu-img and qemu-system-x86_64. mkfs.ext4 and mount also make package code's scratch a
# file system of its own (see README "Limits on package code"). rpmlint is the build's rpmlint
# test case; python3-rpm is rpm's Python bindings, which rpmautospec parses specs with. fci's
# Fedora build environment runs debugedit's find-debuginfo (with elfutils' eu-strip and dwz)
# for the debuginfo packages, cmake/meson/ninja for %cmake and %meson, and Debian's python3
# with pip, setuptools and wheel for %py3_build and %pyproject_wheel. The example base packages
# this host's python3, systemctl (systemd) and useradd (passwd) for Fedora's packages.
# rpm-i18n: rpm's translations, so that a test proves fci reads rpm's messages untranslated
# whatever the caller's locale. groovy: tests/scheduler_configs.rs compiles
# examples/jenkins/Jenkinsfile with groovyc (Groovy 2.4, Jenkins' own line), since Jenkins
# itself cannot be installed here. openssl: the provenance tests make the pipeline's ed25519
# key as an administrator does (openssl genpkey).
packages=(rpm createrepo-c ansible-core bubblewrap libseccomp-dev rsync git util-linux python3-venv ca-certificates
          debugedit elfutils dwz cmake meson ninja-build python3-pip python3-setuptools python3-wheel
          gcc make binutils procps acl ostree busybox-static cpio kmod e2fsprogs mount qemu-utils
          rpmlint python3-rpm systemd passwd rpm-i18n groovy openssl)
# Installed without their recommendations (boot loaders, dracut, firmware, GUI front ends):
# the images boot their kernel directly under qemu. rabbitmq-server is the real broker the
# report tests publish to (they start their own node).
boot_packages=(ostree-boot linux-image-amd64 qemu-system-x86 rabbitmq-server)
sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
missing() {
  local p out=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || out+=("$p")
  done
  echo "${out[@]}"
}
read -r -a missing_main <<<"$(missing "${packages[@]}")"
read -r -a missing_boot <<<"$(missing "${boot_packages[@]}")"
if ((${#missing_main[@]} + ${#missing_boot[@]})); then
  echo "setup: installing ${missing_main[*]} ${missing_boot[*]}" >&2
  $sudo apt-get update -q
  if ((${#missing_main[@]})); then
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${missing_main[@]}"
  fi
  if ((${#missing_boot[@]})); then
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing_boot[@]}"
  fi
fi
# A qemu-utils from backports conflicts with the distribution's qemu-system-x86, whose
# installation then removes it: put back the qemu-utils of qemu-system-x86's own version.
if ! command -v qemu-img >/dev/null 2>&1; then
  qemu_version=$(dpkg-query -W -f='${Version}' qemu-system-x86)
  echo "setup: installing qemu-utils=$qemu_version to match qemu-system-x86" >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --allow-downgrades "qemu-utils=$qemu_version"
fi

# tmt comes from PyPI; it gets its own venv on Debian's python so tests can run it from a
# sandbox that hides home directories.
TMT_VENV=${FCI_TMT_VENV:-/opt/fci/tmt}
if ! command -v tmt >/dev/null 2>&1; then
  echo "setup: installing tmt into $TMT_VENV" >&2
  /usr/bin/python3 -m venv "$TMT_VENV"
  "$TMT_VENV/bin/pip" install -q 'tmt>=1.70,<2'
  ln -sf "$TMT_VENV/bin/tmt" /usr/local/bin/tmt
fi

# pika, in the same venv: the report tests consume the broker's messages as
# fedora-messaging's consumers do.
[ -x "$TMT_VENV/bin/python" ] || /usr/bin/python3 -m venv "$TMT_VENV"
if ! "$TMT_VENV/bin/python" -c 'import pika' 2>/dev/null; then
  echo "setup: installing pika into $TMT_VENV" >&2
  "$TMT_VENV/bin/pip" install -q 'pika>=1.3,<2'
fi

# fedora-messaging and the dist-git hook's message schema: the watch tests publish git.receive
# messages with the library Fedora's dist-git uses.
if ! "$TMT_VENV/bin/python" -c 'import fedora_messaging, fedora_messaging_git_hook_messages' 2>/dev/null; then
  echo "setup: installing fedora-messaging into $TMT_VENV" >&2
  "$TMT_VENV/bin/pip" install -q 'fedora-messaging>=3,<4' 'fedora-messaging-git-hook-messages>=1,<2'
fi

# rpmautospec computes %autorelease and %autochangelog from the dist-git history, as Koji does
# (`fci build`). Its own venv on Debian's python, with access to Debian's rpm bindings
# (python3-rpm, through the `rpm` shim package) and pygit2's wheel.
AUTOSPEC_VENV=${FCI_RPMAUTOSPEC_VENV:-/opt/fci/rpmautospec}
if ! command -v rpmautospec >/dev/null 2>&1; then
  echo "setup: installing rpmautospec into $AUTOSPEC_VENV" >&2
  /usr/bin/python3 -m venv "$AUTOSPEC_VENV"
  "$AUTOSPEC_VENV/bin/pip" install -q 'rpmautospec[click,pygit2,rpm]>=0.8,<1'
  ln -sf "$AUTOSPEC_VENV/bin/rpmautospec" /usr/local/bin/rpmautospec
fi

# Buildbot 4.3 (master with its web UI and REST API, and the worker): examples/buildbot runs
# fci's per-change pipeline on it, and tests/buildbot_e2e.rs brings it up. Its own venv.
BUILDBOT_VENV=${BUILDBOT_VENV:-/opt/fci/buildbot}
if ! "$BUILDBOT_VENV/bin/python" -c 'import buildbot, buildbot_worker, buildbot_www' 2>/dev/null; then
  echo "setup: installing buildbot into $BUILDBOT_VENV" >&2
  /usr/bin/python3 -m venv "$BUILDBOT_VENV"
  "$BUILDBOT_VENV/bin/pip" install -q 'buildbot[bundle]>=4.3,<4.4' 'buildbot-worker>=4.3,<4.4'
fi

# The reference in-toto tooling (securesystemslib's DSSE and keys, in-toto): the provenance
# tests check fci's signed envelopes with it, as a third party would. Its own venv.
INTOTO_VENV=${INTOTO_VENV:-/opt/fci/in-toto}
if ! "$INTOTO_VENV/bin/python" -c 'import in_toto, securesystemslib.dsse, cryptography' 2>/dev/null; then
  echo "setup: installing in-toto and securesystemslib into $INTOTO_VENV" >&2
  /usr/bin/python3 -m venv "$INTOTO_VENV"
  "$INTOTO_VENV/bin/pip" install -q 'in-toto>=3,<4' 'securesystemslib[crypto]>=1,<2'
fi

if [ "${1:-}" = "--deps-only" ]; then
  exit 0
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo not found: fci needs Rust 1.89 or newer (rustup, or your distribution's rustc/cargo)" >&2
  exit 1
fi
cargo build --release --locked -q
fci=target/release/fci
ws=$(mktemp -d /var/tmp/fci-demo.XXXXXX)
echo "setup: making the example OSTree base (examples/base/make-base.sh)" >&2
examples/base/make-base.sh "$ws/base"
"$fci" --workspace "$ws/ws" base init "$ws/base" --branch f41 >/dev/null
# A dist-git of the example package, and the pipeline's fci.yaml watching it: the run starts
# from a packager's push, as it would on a real dist-git.
mkdir -p "$ws/rpms"
cp -r examples/hello-atomic "$ws/rpms/hello-atomic"
pkgr=(-c user.name="Example Packager" -c user.email=packager@example.org -c init.defaultBranch=f41)
git -C "$ws/rpms/hello-atomic" "${pkgr[@]}" init -q
git -C "$ws/rpms/hello-atomic" "${pkgr[@]}" add -A
git -C "$ws/rpms/hello-atomic" "${pkgr[@]}" commit -q -m "hello-atomic: import"
printf 'dist_git: ./rpms\nbranches: [f41]\npackages: [hello-atomic]\n' > "$ws/fci.yaml"
"$fci" --workspace "$ws/ws" watch --config "$ws/fci.yaml" --once
echo "# packaging note" > "$ws/rpms/hello-atomic/README.packager"
git -C "$ws/rpms/hello-atomic" "${pkgr[@]}" add -A
git -C "$ws/rpms/hello-atomic" "${pkgr[@]}" commit -q -m "hello-atomic: add a packaging note"
"$fci" --workspace "$ws/ws" watch --config "$ws/fci.yaml" --once --output-dir "$ws/queue"
change=$(ls "$ws"/queue/hello-atomic-f41-*.json)
echo "setup: fci watch queued $change; running build | test | compose | integrate | image | smoke | report on it (workspace $ws)" >&2
echo "setup: fci conform is left out: it needs a Kubernetes/OpenShift cluster (or an installer for one), and this machine has none" >&2
set +e
"$fci" --workspace "$ws/ws" build -m "$change" --lookaside examples/lookaside \
  | "$fci" --workspace "$ws/ws" test \
  | "$fci" --workspace "$ws/ws" compose \
  | "$fci" --workspace "$ws/ws" integrate --tests examples/integration \
  | "$fci" --workspace "$ws/ws" image \
  | "$fci" --workspace "$ws/ws" smoke --check hello-atomic \
  | "$fci" --workspace "$ws/ws" report --namespace fedora-ci.koji-build \
      --gating examples/hello-atomic/gating.yaml --decision-context bodhi_update_push_stable \
      --promote --html "$ws/report.html" -o "$ws/manifest.json"
status=$?
set -e
echo "setup: manifest at $ws/manifest.json, report at $ws/report.html; exit status $status" >&2
exit $status
