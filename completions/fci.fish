# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_fci_global_optspecs
    string join \n workspace= state= q/quiet v/verbose h/help V/version
end

function __fish_fci_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_fci_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_fci_using_subcommand
    set -l cmd (__fish_fci_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c fci -n "__fish_fci_needs_command" -l workspace -d 'Workspace directory holding artifacts, logs, the cache and locks' -r -F
complete -c fci -n "__fish_fci_needs_command" -l state -d 'The pipeline state shared between machines (known-good refs and package set, exclusions, image schedule, watch heads, waivers, the OSTree repository): a directory on a shared volume; else fci.yaml\'s `state:` (of --config, or of the fci.yaml the manifest names); else the one the workspace recorded; else state/ inside it' -r -F
complete -c fci -n "__fish_fci_needs_command" -s q -l quiet -d 'No progress or summaries on stderr (errors are still printed)'
complete -c fci -n "__fish_fci_needs_command" -s v -l verbose -d 'Stream the stage\'s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked'
complete -c fci -n "__fish_fci_needs_command" -s h -l help -d 'Print help'
complete -c fci -n "__fish_fci_needs_command" -s V -l version -d 'Print version'
complete -c fci -n "__fish_fci_needs_command" -f -a "watch" -d 'Watch the monitored packages\' dist-git branches; one manifest per new commit'
complete -c fci -n "__fish_fci_needs_command" -f -a "build" -d 'Build the SRPM and binary RPMs of a dist-git checkout (%check runs)'
complete -c fci -n "__fish_fci_needs_command" -f -a "test" -d 'Run the package\'s STI and tmt tests against the RPMs just built'
complete -c fci -n "__fish_fci_needs_command" -f -a "integrate" -d 'Run the pipeline\'s OS-level tests against the composed commit'
complete -c fci -n "__fish_fci_needs_command" -f -a "conform" -d 'Install or reach a cluster running the composed tree and run the Kubernetes conformance suite'
complete -c fci -n "__fish_fci_needs_command" -f -a "image" -d 'Make a disk image (qcow2 or raw) of an OSTree deployment of the composed commit'
complete -c fci -n "__fish_fci_needs_command" -f -a "smoke" -d 'Boot the image in qemu and check that the composed commit runs'
complete -c fci -n "__fish_fci_needs_command" -f -a "gating" -d 'Gating without a run: decide from files, check a gating.yaml, waive a test case'
complete -c fci -n "__fish_fci_needs_command" -f -a "base" -d 'The known-good OSTree base composes build on: make a branch\'s first one'
complete -c fci -n "__fish_fci_needs_command" -f -a "bundle" -d 'Write a run\'s manifest and exactly the artifacts and logs it references to one file'
complete -c fci -n "__fish_fci_needs_command" -f -a "unbundle" -d 'Bring a bundle into this workspace (every digest verified first) and write its manifest'
complete -c fci -n "__fish_fci_needs_command" -f -a "fsck" -d 'Check the workspace and the pipeline state for damage (0 clean, 1 damage found)'
complete -c fci -n "__fish_fci_needs_command" -f -a "gc" -d 'Remove what no recent run, known-good base or queued retest needs (objects, cache, old records, OSTree refs)'
complete -c fci -n "__fish_fci_needs_command" -f -a "verify" -d 'Check an image\'s, commit\'s or RPM\'s signed chain back to its dist-git commit, and the policy'
complete -c fci -n "__fish_fci_needs_command" -f -a "completions" -d 'Print shell completions (bash, zsh, fish, elvish, powershell)'
complete -c fci -n "__fish_fci_needs_command" -f -a "compose" -d 'Commit the known-good OSTree base plus the change\'s RPMs (only when build and test passed)'
complete -c fci -n "__fish_fci_needs_command" -f -a "report" -d 'Record the run\'s results and decide its gating (with --gating; --promote acts on it)'
complete -c fci -n "__fish_fci_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c fci -n "__fish_fci_using_subcommand watch" -l config -d 'The pipeline\'s configuration (monitored packages, dist-git, branches)' -r -F
complete -c fci -n "__fish_fci_using_subcommand watch" -l interval -d 'Poll again after this long, until stopped (seconds, or 5m, 1h, 1h30m); with --amqp-url, how often kept messages are tried again while the queue is idle (default 30s)' -r
complete -c fci -n "__fish_fci_using_subcommand watch" -l remote-timeout -d 'A remote dist-git that does not answer in this long is an ERROR for its package (seconds, or 90s, 5m)' -r
complete -c fci -n "__fish_fci_using_subcommand watch" -l amqp-url -d 'Consume dist-git push messages (git.receive) from this AMQP broker' -r
complete -c fci -n "__fish_fci_using_subcommand watch" -l queue -d 'The broker queue to consume (declared durable, bound to amq.topic for #.git.receive)' -r
complete -c fci -n "__fish_fci_using_subcommand watch" -l message -d 'Act on one git.receive message from a file (\'-\' for stdin; at most 1 MiB)' -r -F
complete -c fci -n "__fish_fci_using_subcommand watch" -l output-dir -d 'Write each change\'s manifest into DIR (default: one JSON manifest per line on stdout)' -r -F
complete -c fci -n "__fish_fci_using_subcommand watch" -l jobs -d 'Remote repositories asked at once' -r
complete -c fci -n "__fish_fci_using_subcommand watch" -l workspace -d 'Workspace directory holding artifacts, logs, the cache and locks' -r -F
complete -c fci -n "__fish_fci_using_subcommand watch" -l state -d 'The pipeline state shared between machines (known-good refs and package set, exclusions, image schedule, watch heads, waivers, the OSTree repository): a directory on a shared volume; else fci.yaml\'s `state:` (of --config, or of the fci.yaml the manifest names); else the one the workspace recorded; else state/ inside it' -r -F
complete -c fci -n "__fish_fci_using_subcommand watch" -l once -d 'Poll every repository once and exit (with --amqp-url: take what is queued, then exit)'
complete -c fci -n "__fish_fci_using_subcommand watch" -l emit-existing -d 'On the first poll of a branch, emit its head instead of only recording it as seen'
complete -c fci -n "__fish_fci_using_subcommand watch" -s q -l quiet -d 'No progress or summaries on stderr (errors are still printed)'
complete -c fci -n "__fish_fci_using_subcommand watch" -s v -l verbose -d 'Stream the stage\'s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked'
complete -c fci -n "__fish_fci_using_subcommand watch" -s h -l help -d 'Print help'
complete -c fci -n "__fish_fci_using_subcommand build" -l ref -d 'Git ref (branch, tag or commit) to build' -r
complete -c fci -n "__fish_fci_using_subcommand build" -l lookaside -d 'Lookaside cache for the `sources` file: a directory or an http(s) URL' -r
complete -c fci -n "__fish_fci_using_subcommand build" -l backend -d 'Build backend' -r -f -a "auto\t'mock when it is on PATH and can build here, else rpmbuild'
mock\t''
rpmbuild\t''"
complete -c fci -n "__fish_fci_using_subcommand build" -l mock-config -d 'mock configuration (mock -r)' -r
complete -c fci -n "__fish_fci_using_subcommand build" -l dist -d '%{dist} tag, e.g. .fc41 (default: from the branch name)' -r
complete -c fci -n "__fish_fci_using_subcommand build" -l branch -d 'Dist-git branch name, when the checkout does not tell (f41, epel9, c10s, rawhide)' -r
complete -c fci -n "__fish_fci_using_subcommand build" -l rawhide-release -d 'The Fedora release number rawhide (and a `main` branch) builds for' -r
complete -c fci -n "__fish_fci_using_subcommand build" -l spec -d 'The spec to build, relative to the checkout (default: its only .spec)' -r -F
complete -c fci -n "__fish_fci_using_subcommand build" -s D -l define -d 'Extra rpm macro definition: NAME=VALUE, or as rpm takes it, \'NAME BODY\' or \'NAME(OPTS) BODY\' (repeatable)' -r
complete -c fci -n "__fish_fci_using_subcommand build" -l timeout -d 'Kill the build (and a clone of a dist-git URL) after this long (ERROR): seconds, or 90m, 4h, 1h30m; 0 for no limit' -r
complete -c fci -n "__fish_fci_using_subcommand build" -l max-pids -d 'Most processes and threads package code may run at once (default 1024, or fci.yaml\'s limits.pids); past it the stage is FAILED' -r
complete -c fci -n "__fish_fci_using_subcommand build" -l max-memory -d 'Most memory package code may use, all its processes together (default 4GiB, or fci.yaml\'s limits.memory); past it the stage is FAILED' -r
complete -c fci -n "__fish_fci_using_subcommand build" -l max-scratch -d 'Most scratch space package code may fill: its build or test directory and its tmpfs mounts; also the most the change\'s RPMs may write when installed (test, compose) (default 8GiB, or fci.yaml\'s limits.scratch); past it the stage is FAILED' -r
complete -c fci -n "__fish_fci_using_subcommand build" -s m -l manifest -d 'Input manifest (\'-\' for stdin)' -r -F
complete -c fci -n "__fish_fci_using_subcommand build" -s o -l output -d 'Output manifest (\'-\' for stdout), written atomically' -r -F
complete -c fci -n "__fish_fci_using_subcommand build" -l namespace -d 'The namespace of the run\'s test names, messages and results (default fedora-ci.koji-build, or fci.yaml\'s ci.namespace); fixed by the run\'s first stage' -r
complete -c fci -n "__fish_fci_using_subcommand build" -l run-url -d 'The URL of the CI job running this stage (default: Jenkins\' BUILD_URL): the messages\' run.url and log links, the results\' ref_url' -r
complete -c fci -n "__fish_fci_using_subcommand build" -l artifacts-url -d 'The URL the workspace\'s files are published under: logs are linked below it (default: fci.yaml\'s ci.artifacts_url); fixed by the run\'s first stage' -r
complete -c fci -n "__fish_fci_using_subcommand build" -l signing-key -d 'The pipeline\'s ed25519 key (PKCS#8 PEM, as `openssl genpkey -algorithm ed25519` writes it) that signs the stage\'s attestations; without one they are written unsigned. The file is read, never recorded' -r -F
complete -c fci -n "__fish_fci_using_subcommand build" -l builder-id -d 'The builder id the attestations name (SLSA\'s runDetails.builder.id: who ran the work; default tag:fci,2026:builder/<host name>)' -r
complete -c fci -n "__fish_fci_using_subcommand build" -l workspace -d 'Workspace directory holding artifacts, logs, the cache and locks' -r -F
complete -c fci -n "__fish_fci_using_subcommand build" -l state -d 'The pipeline state shared between machines (known-good refs and package set, exclusions, image schedule, watch heads, waivers, the OSTree repository): a directory on a shared volume; else fci.yaml\'s `state:` (of --config, or of the fci.yaml the manifest names); else the one the workspace recorded; else state/ inside it' -r -F
complete -c fci -n "__fish_fci_using_subcommand build" -l nocheck -d 'Do not run %check (the build.check result is SKIPPED)'
complete -c fci -n "__fish_fci_using_subcommand build" -l strict-builddeps -d 'Fail (ERROR) instead of building with --nodeps when the host cannot satisfy BuildRequires'
complete -c fci -n "__fish_fci_using_subcommand build" -l no-cache -d 'Run even when the inputs match a recorded result'
complete -c fci -n "__fish_fci_using_subcommand build" -l force -d 'Run even when an earlier stage did not pass'
complete -c fci -n "__fish_fci_using_subcommand build" -s q -l quiet -d 'No progress or summaries on stderr (errors are still printed)'
complete -c fci -n "__fish_fci_using_subcommand build" -s v -l verbose -d 'Stream the stage\'s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked'
complete -c fci -n "__fish_fci_using_subcommand build" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c fci -n "__fish_fci_using_subcommand test" -l base-root -d 'Base tree to layer under the new RPMs (default: the host\'s directories, read-only)' -r -F
complete -c fci -n "__fish_fci_using_subcommand test" -l tests-from -d 'Take tests from this dist-git checkout instead of the build\'s snapshot' -r -F
complete -c fci -n "__fish_fci_using_subcommand test" -l runner -d 'Which test formats to run' -r -f -a "auto\t'every format the repository has (STI playbooks and tmt plans)'
sti\t''
tmt\t''"
complete -c fci -n "__fish_fci_using_subcommand test" -l tags -d 'STI tags to select (comma-separated: classic, container, atomic)' -r
complete -c fci -n "__fish_fci_using_subcommand test" -l retries -d 'Retry each failing test case up to N more times, recording every attempt' -r
complete -c fci -n "__fish_fci_using_subcommand test" -l timeout -d 'Kill a test run (a playbook, or tmt), the install of the packages and a clone of a tests URL after this long (ERROR): seconds, or 90m, 4h, 1h30m; 0 for no limit' -r
complete -c fci -n "__fish_fci_using_subcommand test" -l max-pids -d 'Most processes and threads package code may run at once (default 1024, or fci.yaml\'s limits.pids); past it the stage is FAILED' -r
complete -c fci -n "__fish_fci_using_subcommand test" -l max-memory -d 'Most memory package code may use, all its processes together (default 4GiB, or fci.yaml\'s limits.memory); past it the stage is FAILED' -r
complete -c fci -n "__fish_fci_using_subcommand test" -l max-scratch -d 'Most scratch space package code may fill: its build or test directory and its tmpfs mounts; also the most the change\'s RPMs may write when installed (test, compose) (default 8GiB, or fci.yaml\'s limits.scratch); past it the stage is FAILED' -r
complete -c fci -n "__fish_fci_using_subcommand test" -s m -l manifest -d 'Input manifest (\'-\' for stdin)' -r -F
complete -c fci -n "__fish_fci_using_subcommand test" -s o -l output -d 'Output manifest (\'-\' for stdout), written atomically' -r -F
complete -c fci -n "__fish_fci_using_subcommand test" -l namespace -d 'The namespace of the run\'s test names, messages and results (default fedora-ci.koji-build, or fci.yaml\'s ci.namespace); fixed by the run\'s first stage' -r
complete -c fci -n "__fish_fci_using_subcommand test" -l run-url -d 'The URL of the CI job running this stage (default: Jenkins\' BUILD_URL): the messages\' run.url and log links, the results\' ref_url' -r
complete -c fci -n "__fish_fci_using_subcommand test" -l artifacts-url -d 'The URL the workspace\'s files are published under: logs are linked below it (default: fci.yaml\'s ci.artifacts_url); fixed by the run\'s first stage' -r
complete -c fci -n "__fish_fci_using_subcommand test" -l signing-key -d 'The pipeline\'s ed25519 key (PKCS#8 PEM, as `openssl genpkey -algorithm ed25519` writes it) that signs the stage\'s attestations; without one they are written unsigned. The file is read, never recorded' -r -F
complete -c fci -n "__fish_fci_using_subcommand test" -l builder-id -d 'The builder id the attestations name (SLSA\'s runDetails.builder.id: who ran the work; default tag:fci,2026:builder/<host name>)' -r
complete -c fci -n "__fish_fci_using_subcommand test" -l workspace -d 'Workspace directory holding artifacts, logs, the cache and locks' -r -F
complete -c fci -n "__fish_fci_using_subcommand test" -l state -d 'The pipeline state shared between machines (known-good refs and package set, exclusions, image schedule, watch heads, waivers, the OSTree repository): a directory on a shared volume; else fci.yaml\'s `state:` (of --config, or of the fci.yaml the manifest names); else the one the workspace recorded; else state/ inside it' -r -F
complete -c fci -n "__fish_fci_using_subcommand test" -l failed-only -d 'Rerun only the test cases that did not pass in the input manifest\'s test stage'
complete -c fci -n "__fish_fci_using_subcommand test" -l network -d 'Let the tests reach the network'
complete -c fci -n "__fish_fci_using_subcommand test" -l no-cache -d 'Run even when the inputs match a recorded result'
complete -c fci -n "__fish_fci_using_subcommand test" -l force -d 'Run even when an earlier stage did not pass'
complete -c fci -n "__fish_fci_using_subcommand test" -s q -l quiet -d 'No progress or summaries on stderr (errors are still printed)'
complete -c fci -n "__fish_fci_using_subcommand test" -s v -l verbose -d 'Stream the stage\'s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked'
complete -c fci -n "__fish_fci_using_subcommand test" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c fci -n "__fish_fci_using_subcommand integrate" -l tests -d 'The integration tests: a directory or git URL holding tests/tests*.yml or tmt plans' -r
complete -c fci -n "__fish_fci_using_subcommand integrate" -l tests-ref -d 'Git ref of the tests, for a URL' -r
complete -c fci -n "__fish_fci_using_subcommand integrate" -l runner -d 'Which test formats to run' -r -f -a "auto\t'every format the repository has (STI playbooks and tmt plans)'
sti\t''
tmt\t''"
complete -c fci -n "__fish_fci_using_subcommand integrate" -l tags -d 'STI tags to select (comma-separated: classic, container, atomic)' -r
complete -c fci -n "__fish_fci_using_subcommand integrate" -l retries -d 'Retry each failing test case up to N more times, recording every attempt' -r
complete -c fci -n "__fish_fci_using_subcommand integrate" -l timeout -d 'Kill a test run (a playbook, or tmt), the install of the packages and a clone of a tests URL after this long (ERROR): seconds, or 90m, 4h, 1h30m; 0 for no limit' -r
complete -c fci -n "__fish_fci_using_subcommand integrate" -l max-pids -d 'Most processes and threads package code may run at once (default 1024, or fci.yaml\'s limits.pids); past it the stage is FAILED' -r
complete -c fci -n "__fish_fci_using_subcommand integrate" -l max-memory -d 'Most memory package code may use, all its processes together (default 4GiB, or fci.yaml\'s limits.memory); past it the stage is FAILED' -r
complete -c fci -n "__fish_fci_using_subcommand integrate" -l max-scratch -d 'Most scratch space package code may fill: its build or test directory and its tmpfs mounts; also the most the change\'s RPMs may write when installed (test, compose) (default 8GiB, or fci.yaml\'s limits.scratch); past it the stage is FAILED' -r
complete -c fci -n "__fish_fci_using_subcommand integrate" -s m -l manifest -d 'Input manifest (\'-\' for stdin)' -r -F
complete -c fci -n "__fish_fci_using_subcommand integrate" -s o -l output -d 'Output manifest (\'-\' for stdout), written atomically' -r -F
complete -c fci -n "__fish_fci_using_subcommand integrate" -l namespace -d 'The namespace of the run\'s test names, messages and results (default fedora-ci.koji-build, or fci.yaml\'s ci.namespace); fixed by the run\'s first stage' -r
complete -c fci -n "__fish_fci_using_subcommand integrate" -l run-url -d 'The URL of the CI job running this stage (default: Jenkins\' BUILD_URL): the messages\' run.url and log links, the results\' ref_url' -r
complete -c fci -n "__fish_fci_using_subcommand integrate" -l artifacts-url -d 'The URL the workspace\'s files are published under: logs are linked below it (default: fci.yaml\'s ci.artifacts_url); fixed by the run\'s first stage' -r
complete -c fci -n "__fish_fci_using_subcommand integrate" -l signing-key -d 'The pipeline\'s ed25519 key (PKCS#8 PEM, as `openssl genpkey -algorithm ed25519` writes it) that signs the stage\'s attestations; without one they are written unsigned. The file is read, never recorded' -r -F
complete -c fci -n "__fish_fci_using_subcommand integrate" -l builder-id -d 'The builder id the attestations name (SLSA\'s runDetails.builder.id: who ran the work; default tag:fci,2026:builder/<host name>)' -r
complete -c fci -n "__fish_fci_using_subcommand integrate" -l workspace -d 'Workspace directory holding artifacts, logs, the cache and locks' -r -F
complete -c fci -n "__fish_fci_using_subcommand integrate" -l state -d 'The pipeline state shared between machines (known-good refs and package set, exclusions, image schedule, watch heads, waivers, the OSTree repository): a directory on a shared volume; else fci.yaml\'s `state:` (of --config, or of the fci.yaml the manifest names); else the one the workspace recorded; else state/ inside it' -r -F
complete -c fci -n "__fish_fci_using_subcommand integrate" -l network -d 'Let the tests reach the network'
complete -c fci -n "__fish_fci_using_subcommand integrate" -l no-cache -d 'Run even when the inputs match a recorded result'
complete -c fci -n "__fish_fci_using_subcommand integrate" -l force -d 'Run even when an earlier stage did not pass'
complete -c fci -n "__fish_fci_using_subcommand integrate" -s q -l quiet -d 'No progress or summaries on stderr (errors are still printed)'
complete -c fci -n "__fish_fci_using_subcommand integrate" -s v -l verbose -d 'Stream the stage\'s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked'
complete -c fci -n "__fish_fci_using_subcommand integrate" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c fci -n "__fish_fci_using_subcommand conform" -l kubeconfig -d 'An existing cluster\'s kubeconfig (it must run the composed tree)' -r -F
complete -c fci -n "__fish_fci_using_subcommand conform" -l installer -d 'A command that installs a cluster from the composed tree and leaves {kubeconfig}; its arguments end with \';\'' -r
complete -c fci -n "__fish_fci_using_subcommand conform" -l context -d 'The kubeconfig context to use (default: its current-context)' -r
complete -c fci -n "__fish_fci_using_subcommand conform" -l install-timeout -d 'Kill the installer after this long (ERROR): seconds, or 90m, 4h, 1h30m; 0 for none' -r
complete -c fci -n "__fish_fci_using_subcommand conform" -l ready-timeout -d 'How long to wait for the API server\'s /readyz to answer 200 (ERROR after): seconds, or 90s, 10m' -r
complete -c fci -n "__fish_fci_using_subcommand conform" -l runner -d 'The conformance runner' -r -f -a "sonobuoy\t'sonobuoy run --mode MODE --wait; retrieve; delete'
e2e.test\t'e2e.test --ginkgo.focus \'\\[Conformance\\]\''
openshift-tests\t'openshift-tests run kubernetes/conformance'"
complete -c fci -n "__fish_fci_using_subcommand conform" -l mode -d 'sonobuoy\'s --mode' -r
complete -c fci -n "__fish_fci_using_subcommand conform" -l runner-cmd -d 'Any other runner: a command that writes JUnit files into {junit_dir}; its arguments end with \';\' (instead of --runner)' -r
complete -c fci -n "__fish_fci_using_subcommand conform" -l timeout -d 'Kill the conformance runner after this long (ERROR): seconds, or 90m, 4h, 1h30m; 0 for none' -r
complete -c fci -n "__fish_fci_using_subcommand conform" -l teardown -d 'A command run at the end whatever happened (also after a failure, an ERROR or Ctrl-C), e.g. to destroy the cluster; its arguments end with \';\'' -r
complete -c fci -n "__fish_fci_using_subcommand conform" -l teardown-timeout -d 'Kill the teardown after this long: seconds, or 90m, 4h, 1h30m; 0 for none' -r
complete -c fci -n "__fish_fci_using_subcommand conform" -s m -l manifest -d 'Input manifest (\'-\' for stdin)' -r -F
complete -c fci -n "__fish_fci_using_subcommand conform" -s o -l output -d 'Output manifest (\'-\' for stdout), written atomically' -r -F
complete -c fci -n "__fish_fci_using_subcommand conform" -l namespace -d 'The namespace of the run\'s test names, messages and results (default fedora-ci.koji-build, or fci.yaml\'s ci.namespace); fixed by the run\'s first stage' -r
complete -c fci -n "__fish_fci_using_subcommand conform" -l run-url -d 'The URL of the CI job running this stage (default: Jenkins\' BUILD_URL): the messages\' run.url and log links, the results\' ref_url' -r
complete -c fci -n "__fish_fci_using_subcommand conform" -l artifacts-url -d 'The URL the workspace\'s files are published under: logs are linked below it (default: fci.yaml\'s ci.artifacts_url); fixed by the run\'s first stage' -r
complete -c fci -n "__fish_fci_using_subcommand conform" -l signing-key -d 'The pipeline\'s ed25519 key (PKCS#8 PEM, as `openssl genpkey -algorithm ed25519` writes it) that signs the stage\'s attestations; without one they are written unsigned. The file is read, never recorded' -r -F
complete -c fci -n "__fish_fci_using_subcommand conform" -l builder-id -d 'The builder id the attestations name (SLSA\'s runDetails.builder.id: who ran the work; default tag:fci,2026:builder/<host name>)' -r
complete -c fci -n "__fish_fci_using_subcommand conform" -l workspace -d 'Workspace directory holding artifacts, logs, the cache and locks' -r -F
complete -c fci -n "__fish_fci_using_subcommand conform" -l state -d 'The pipeline state shared between machines (known-good refs and package set, exclusions, image schedule, watch heads, waivers, the OSTree repository): a directory on a shared volume; else fci.yaml\'s `state:` (of --config, or of the fci.yaml the manifest names); else the one the workspace recorded; else state/ inside it' -r -F
complete -c fci -n "__fish_fci_using_subcommand conform" -l no-cache -d 'Run even when the inputs match a recorded result'
complete -c fci -n "__fish_fci_using_subcommand conform" -l force -d 'Run even when an earlier stage did not pass'
complete -c fci -n "__fish_fci_using_subcommand conform" -s q -l quiet -d 'No progress or summaries on stderr (errors are still printed)'
complete -c fci -n "__fish_fci_using_subcommand conform" -s v -l verbose -d 'Stream the stage\'s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked'
complete -c fci -n "__fish_fci_using_subcommand conform" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c fci -n "__fish_fci_using_subcommand image" -l format -d 'Disk image format' -r -f -a "qcow2\t''
raw\t''"
complete -c fci -n "__fish_fci_using_subcommand image" -l interval -d 'Make an image at most this often per branch (seconds, or 90m, 6h, 1d12h; 0: every run); a run before then is SKIPPED saying when the next is due, and exits 0. --force images' -r
complete -c fci -n "__fish_fci_using_subcommand image" -l size -d 'The disk\'s virtual size in MiB (default: twice the deployment, at least 256)' -r
complete -c fci -n "__fish_fci_using_subcommand image" -l karg -d 'An extra kernel argument for the deployment (repeatable); the defaults are root=/dev/vda rw console=ttyS0 panic=-1' -r
complete -c fci -n "__fish_fci_using_subcommand image" -l os -d 'The deployment\'s OS name (the stateroot under /ostree/deploy)' -r
complete -c fci -n "__fish_fci_using_subcommand image" -l timeout -d 'Kill the image build after this long (ERROR): seconds, or 90m, 4h, 1h30m; 0 for no limit' -r
complete -c fci -n "__fish_fci_using_subcommand image" -s m -l manifest -d 'Input manifest (\'-\' for stdin)' -r -F
complete -c fci -n "__fish_fci_using_subcommand image" -s o -l output -d 'Output manifest (\'-\' for stdout), written atomically' -r -F
complete -c fci -n "__fish_fci_using_subcommand image" -l namespace -d 'The namespace of the run\'s test names, messages and results (default fedora-ci.koji-build, or fci.yaml\'s ci.namespace); fixed by the run\'s first stage' -r
complete -c fci -n "__fish_fci_using_subcommand image" -l run-url -d 'The URL of the CI job running this stage (default: Jenkins\' BUILD_URL): the messages\' run.url and log links, the results\' ref_url' -r
complete -c fci -n "__fish_fci_using_subcommand image" -l artifacts-url -d 'The URL the workspace\'s files are published under: logs are linked below it (default: fci.yaml\'s ci.artifacts_url); fixed by the run\'s first stage' -r
complete -c fci -n "__fish_fci_using_subcommand image" -l signing-key -d 'The pipeline\'s ed25519 key (PKCS#8 PEM, as `openssl genpkey -algorithm ed25519` writes it) that signs the stage\'s attestations; without one they are written unsigned. The file is read, never recorded' -r -F
complete -c fci -n "__fish_fci_using_subcommand image" -l builder-id -d 'The builder id the attestations name (SLSA\'s runDetails.builder.id: who ran the work; default tag:fci,2026:builder/<host name>)' -r
complete -c fci -n "__fish_fci_using_subcommand image" -l workspace -d 'Workspace directory holding artifacts, logs, the cache and locks' -r -F
complete -c fci -n "__fish_fci_using_subcommand image" -l state -d 'The pipeline state shared between machines (known-good refs and package set, exclusions, image schedule, watch heads, waivers, the OSTree repository): a directory on a shared volume; else fci.yaml\'s `state:` (of --config, or of the fci.yaml the manifest names); else the one the workspace recorded; else state/ inside it' -r -F
complete -c fci -n "__fish_fci_using_subcommand image" -l no-cache -d 'Run even when the inputs match a recorded result'
complete -c fci -n "__fish_fci_using_subcommand image" -l force -d 'Run even when an earlier stage did not pass'
complete -c fci -n "__fish_fci_using_subcommand image" -s q -l quiet -d 'No progress or summaries on stderr (errors are still printed)'
complete -c fci -n "__fish_fci_using_subcommand image" -s v -l verbose -d 'Stream the stage\'s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked'
complete -c fci -n "__fish_fci_using_subcommand image" -s h -l help -d 'Print help'
complete -c fci -n "__fish_fci_using_subcommand smoke" -l check -d 'A command the booted guest runs (repeatable, one test case each); it passes when the command exits 0, e.g. --check hello-atomic' -r
complete -c fci -n "__fish_fci_using_subcommand smoke" -l accel -d 'The accelerator: auto uses KVM only when a probe boot showed it works on this host' -r -f -a "auto\t'KVM when a probe boot shows it works here, else TCG'
kvm\t''
tcg\t''"
complete -c fci -n "__fish_fci_using_subcommand smoke" -l memory -d 'Guest memory in MiB' -r
complete -c fci -n "__fish_fci_using_subcommand smoke" -l timeout -d 'Kill the guest after this long (FAILED: it did not finish booting and checking): seconds, or 90s, 5m, 1h' -r
complete -c fci -n "__fish_fci_using_subcommand smoke" -s m -l manifest -d 'Input manifest (\'-\' for stdin)' -r -F
complete -c fci -n "__fish_fci_using_subcommand smoke" -s o -l output -d 'Output manifest (\'-\' for stdout), written atomically' -r -F
complete -c fci -n "__fish_fci_using_subcommand smoke" -l namespace -d 'The namespace of the run\'s test names, messages and results (default fedora-ci.koji-build, or fci.yaml\'s ci.namespace); fixed by the run\'s first stage' -r
complete -c fci -n "__fish_fci_using_subcommand smoke" -l run-url -d 'The URL of the CI job running this stage (default: Jenkins\' BUILD_URL): the messages\' run.url and log links, the results\' ref_url' -r
complete -c fci -n "__fish_fci_using_subcommand smoke" -l artifacts-url -d 'The URL the workspace\'s files are published under: logs are linked below it (default: fci.yaml\'s ci.artifacts_url); fixed by the run\'s first stage' -r
complete -c fci -n "__fish_fci_using_subcommand smoke" -l signing-key -d 'The pipeline\'s ed25519 key (PKCS#8 PEM, as `openssl genpkey -algorithm ed25519` writes it) that signs the stage\'s attestations; without one they are written unsigned. The file is read, never recorded' -r -F
complete -c fci -n "__fish_fci_using_subcommand smoke" -l builder-id -d 'The builder id the attestations name (SLSA\'s runDetails.builder.id: who ran the work; default tag:fci,2026:builder/<host name>)' -r
complete -c fci -n "__fish_fci_using_subcommand smoke" -l workspace -d 'Workspace directory holding artifacts, logs, the cache and locks' -r -F
complete -c fci -n "__fish_fci_using_subcommand smoke" -l state -d 'The pipeline state shared between machines (known-good refs and package set, exclusions, image schedule, watch heads, waivers, the OSTree repository): a directory on a shared volume; else fci.yaml\'s `state:` (of --config, or of the fci.yaml the manifest names); else the one the workspace recorded; else state/ inside it' -r -F
complete -c fci -n "__fish_fci_using_subcommand smoke" -l no-cache -d 'Run even when the inputs match a recorded result'
complete -c fci -n "__fish_fci_using_subcommand smoke" -l force -d 'Run even when an earlier stage did not pass'
complete -c fci -n "__fish_fci_using_subcommand smoke" -s q -l quiet -d 'No progress or summaries on stderr (errors are still printed)'
complete -c fci -n "__fish_fci_using_subcommand smoke" -s v -l verbose -d 'Stream the stage\'s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked'
complete -c fci -n "__fish_fci_using_subcommand smoke" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c fci -n "__fish_fci_using_subcommand gating; and not __fish_seen_subcommand_from decide validate waive help" -l workspace -d 'Workspace directory holding artifacts, logs, the cache and locks' -r -F
complete -c fci -n "__fish_fci_using_subcommand gating; and not __fish_seen_subcommand_from decide validate waive help" -l state -d 'The pipeline state shared between machines (known-good refs and package set, exclusions, image schedule, watch heads, waivers, the OSTree repository): a directory on a shared volume; else fci.yaml\'s `state:` (of --config, or of the fci.yaml the manifest names); else the one the workspace recorded; else state/ inside it' -r -F
complete -c fci -n "__fish_fci_using_subcommand gating; and not __fish_seen_subcommand_from decide validate waive help" -s q -l quiet -d 'No progress or summaries on stderr (errors are still printed)'
complete -c fci -n "__fish_fci_using_subcommand gating; and not __fish_seen_subcommand_from decide validate waive help" -s v -l verbose -d 'Stream the stage\'s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked'
complete -c fci -n "__fish_fci_using_subcommand gating; and not __fish_seen_subcommand_from decide validate waive help" -s h -l help -d 'Print help'
complete -c fci -n "__fish_fci_using_subcommand gating; and not __fish_seen_subcommand_from decide validate waive help" -f -a "decide" -d 'Decide offline, as Greenwave does, from a gating.yaml, results and waivers; print the decision JSON'
complete -c fci -n "__fish_fci_using_subcommand gating; and not __fish_seen_subcommand_from decide validate waive help" -f -a "validate" -d 'Check a gating.yaml alone, as Greenwave\'s validate-gating-yaml does; print {"message": ...}'
complete -c fci -n "__fish_fci_using_subcommand gating; and not __fish_seen_subcommand_from decide validate waive help" -f -a "waive" -d 'Waive (or with --revoke, unwaive) a test case for a subject, in the workspace, for every later decision there, and with --waiverdb-url in WaiverDB; print the waiver'
complete -c fci -n "__fish_fci_using_subcommand gating; and not __fish_seen_subcommand_from decide validate waive help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c fci -n "__fish_fci_using_subcommand gating; and __fish_seen_subcommand_from decide" -l gating -d 'The package\'s gating.yaml (Greenwave\'s remote policy format)' -r -F
complete -c fci -n "__fish_fci_using_subcommand gating; and __fish_seen_subcommand_from decide" -l results -d 'ResultsDB results: a JSON list of POST bodies or `GET /results` items, or a whole `GET /results` answer (any order: they are taken by submit time and id)' -r -F
complete -c fci -n "__fish_fci_using_subcommand gating; and __fish_seen_subcommand_from decide" -l waivers -d 'WaiverDB waivers as a JSON list (any order: they are taken by timestamp and id), or a whole `GET /waivers/` answer' -r -F
complete -c fci -n "__fish_fci_using_subcommand gating; and __fish_seen_subcommand_from decide" -l decision-context -d 'The gating point(s) to decide for (repeatable), e.g. bodhi_update_push_stable' -r
complete -c fci -n "__fish_fci_using_subcommand gating; and __fish_seen_subcommand_from decide" -l product-version -d 'The product version, e.g. fedora-41' -r
complete -c fci -n "__fish_fci_using_subcommand gating; and __fish_seen_subcommand_from decide" -l subject-type -d 'The subject\'s type' -r
complete -c fci -n "__fish_fci_using_subcommand gating; and __fish_seen_subcommand_from decide" -l subject-identifier -d 'The subject, e.g. an NVR for koji_build' -r
complete -c fci -n "__fish_fci_using_subcommand gating; and __fish_seen_subcommand_from decide" -l waiverdb-url -d 'WaiverDB (its root or /api/v1.0): waivers are posted there (spooled when it cannot be reached) and decisions read the subject\'s waivers from it' -r
complete -c fci -n "__fish_fci_using_subcommand gating; and __fish_seen_subcommand_from decide" -l waiverdb-token-file -d 'A file holding the WaiverDB token (`user:password` for HTTP Basic); or set FCI_WAIVERDB_TOKEN. Never printed or recorded' -r -F
complete -c fci -n "__fish_fci_using_subcommand gating; and __fish_seen_subcommand_from decide" -l workspace -d 'Workspace directory holding artifacts, logs, the cache and locks' -r -F
complete -c fci -n "__fish_fci_using_subcommand gating; and __fish_seen_subcommand_from decide" -l state -d 'The pipeline state shared between machines (known-good refs and package set, exclusions, image schedule, watch heads, waivers, the OSTree repository): a directory on a shared volume; else fci.yaml\'s `state:` (of --config, or of the fci.yaml the manifest names); else the one the workspace recorded; else state/ inside it' -r -F
complete -c fci -n "__fish_fci_using_subcommand gating; and __fish_seen_subcommand_from decide" -s q -l quiet -d 'No progress or summaries on stderr (errors are still printed)'
complete -c fci -n "__fish_fci_using_subcommand gating; and __fish_seen_subcommand_from decide" -s v -l verbose -d 'Stream the stage\'s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked'
complete -c fci -n "__fish_fci_using_subcommand gating; and __fish_seen_subcommand_from decide" -s h -l help -d 'Print help'
complete -c fci -n "__fish_fci_using_subcommand gating; and __fish_seen_subcommand_from validate" -l gating -d 'The gating.yaml to check' -r -F
complete -c fci -n "__fish_fci_using_subcommand gating; and __fish_seen_subcommand_from validate" -l workspace -d 'Workspace directory holding artifacts, logs, the cache and locks' -r -F
complete -c fci -n "__fish_fci_using_subcommand gating; and __fish_seen_subcommand_from validate" -l state -d 'The pipeline state shared between machines (known-good refs and package set, exclusions, image schedule, watch heads, waivers, the OSTree repository): a directory on a shared volume; else fci.yaml\'s `state:` (of --config, or of the fci.yaml the manifest names); else the one the workspace recorded; else state/ inside it' -r -F
complete -c fci -n "__fish_fci_using_subcommand gating; and __fish_seen_subcommand_from validate" -s q -l quiet -d 'No progress or summaries on stderr (errors are still printed)'
complete -c fci -n "__fish_fci_using_subcommand gating; and __fish_seen_subcommand_from validate" -s v -l verbose -d 'Stream the stage\'s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked'
complete -c fci -n "__fish_fci_using_subcommand gating; and __fish_seen_subcommand_from validate" -s h -l help -d 'Print help'
complete -c fci -n "__fish_fci_using_subcommand gating; and __fish_seen_subcommand_from waive" -l comment -d 'Why (WaiverDB requires it)' -r
complete -c fci -n "__fish_fci_using_subcommand gating; and __fish_seen_subcommand_from waive" -l scenario -d 'Only this scenario' -r
complete -c fci -n "__fish_fci_using_subcommand gating; and __fish_seen_subcommand_from waive" -l username -d 'Who waives (default $USER; sent to WaiverDB as `username`, a proxy request, only when given)' -r
complete -c fci -n "__fish_fci_using_subcommand gating; and __fish_seen_subcommand_from waive" -l gating -d 'The package\'s gating.yaml: the test cases it requires are known test cases too' -r -F
complete -c fci -n "__fish_fci_using_subcommand gating; and __fish_seen_subcommand_from waive" -l resultsdb-url -d 'A ResultsDB (its root or /api/v2.0) whose results for the subject are known test cases too' -r
complete -c fci -n "__fish_fci_using_subcommand gating; and __fish_seen_subcommand_from waive" -l product-version -d 'The product version, e.g. fedora-41' -r
complete -c fci -n "__fish_fci_using_subcommand gating; and __fish_seen_subcommand_from waive" -l subject-type -d 'The subject\'s type' -r
complete -c fci -n "__fish_fci_using_subcommand gating; and __fish_seen_subcommand_from waive" -l subject-identifier -d 'The subject, e.g. an NVR for koji_build' -r
complete -c fci -n "__fish_fci_using_subcommand gating; and __fish_seen_subcommand_from waive" -l waiverdb-url -d 'WaiverDB (its root or /api/v1.0): waivers are posted there (spooled when it cannot be reached) and decisions read the subject\'s waivers from it' -r
complete -c fci -n "__fish_fci_using_subcommand gating; and __fish_seen_subcommand_from waive" -l waiverdb-token-file -d 'A file holding the WaiverDB token (`user:password` for HTTP Basic); or set FCI_WAIVERDB_TOKEN. Never printed or recorded' -r -F
complete -c fci -n "__fish_fci_using_subcommand gating; and __fish_seen_subcommand_from waive" -l workspace -d 'Workspace directory holding artifacts, logs, the cache and locks' -r -F
complete -c fci -n "__fish_fci_using_subcommand gating; and __fish_seen_subcommand_from waive" -l state -d 'The pipeline state shared between machines (known-good refs and package set, exclusions, image schedule, watch heads, waivers, the OSTree repository): a directory on a shared volume; else fci.yaml\'s `state:` (of --config, or of the fci.yaml the manifest names); else the one the workspace recorded; else state/ inside it' -r -F
complete -c fci -n "__fish_fci_using_subcommand gating; and __fish_seen_subcommand_from waive" -l revoke -d 'Record `waived: false`, revoking earlier waivers'
complete -c fci -n "__fish_fci_using_subcommand gating; and __fish_seen_subcommand_from waive" -l force -d 'Store the waiver even for a test case no policy requires and no result has'
complete -c fci -n "__fish_fci_using_subcommand gating; and __fish_seen_subcommand_from waive" -s q -l quiet -d 'No progress or summaries on stderr (errors are still printed)'
complete -c fci -n "__fish_fci_using_subcommand gating; and __fish_seen_subcommand_from waive" -s v -l verbose -d 'Stream the stage\'s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked'
complete -c fci -n "__fish_fci_using_subcommand gating; and __fish_seen_subcommand_from waive" -s h -l help -d 'Print help'
complete -c fci -n "__fish_fci_using_subcommand gating; and __fish_seen_subcommand_from help" -f -a "decide" -d 'Decide offline, as Greenwave does, from a gating.yaml, results and waivers; print the decision JSON'
complete -c fci -n "__fish_fci_using_subcommand gating; and __fish_seen_subcommand_from help" -f -a "validate" -d 'Check a gating.yaml alone, as Greenwave\'s validate-gating-yaml does; print {"message": ...}'
complete -c fci -n "__fish_fci_using_subcommand gating; and __fish_seen_subcommand_from help" -f -a "waive" -d 'Waive (or with --revoke, unwaive) a test case for a subject, in the workspace, for every later decision there, and with --waiverdb-url in WaiverDB; print the waiver'
complete -c fci -n "__fish_fci_using_subcommand gating; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c fci -n "__fish_fci_using_subcommand base; and not __fish_seen_subcommand_from init help" -l workspace -d 'Workspace directory holding artifacts, logs, the cache and locks' -r -F
complete -c fci -n "__fish_fci_using_subcommand base; and not __fish_seen_subcommand_from init help" -l state -d 'The pipeline state shared between machines (known-good refs and package set, exclusions, image schedule, watch heads, waivers, the OSTree repository): a directory on a shared volume; else fci.yaml\'s `state:` (of --config, or of the fci.yaml the manifest names); else the one the workspace recorded; else state/ inside it' -r -F
complete -c fci -n "__fish_fci_using_subcommand base; and not __fish_seen_subcommand_from init help" -s q -l quiet -d 'No progress or summaries on stderr (errors are still printed)'
complete -c fci -n "__fish_fci_using_subcommand base; and not __fish_seen_subcommand_from init help" -s v -l verbose -d 'Stream the stage\'s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked'
complete -c fci -n "__fish_fci_using_subcommand base; and not __fish_seen_subcommand_from init help" -s h -l help -d 'Print help'
complete -c fci -n "__fish_fci_using_subcommand base; and not __fish_seen_subcommand_from init help" -f -a "init" -d 'Commit a tree (a directory, or a tarball) as a branch\'s first known-good base; print its checksum'
complete -c fci -n "__fish_fci_using_subcommand base; and not __fish_seen_subcommand_from init help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c fci -n "__fish_fci_using_subcommand base; and __fish_seen_subcommand_from init" -l branch -d 'The dist-git branch whose base it is: its ref is fci/<BRANCH>/known-good' -r
complete -c fci -n "__fish_fci_using_subcommand base; and __fish_seen_subcommand_from init" -l ostree-repo -d 'A shared OSTree repository (absolute path) for this workspace\'s pipeline, as for `fci compose` (env FCI_OSTREE_REPO; empty means unset)' -r -F
complete -c fci -n "__fish_fci_using_subcommand base; and __fish_seen_subcommand_from init" -l workspace -d 'Workspace directory holding artifacts, logs, the cache and locks' -r -F
complete -c fci -n "__fish_fci_using_subcommand base; and __fish_seen_subcommand_from init" -l state -d 'The pipeline state shared between machines (known-good refs and package set, exclusions, image schedule, watch heads, waivers, the OSTree repository): a directory on a shared volume; else fci.yaml\'s `state:` (of --config, or of the fci.yaml the manifest names); else the one the workspace recorded; else state/ inside it' -r -F
complete -c fci -n "__fish_fci_using_subcommand base; and __fish_seen_subcommand_from init" -s q -l quiet -d 'No progress or summaries on stderr (errors are still printed)'
complete -c fci -n "__fish_fci_using_subcommand base; and __fish_seen_subcommand_from init" -s v -l verbose -d 'Stream the stage\'s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked'
complete -c fci -n "__fish_fci_using_subcommand base; and __fish_seen_subcommand_from init" -s h -l help -d 'Print help'
complete -c fci -n "__fish_fci_using_subcommand base; and __fish_seen_subcommand_from help" -f -a "init" -d 'Commit a tree (a directory, or a tarball) as a branch\'s first known-good base; print its checksum'
complete -c fci -n "__fish_fci_using_subcommand base; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c fci -n "__fish_fci_using_subcommand bundle" -s m -l manifest -d 'The run\'s manifest (`-` for stdin)' -r -F
complete -c fci -n "__fish_fci_using_subcommand bundle" -s o -l output -d 'The bundle to write (a tar file)' -r -F
complete -c fci -n "__fish_fci_using_subcommand bundle" -l workspace -d 'Workspace directory holding artifacts, logs, the cache and locks' -r -F
complete -c fci -n "__fish_fci_using_subcommand bundle" -l state -d 'The pipeline state shared between machines (known-good refs and package set, exclusions, image schedule, watch heads, waivers, the OSTree repository): a directory on a shared volume; else fci.yaml\'s `state:` (of --config, or of the fci.yaml the manifest names); else the one the workspace recorded; else state/ inside it' -r -F
complete -c fci -n "__fish_fci_using_subcommand bundle" -s q -l quiet -d 'No progress or summaries on stderr (errors are still printed)'
complete -c fci -n "__fish_fci_using_subcommand bundle" -s v -l verbose -d 'Stream the stage\'s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked'
complete -c fci -n "__fish_fci_using_subcommand bundle" -s h -l help -d 'Print help'
complete -c fci -n "__fish_fci_using_subcommand unbundle" -s o -l output -d 'The manifest to write, its paths as this workspace knows them (`-` for stdout)' -r -F
complete -c fci -n "__fish_fci_using_subcommand unbundle" -l workspace -d 'Workspace directory holding artifacts, logs, the cache and locks' -r -F
complete -c fci -n "__fish_fci_using_subcommand unbundle" -l state -d 'The pipeline state shared between machines (known-good refs and package set, exclusions, image schedule, watch heads, waivers, the OSTree repository): a directory on a shared volume; else fci.yaml\'s `state:` (of --config, or of the fci.yaml the manifest names); else the one the workspace recorded; else state/ inside it' -r -F
complete -c fci -n "__fish_fci_using_subcommand unbundle" -s q -l quiet -d 'No progress or summaries on stderr (errors are still printed)'
complete -c fci -n "__fish_fci_using_subcommand unbundle" -s v -l verbose -d 'Stream the stage\'s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked'
complete -c fci -n "__fish_fci_using_subcommand unbundle" -s h -l help -d 'Print help'
complete -c fci -n "__fish_fci_using_subcommand fsck" -s m -l manifest -d 'A run\'s manifest to check too: it parses and each artifact it names verifies (repeat for several)' -r -F
complete -c fci -n "__fish_fci_using_subcommand fsck" -l workspace -d 'Workspace directory holding artifacts, logs, the cache and locks' -r -F
complete -c fci -n "__fish_fci_using_subcommand fsck" -l state -d 'The pipeline state shared between machines (known-good refs and package set, exclusions, image schedule, watch heads, waivers, the OSTree repository): a directory on a shared volume; else fci.yaml\'s `state:` (of --config, or of the fci.yaml the manifest names); else the one the workspace recorded; else state/ inside it' -r -F
complete -c fci -n "__fish_fci_using_subcommand fsck" -l no-ostree -d 'Skip `ostree fsck` of the OSTree repository (slow on a large repository); its known-good refs are still checked'
complete -c fci -n "__fish_fci_using_subcommand fsck" -l repair -d 'Remove what crashes left (debris) and complete interrupted promotions; damage is left as it is'
complete -c fci -n "__fish_fci_using_subcommand fsck" -s q -l quiet -d 'No progress or summaries on stderr (errors are still printed)'
complete -c fci -n "__fish_fci_using_subcommand fsck" -s v -l verbose -d 'Stream the stage\'s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked'
complete -c fci -n "__fish_fci_using_subcommand fsck" -s h -l help -d 'Print help'
complete -c fci -n "__fish_fci_using_subcommand gc" -l config -d 'The pipeline\'s fci.yaml, whose `gc:` section is the policy (the flags override it)' -r -F
complete -c fci -n "__fish_fci_using_subcommand gc" -l keep-runs -d 'Keep at most the N newest runs (besides the known-good\'s, those queued for a retest and those within the grace period)' -r
complete -c fci -n "__fish_fci_using_subcommand gc" -l max-age -d 'Remove runs whose last record is older than this (14d, 36h)' -r
complete -c fci -n "__fish_fci_using_subcommand gc" -l max-size -d 'Drop the oldest runs until the workspace and state take at most this (20G, 500M)' -r
complete -c fci -n "__fish_fci_using_subcommand gc" -l grace -d 'Always keep a run whose last record is younger than this: its next stage may be about to start (default 1h)' -r
complete -c fci -n "__fish_fci_using_subcommand gc" -l ostree-depth -d 'Commits of each kept OSTree ref\'s history to keep (default 10)' -r
complete -c fci -n "__fish_fci_using_subcommand gc" -l workspace -d 'Workspace directory holding artifacts, logs, the cache and locks' -r -F
complete -c fci -n "__fish_fci_using_subcommand gc" -l state -d 'The pipeline state shared between machines (known-good refs and package set, exclusions, image schedule, watch heads, waivers, the OSTree repository): a directory on a shared volume; else fci.yaml\'s `state:` (of --config, or of the fci.yaml the manifest names); else the one the workspace recorded; else state/ inside it' -r -F
complete -c fci -n "__fish_fci_using_subcommand gc" -l dry-run -d 'List what would be removed, with its size, and remove nothing'
complete -c fci -n "__fish_fci_using_subcommand gc" -l json -d 'Print the summary as JSON on stdout too'
complete -c fci -n "__fish_fci_using_subcommand gc" -s q -l quiet -d 'No progress or summaries on stderr (errors are still printed)'
complete -c fci -n "__fish_fci_using_subcommand gc" -s v -l verbose -d 'Stream the stage\'s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked'
complete -c fci -n "__fish_fci_using_subcommand gc" -s h -l help -d 'Print help'
complete -c fci -n "__fish_fci_using_subcommand verify" -s m -l manifest -d 'The run\'s manifest: its attestations are the evidence (default: every attestation in the workspace\'s object store)' -r -F
complete -c fci -n "__fish_fci_using_subcommand verify" -l key -d 'A trusted public key (SPKI PEM, as `openssl pkey -pubout` writes it); repeat for several' -r -F
complete -c fci -n "__fish_fci_using_subcommand verify" -l require -d 'The policy\'s rules, comma-separated: check, test, integrate, conform, smoke, gate (or none)' -r
complete -c fci -n "__fish_fci_using_subcommand verify" -l workspace -d 'Workspace directory holding artifacts, logs, the cache and locks' -r -F
complete -c fci -n "__fish_fci_using_subcommand verify" -l state -d 'The pipeline state shared between machines (known-good refs and package set, exclusions, image schedule, watch heads, waivers, the OSTree repository): a directory on a shared volume; else fci.yaml\'s `state:` (of --config, or of the fci.yaml the manifest names); else the one the workspace recorded; else state/ inside it' -r -F
complete -c fci -n "__fish_fci_using_subcommand verify" -l json -d 'Print the result as JSON instead of a tree'
complete -c fci -n "__fish_fci_using_subcommand verify" -s q -l quiet -d 'No progress or summaries on stderr (errors are still printed)'
complete -c fci -n "__fish_fci_using_subcommand verify" -s v -l verbose -d 'Stream the stage\'s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked'
complete -c fci -n "__fish_fci_using_subcommand verify" -s h -l help -d 'Print help'
complete -c fci -n "__fish_fci_using_subcommand completions" -l workspace -d 'Workspace directory holding artifacts, logs, the cache and locks' -r -F
complete -c fci -n "__fish_fci_using_subcommand completions" -l state -d 'The pipeline state shared between machines (known-good refs and package set, exclusions, image schedule, watch heads, waivers, the OSTree repository): a directory on a shared volume; else fci.yaml\'s `state:` (of --config, or of the fci.yaml the manifest names); else the one the workspace recorded; else state/ inside it' -r -F
complete -c fci -n "__fish_fci_using_subcommand completions" -s q -l quiet -d 'No progress or summaries on stderr (errors are still printed)'
complete -c fci -n "__fish_fci_using_subcommand completions" -s v -l verbose -d 'Stream the stage\'s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked'
complete -c fci -n "__fish_fci_using_subcommand completions" -s h -l help -d 'Print help'
complete -c fci -n "__fish_fci_using_subcommand compose" -l branch -d 'The dist-git branch whose known-good base to compose on (default: the subject\'s)' -r
complete -c fci -n "__fish_fci_using_subcommand compose" -l ostree-repo -d 'A shared OSTree repository (absolute path) for this workspace\'s pipeline, instead of the workspace\'s own `ostree/repo`; recorded in the workspace, so later stages find it (env FCI_OSTREE_REPO; empty means unset)' -r -F
complete -c fci -n "__fish_fci_using_subcommand compose" -l timeout -d 'Kill the compose after this long (ERROR): seconds, or 90m, 4h, 1h30m; 0 for no limit' -r
complete -c fci -n "__fish_fci_using_subcommand compose" -l max-pids -d 'Most processes and threads package code may run at once (default 1024, or fci.yaml\'s limits.pids); past it the stage is FAILED' -r
complete -c fci -n "__fish_fci_using_subcommand compose" -l max-memory -d 'Most memory package code may use, all its processes together (default 4GiB, or fci.yaml\'s limits.memory); past it the stage is FAILED' -r
complete -c fci -n "__fish_fci_using_subcommand compose" -l max-scratch -d 'Most scratch space package code may fill: its build or test directory and its tmpfs mounts; also the most the change\'s RPMs may write when installed (test, compose) (default 8GiB, or fci.yaml\'s limits.scratch); past it the stage is FAILED' -r
complete -c fci -n "__fish_fci_using_subcommand compose" -s m -l manifest -d 'Input manifest (\'-\' for stdin)' -r -F
complete -c fci -n "__fish_fci_using_subcommand compose" -s o -l output -d 'Output manifest (\'-\' for stdout), written atomically' -r -F
complete -c fci -n "__fish_fci_using_subcommand compose" -l namespace -d 'The namespace of the run\'s test names, messages and results (default fedora-ci.koji-build, or fci.yaml\'s ci.namespace); fixed by the run\'s first stage' -r
complete -c fci -n "__fish_fci_using_subcommand compose" -l run-url -d 'The URL of the CI job running this stage (default: Jenkins\' BUILD_URL): the messages\' run.url and log links, the results\' ref_url' -r
complete -c fci -n "__fish_fci_using_subcommand compose" -l artifacts-url -d 'The URL the workspace\'s files are published under: logs are linked below it (default: fci.yaml\'s ci.artifacts_url); fixed by the run\'s first stage' -r
complete -c fci -n "__fish_fci_using_subcommand compose" -l signing-key -d 'The pipeline\'s ed25519 key (PKCS#8 PEM, as `openssl genpkey -algorithm ed25519` writes it) that signs the stage\'s attestations; without one they are written unsigned. The file is read, never recorded' -r -F
complete -c fci -n "__fish_fci_using_subcommand compose" -l builder-id -d 'The builder id the attestations name (SLSA\'s runDetails.builder.id: who ran the work; default tag:fci,2026:builder/<host name>)' -r
complete -c fci -n "__fish_fci_using_subcommand compose" -l workspace -d 'Workspace directory holding artifacts, logs, the cache and locks' -r -F
complete -c fci -n "__fish_fci_using_subcommand compose" -l state -d 'The pipeline state shared between machines (known-good refs and package set, exclusions, image schedule, watch heads, waivers, the OSTree repository): a directory on a shared volume; else fci.yaml\'s `state:` (of --config, or of the fci.yaml the manifest names); else the one the workspace recorded; else state/ inside it' -r -F
complete -c fci -n "__fish_fci_using_subcommand compose" -l no-cache -d 'Run even when the inputs match a recorded result'
complete -c fci -n "__fish_fci_using_subcommand compose" -l force -d 'Run even when an earlier stage did not pass'
complete -c fci -n "__fish_fci_using_subcommand compose" -s q -l quiet -d 'No progress or summaries on stderr (errors are still printed)'
complete -c fci -n "__fish_fci_using_subcommand compose" -s v -l verbose -d 'Stream the stage\'s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked'
complete -c fci -n "__fish_fci_using_subcommand compose" -s h -l help -d 'Print help'
complete -c fci -n "__fish_fci_using_subcommand report" -l gating -d 'The package\'s gating.yaml to evaluate (Greenwave\'s remote policy format)' -r -F
complete -c fci -n "__fish_fci_using_subcommand report" -l waivers -d 'WaiverDB waivers as a JSON list, oldest first, besides the workspace\'s own (from `fci gating waive`)' -r -F
complete -c fci -n "__fish_fci_using_subcommand report" -l decision-context -d 'The gating point(s) to decide for (repeatable), e.g. bodhi_update_push_stable' -r
complete -c fci -n "__fish_fci_using_subcommand report" -l product-version -d 'The product version, e.g. fedora-41 (default from the manifest\'s branch)' -r
complete -c fci -n "__fish_fci_using_subcommand report" -l subject-type -d 'The subject\'s type' -r
complete -c fci -n "__fish_fci_using_subcommand report" -l subject-identifier -d 'The subject, e.g. an NVR for koji_build (default: the manifest\'s source package NVR)' -r
complete -c fci -n "__fish_fci_using_subcommand report" -l require-stages -d 'With --promote: the stages the pipeline runs for every change (comma-separated, e.g. build,test,compose,integrate,image,smoke): a run without a record of each (a stage killed, timed out by the scheduler or never started) is neither promoted nor excluded but ERROR, to be rerun: its missing results are not the package\'s failure' -r
complete -c fci -n "__fish_fci_using_subcommand report" -l resultsdb-url -d 'Also post the results to this ResultsDB (its root or /api/v2.0, no query); what cannot be delivered is spooled in the workspace and delivered by the next report' -r
complete -c fci -n "__fish_fci_using_subcommand report" -l amqp-url -d 'Also publish the messages to this AMQP broker (amqp://user:password@host:port/vhost), as fedora-messaging does; unconfirmed ones are spooled and sent by the next report' -r
complete -c fci -n "__fish_fci_using_subcommand report" -l resultsdb-jobs -d 'How many results are posted at once' -r
complete -c fci -n "__fish_fci_using_subcommand report" -l resultsdb-token-file -d 'A file holding the ResultsDB token (`user:password` for HTTP Basic); or set FCI_RESULTSDB_TOKEN. Never printed or recorded' -r -F
complete -c fci -n "__fish_fci_using_subcommand report" -l html -d 'Also write the run, with the gating decision, as one self-contained HTML page' -r -F
complete -c fci -n "__fish_fci_using_subcommand report" -l junit -d 'Also write the run\'s results as a JUnit report (for Jenkins\' junit step): a test suite per stage, a test case per result' -r -F
complete -c fci -n "__fish_fci_using_subcommand report" -l waiverdb-url -d 'WaiverDB (its root or /api/v1.0): waivers are posted there (spooled when it cannot be reached) and decisions read the subject\'s waivers from it' -r
complete -c fci -n "__fish_fci_using_subcommand report" -l waiverdb-token-file -d 'A file holding the WaiverDB token (`user:password` for HTTP Basic); or set FCI_WAIVERDB_TOKEN. Never printed or recorded' -r -F
complete -c fci -n "__fish_fci_using_subcommand report" -s m -l manifest -d 'Input manifest (\'-\' for stdin)' -r -F
complete -c fci -n "__fish_fci_using_subcommand report" -s o -l output -d 'Output manifest (\'-\' for stdout), written atomically' -r -F
complete -c fci -n "__fish_fci_using_subcommand report" -l namespace -d 'The namespace of the run\'s test names, messages and results (default fedora-ci.koji-build, or fci.yaml\'s ci.namespace); fixed by the run\'s first stage' -r
complete -c fci -n "__fish_fci_using_subcommand report" -l run-url -d 'The URL of the CI job running this stage (default: Jenkins\' BUILD_URL): the messages\' run.url and log links, the results\' ref_url' -r
complete -c fci -n "__fish_fci_using_subcommand report" -l artifacts-url -d 'The URL the workspace\'s files are published under: logs are linked below it (default: fci.yaml\'s ci.artifacts_url); fixed by the run\'s first stage' -r
complete -c fci -n "__fish_fci_using_subcommand report" -l signing-key -d 'The pipeline\'s ed25519 key (PKCS#8 PEM, as `openssl genpkey -algorithm ed25519` writes it) that signs the stage\'s attestations; without one they are written unsigned. The file is read, never recorded' -r -F
complete -c fci -n "__fish_fci_using_subcommand report" -l builder-id -d 'The builder id the attestations name (SLSA\'s runDetails.builder.id: who ran the work; default tag:fci,2026:builder/<host name>)' -r
complete -c fci -n "__fish_fci_using_subcommand report" -l workspace -d 'Workspace directory holding artifacts, logs, the cache and locks' -r -F
complete -c fci -n "__fish_fci_using_subcommand report" -l state -d 'The pipeline state shared between machines (known-good refs and package set, exclusions, image schedule, watch heads, waivers, the OSTree repository): a directory on a shared volume; else fci.yaml\'s `state:` (of --config, or of the fci.yaml the manifest names); else the one the workspace recorded; else state/ inside it' -r -F
complete -c fci -n "__fish_fci_using_subcommand report" -l promote -d 'With --gating: decided on this run\'s own checked records only; a satisfied decision makes the change the branch\'s known-good base (its composed commit, when there is one); an unsatisfied one excludes the change'
complete -c fci -n "__fish_fci_using_subcommand report" -l summary -d 'Print the run\'s table (stage, outcome, seconds, failing tests or log) even with --quiet'
complete -c fci -n "__fish_fci_using_subcommand report" -l no-cache -d 'Run even when the inputs match a recorded result'
complete -c fci -n "__fish_fci_using_subcommand report" -l force -d 'Run even when an earlier stage did not pass'
complete -c fci -n "__fish_fci_using_subcommand report" -s q -l quiet -d 'No progress or summaries on stderr (errors are still printed)'
complete -c fci -n "__fish_fci_using_subcommand report" -s v -l verbose -d 'Stream the stage\'s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked'
complete -c fci -n "__fish_fci_using_subcommand report" -s h -l help -d 'Print help'
complete -c fci -n "__fish_fci_using_subcommand help; and not __fish_seen_subcommand_from watch build test integrate conform image smoke gating base bundle unbundle fsck gc verify completions compose report help" -f -a "watch" -d 'Watch the monitored packages\' dist-git branches; one manifest per new commit'
complete -c fci -n "__fish_fci_using_subcommand help; and not __fish_seen_subcommand_from watch build test integrate conform image smoke gating base bundle unbundle fsck gc verify completions compose report help" -f -a "build" -d 'Build the SRPM and binary RPMs of a dist-git checkout (%check runs)'
complete -c fci -n "__fish_fci_using_subcommand help; and not __fish_seen_subcommand_from watch build test integrate conform image smoke gating base bundle unbundle fsck gc verify completions compose report help" -f -a "test" -d 'Run the package\'s STI and tmt tests against the RPMs just built'
complete -c fci -n "__fish_fci_using_subcommand help; and not __fish_seen_subcommand_from watch build test integrate conform image smoke gating base bundle unbundle fsck gc verify completions compose report help" -f -a "integrate" -d 'Run the pipeline\'s OS-level tests against the composed commit'
complete -c fci -n "__fish_fci_using_subcommand help; and not __fish_seen_subcommand_from watch build test integrate conform image smoke gating base bundle unbundle fsck gc verify completions compose report help" -f -a "conform" -d 'Install or reach a cluster running the composed tree and run the Kubernetes conformance suite'
complete -c fci -n "__fish_fci_using_subcommand help; and not __fish_seen_subcommand_from watch build test integrate conform image smoke gating base bundle unbundle fsck gc verify completions compose report help" -f -a "image" -d 'Make a disk image (qcow2 or raw) of an OSTree deployment of the composed commit'
complete -c fci -n "__fish_fci_using_subcommand help; and not __fish_seen_subcommand_from watch build test integrate conform image smoke gating base bundle unbundle fsck gc verify completions compose report help" -f -a "smoke" -d 'Boot the image in qemu and check that the composed commit runs'
complete -c fci -n "__fish_fci_using_subcommand help; and not __fish_seen_subcommand_from watch build test integrate conform image smoke gating base bundle unbundle fsck gc verify completions compose report help" -f -a "gating" -d 'Gating without a run: decide from files, check a gating.yaml, waive a test case'
complete -c fci -n "__fish_fci_using_subcommand help; and not __fish_seen_subcommand_from watch build test integrate conform image smoke gating base bundle unbundle fsck gc verify completions compose report help" -f -a "base" -d 'The known-good OSTree base composes build on: make a branch\'s first one'
complete -c fci -n "__fish_fci_using_subcommand help; and not __fish_seen_subcommand_from watch build test integrate conform image smoke gating base bundle unbundle fsck gc verify completions compose report help" -f -a "bundle" -d 'Write a run\'s manifest and exactly the artifacts and logs it references to one file'
complete -c fci -n "__fish_fci_using_subcommand help; and not __fish_seen_subcommand_from watch build test integrate conform image smoke gating base bundle unbundle fsck gc verify completions compose report help" -f -a "unbundle" -d 'Bring a bundle into this workspace (every digest verified first) and write its manifest'
complete -c fci -n "__fish_fci_using_subcommand help; and not __fish_seen_subcommand_from watch build test integrate conform image smoke gating base bundle unbundle fsck gc verify completions compose report help" -f -a "fsck" -d 'Check the workspace and the pipeline state for damage (0 clean, 1 damage found)'
complete -c fci -n "__fish_fci_using_subcommand help; and not __fish_seen_subcommand_from watch build test integrate conform image smoke gating base bundle unbundle fsck gc verify completions compose report help" -f -a "gc" -d 'Remove what no recent run, known-good base or queued retest needs (objects, cache, old records, OSTree refs)'
complete -c fci -n "__fish_fci_using_subcommand help; and not __fish_seen_subcommand_from watch build test integrate conform image smoke gating base bundle unbundle fsck gc verify completions compose report help" -f -a "verify" -d 'Check an image\'s, commit\'s or RPM\'s signed chain back to its dist-git commit, and the policy'
complete -c fci -n "__fish_fci_using_subcommand help; and not __fish_seen_subcommand_from watch build test integrate conform image smoke gating base bundle unbundle fsck gc verify completions compose report help" -f -a "completions" -d 'Print shell completions (bash, zsh, fish, elvish, powershell)'
complete -c fci -n "__fish_fci_using_subcommand help; and not __fish_seen_subcommand_from watch build test integrate conform image smoke gating base bundle unbundle fsck gc verify completions compose report help" -f -a "compose" -d 'Commit the known-good OSTree base plus the change\'s RPMs (only when build and test passed)'
complete -c fci -n "__fish_fci_using_subcommand help; and not __fish_seen_subcommand_from watch build test integrate conform image smoke gating base bundle unbundle fsck gc verify completions compose report help" -f -a "report" -d 'Record the run\'s results and decide its gating (with --gating; --promote acts on it)'
complete -c fci -n "__fish_fci_using_subcommand help; and not __fish_seen_subcommand_from watch build test integrate conform image smoke gating base bundle unbundle fsck gc verify completions compose report help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c fci -n "__fish_fci_using_subcommand help; and __fish_seen_subcommand_from gating" -f -a "decide" -d 'Decide offline, as Greenwave does, from a gating.yaml, results and waivers; print the decision JSON'
complete -c fci -n "__fish_fci_using_subcommand help; and __fish_seen_subcommand_from gating" -f -a "validate" -d 'Check a gating.yaml alone, as Greenwave\'s validate-gating-yaml does; print {"message": ...}'
complete -c fci -n "__fish_fci_using_subcommand help; and __fish_seen_subcommand_from gating" -f -a "waive" -d 'Waive (or with --revoke, unwaive) a test case for a subject, in the workspace, for every later decision there, and with --waiverdb-url in WaiverDB; print the waiver'
complete -c fci -n "__fish_fci_using_subcommand help; and __fish_seen_subcommand_from base" -f -a "init" -d 'Commit a tree (a directory, or a tarball) as a branch\'s first known-good base; print its checksum'
