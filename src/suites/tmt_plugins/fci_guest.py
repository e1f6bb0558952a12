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

# In the tree, a command the shell cannot run (126) or find, or a program whose loader cannot
# find its library (127), is what is missing from the composed tree: the change's failure,
# which tmt would call an `error` (anything but 0 and 1), and fci the host's. It is a failure
# (1) there; every other status is the test's own. Nothing is added to the output: its last
# line stays the shell's or the loader's own message (`libacl.so.1: cannot open shared object
# file`), which names what the tree lacks and becomes the case's note.
_ENTER = (
    'cd "$1" || exit 125; fci_run=$2; set --; (eval "$fci_run"); fci_rc=$?; '
    'case $fci_rc in 126|127) exit 1;; esac; exit $fci_rc'
)


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
