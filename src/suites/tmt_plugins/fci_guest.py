"""fci's tmt plugin for `fci integrate`: each test's command runs in the composed tree.

tmt itself (Python, which the tree does not have) stays on the sandbox's view of the host;
only the command a test framework gives tmt to run (shell: the test's `test:` script, beakerlib:
its runtest.sh) is wrapped: chroot into FCI_GUEST_ROOT with FCI_CHROOT, in the same directory
(fci binds the run's directory at the same path there), by the tree's /bin/sh, which takes the
script as an argument, never quoted into another script. tmt's own wrappers (pidfile, output
capture, timeouts) keep working around it, so a library or program the tree lacks fails the
test as it would at boot. fci loads this file through TMT_PLUGINS only when the sandbox has a
guest root; without FCI_GUEST_ROOT it changes nothing.
"""

import os
import shlex

import tmt.frameworks
import tmt.frameworks.beakerlib
import tmt.frameworks.shell
import tmt.utils

_ENTER = 'cd "$1" || exit 125; fci_run=$2; set --; eval "$fci_run"'


def _in_guest(original):
    def get_test_command(cls, invocation, logger):
        script = original.__func__(cls, invocation, logger)
        root = os.environ.get('FCI_GUEST_ROOT')
        if not root:
            return script
        chroot = os.environ.get('FCI_CHROOT', 'chroot')
        return tmt.utils.ShellScript(
            f'exec {shlex.quote(chroot)} {shlex.quote(root)} /bin/sh -c {shlex.quote(_ENTER)}'
            f' fci-test "$PWD" {shlex.quote(str(script))}'
        )

    return classmethod(get_test_command)


# Every framework class that defines its own command (a subclass inherits the wrapped one).
for _cls in (
    tmt.frameworks.TestFramework,
    tmt.frameworks.shell.Shell,
    tmt.frameworks.beakerlib.Beakerlib,
):
    if 'get_test_command' in vars(_cls) and '_fci_guest' not in vars(_cls):
        _cls.get_test_command = _in_guest(vars(_cls)['get_test_command'])
        _cls._fci_guest = True
