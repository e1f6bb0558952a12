
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'fci' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'fci'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'fci' {
            [CompletionResult]::new('--workspace', '--workspace', [CompletionResultType]::ParameterName, 'Workspace directory holding artifacts, logs, the cache and locks')
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'The pipeline state shared between machines (known-good refs and package set, exclusions, image schedule, watch heads, waivers, the OSTree repository): a directory on a shared volume; else fci.yaml''s `state:` (of --config, or of the fci.yaml the manifest names); else the one the workspace recorded; else state/ inside it')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'No progress or summaries on stderr (errors are still printed)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'No progress or summaries on stderr (errors are still printed)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Stream the stage''s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Stream the stage''s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('watch', 'watch', [CompletionResultType]::ParameterValue, 'Watch the monitored packages'' dist-git branches; one manifest per new commit')
            [CompletionResult]::new('build', 'build', [CompletionResultType]::ParameterValue, 'Build the SRPM and binary RPMs of a dist-git checkout (%check runs)')
            [CompletionResult]::new('test', 'test', [CompletionResultType]::ParameterValue, 'Run the package''s STI and tmt tests against the RPMs just built')
            [CompletionResult]::new('integrate', 'integrate', [CompletionResultType]::ParameterValue, 'Run the pipeline''s OS-level tests against the composed commit')
            [CompletionResult]::new('conform', 'conform', [CompletionResultType]::ParameterValue, 'Install or reach a cluster running the composed tree and run the Kubernetes conformance suite')
            [CompletionResult]::new('image', 'image', [CompletionResultType]::ParameterValue, 'Make a disk image (qcow2 or raw) of an OSTree deployment of the composed commit')
            [CompletionResult]::new('smoke', 'smoke', [CompletionResultType]::ParameterValue, 'Boot the image in qemu and check that the composed commit runs')
            [CompletionResult]::new('gating', 'gating', [CompletionResultType]::ParameterValue, 'Gating without a run: decide from files, check a gating.yaml, waive a test case')
            [CompletionResult]::new('base', 'base', [CompletionResultType]::ParameterValue, 'The known-good OSTree base composes build on: make a branch''s first one')
            [CompletionResult]::new('bundle', 'bundle', [CompletionResultType]::ParameterValue, 'Write a run''s manifest and exactly the artifacts and logs it references to one file')
            [CompletionResult]::new('unbundle', 'unbundle', [CompletionResultType]::ParameterValue, 'Bring a bundle into this workspace (every digest verified first) and write its manifest')
            [CompletionResult]::new('fsck', 'fsck', [CompletionResultType]::ParameterValue, 'Check the workspace and the pipeline state for damage (0 clean, 1 damage found)')
            [CompletionResult]::new('gc', 'gc', [CompletionResultType]::ParameterValue, 'Remove what no recent run, known-good base or queued retest needs (objects, cache, old records, OSTree refs)')
            [CompletionResult]::new('verify', 'verify', [CompletionResultType]::ParameterValue, 'Check an image''s, commit''s or RPM''s signed chain back to its dist-git commit, and the policy')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print shell completions (bash, zsh, fish, elvish, powershell)')
            [CompletionResult]::new('compose', 'compose', [CompletionResultType]::ParameterValue, 'Commit the known-good OSTree base plus the change''s RPMs (only when build and test passed)')
            [CompletionResult]::new('report', 'report', [CompletionResultType]::ParameterValue, 'Record the run''s results and decide its gating (with --gating; --promote acts on it)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'fci;watch' {
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'The pipeline''s configuration (monitored packages, dist-git, branches)')
            [CompletionResult]::new('--interval', '--interval', [CompletionResultType]::ParameterName, 'Poll again after this long, until stopped (seconds, or 5m, 1h, 1h30m); with --amqp-url, how often kept messages are tried again while the queue is idle (default 30s)')
            [CompletionResult]::new('--remote-timeout', '--remote-timeout', [CompletionResultType]::ParameterName, 'A remote dist-git that does not answer in this long is an ERROR for its package (seconds, or 90s, 5m)')
            [CompletionResult]::new('--amqp-url', '--amqp-url', [CompletionResultType]::ParameterName, 'Consume dist-git push messages (git.receive) from this AMQP broker')
            [CompletionResult]::new('--queue', '--queue', [CompletionResultType]::ParameterName, 'The broker queue to consume (declared durable, bound to amq.topic for #.git.receive)')
            [CompletionResult]::new('--message', '--message', [CompletionResultType]::ParameterName, 'Act on one git.receive message from a file (''-'' for stdin; at most 1 MiB)')
            [CompletionResult]::new('--output-dir', '--output-dir', [CompletionResultType]::ParameterName, 'Write each change''s manifest into DIR (default: one JSON manifest per line on stdout)')
            [CompletionResult]::new('--jobs', '--jobs', [CompletionResultType]::ParameterName, 'Remote repositories asked at once')
            [CompletionResult]::new('--workspace', '--workspace', [CompletionResultType]::ParameterName, 'Workspace directory holding artifacts, logs, the cache and locks')
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'The pipeline state shared between machines (known-good refs and package set, exclusions, image schedule, watch heads, waivers, the OSTree repository): a directory on a shared volume; else fci.yaml''s `state:` (of --config, or of the fci.yaml the manifest names); else the one the workspace recorded; else state/ inside it')
            [CompletionResult]::new('--once', '--once', [CompletionResultType]::ParameterName, 'Poll every repository once and exit (with --amqp-url: take what is queued, then exit)')
            [CompletionResult]::new('--emit-existing', '--emit-existing', [CompletionResultType]::ParameterName, 'On the first poll of a branch, emit its head instead of only recording it as seen')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'No progress or summaries on stderr (errors are still printed)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'No progress or summaries on stderr (errors are still printed)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Stream the stage''s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Stream the stage''s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'fci;build' {
            [CompletionResult]::new('--ref', '--ref', [CompletionResultType]::ParameterName, 'Git ref (branch, tag or commit) to build')
            [CompletionResult]::new('--lookaside', '--lookaside', [CompletionResultType]::ParameterName, 'Lookaside cache for the `sources` file: a directory or an http(s) URL')
            [CompletionResult]::new('--backend', '--backend', [CompletionResultType]::ParameterName, 'Build backend')
            [CompletionResult]::new('--mock-config', '--mock-config', [CompletionResultType]::ParameterName, 'mock configuration (mock -r)')
            [CompletionResult]::new('--dist', '--dist', [CompletionResultType]::ParameterName, '%{dist} tag, e.g. .fc41 (default: from the branch name)')
            [CompletionResult]::new('--branch', '--branch', [CompletionResultType]::ParameterName, 'Dist-git branch name, when the checkout does not tell (f41, epel9, c10s, rawhide)')
            [CompletionResult]::new('--rawhide-release', '--rawhide-release', [CompletionResultType]::ParameterName, 'The Fedora release number rawhide (and a `main` branch) builds for')
            [CompletionResult]::new('--spec', '--spec', [CompletionResultType]::ParameterName, 'The spec to build, relative to the checkout (default: its only .spec)')
            [CompletionResult]::new('-D', '-D ', [CompletionResultType]::ParameterName, 'Extra rpm macro definition: NAME=VALUE, or as rpm takes it, ''NAME BODY'' or ''NAME(OPTS) BODY'' (repeatable)')
            [CompletionResult]::new('--define', '--define', [CompletionResultType]::ParameterName, 'Extra rpm macro definition: NAME=VALUE, or as rpm takes it, ''NAME BODY'' or ''NAME(OPTS) BODY'' (repeatable)')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Kill the build (and a clone of a dist-git URL) after this long (ERROR): seconds, or 90m, 4h, 1h30m; 0 for no limit')
            [CompletionResult]::new('--max-pids', '--max-pids', [CompletionResultType]::ParameterName, 'Most processes and threads package code may run at once (default 1024, or fci.yaml''s limits.pids); past it the stage is FAILED')
            [CompletionResult]::new('--max-memory', '--max-memory', [CompletionResultType]::ParameterName, 'Most memory package code may use, all its processes together (default 4GiB, or fci.yaml''s limits.memory); past it the stage is FAILED')
            [CompletionResult]::new('--max-scratch', '--max-scratch', [CompletionResultType]::ParameterName, 'Most scratch space package code may fill: its build or test directory and its tmpfs mounts; also the most the change''s RPMs may write when installed (test, compose) (default 8GiB, or fci.yaml''s limits.scratch); past it the stage is FAILED')
            [CompletionResult]::new('-m', '-m', [CompletionResultType]::ParameterName, 'Input manifest (''-'' for stdin)')
            [CompletionResult]::new('--manifest', '--manifest', [CompletionResultType]::ParameterName, 'Input manifest (''-'' for stdin)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output manifest (''-'' for stdout), written atomically')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output manifest (''-'' for stdout), written atomically')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'The namespace of the run''s test names, messages and results (default fedora-ci.koji-build, or fci.yaml''s ci.namespace); fixed by the run''s first stage')
            [CompletionResult]::new('--run-url', '--run-url', [CompletionResultType]::ParameterName, 'The URL of the CI job running this stage (default: Jenkins'' BUILD_URL): the messages'' run.url and log links, the results'' ref_url')
            [CompletionResult]::new('--artifacts-url', '--artifacts-url', [CompletionResultType]::ParameterName, 'The URL the workspace''s files are published under: logs are linked below it (default: fci.yaml''s ci.artifacts_url); fixed by the run''s first stage')
            [CompletionResult]::new('--signing-key', '--signing-key', [CompletionResultType]::ParameterName, 'The pipeline''s ed25519 key (PKCS#8 PEM, as `openssl genpkey -algorithm ed25519` writes it) that signs the stage''s attestations; without one they are written unsigned. The file is read, never recorded')
            [CompletionResult]::new('--builder-id', '--builder-id', [CompletionResultType]::ParameterName, 'The builder id the attestations name (SLSA''s runDetails.builder.id: who ran the work; default tag:fci,2026:builder/<host name>)')
            [CompletionResult]::new('--workspace', '--workspace', [CompletionResultType]::ParameterName, 'Workspace directory holding artifacts, logs, the cache and locks')
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'The pipeline state shared between machines (known-good refs and package set, exclusions, image schedule, watch heads, waivers, the OSTree repository): a directory on a shared volume; else fci.yaml''s `state:` (of --config, or of the fci.yaml the manifest names); else the one the workspace recorded; else state/ inside it')
            [CompletionResult]::new('--nocheck', '--nocheck', [CompletionResultType]::ParameterName, 'Do not run %check (the build.check result is SKIPPED)')
            [CompletionResult]::new('--strict-builddeps', '--strict-builddeps', [CompletionResultType]::ParameterName, 'Fail (ERROR) instead of building with --nodeps when the host cannot satisfy BuildRequires')
            [CompletionResult]::new('--no-cache', '--no-cache', [CompletionResultType]::ParameterName, 'Run even when the inputs match a recorded result')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'Run even when an earlier stage did not pass')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'No progress or summaries on stderr (errors are still printed)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'No progress or summaries on stderr (errors are still printed)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Stream the stage''s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Stream the stage''s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'fci;test' {
            [CompletionResult]::new('--base-root', '--base-root', [CompletionResultType]::ParameterName, 'Base tree to layer under the new RPMs (default: the host''s directories, read-only)')
            [CompletionResult]::new('--tests-from', '--tests-from', [CompletionResultType]::ParameterName, 'Take tests from this dist-git checkout instead of the build''s snapshot')
            [CompletionResult]::new('--runner', '--runner', [CompletionResultType]::ParameterName, 'Which test formats to run')
            [CompletionResult]::new('--tags', '--tags', [CompletionResultType]::ParameterName, 'STI tags to select (comma-separated: classic, container, atomic)')
            [CompletionResult]::new('--retries', '--retries', [CompletionResultType]::ParameterName, 'Retry each failing test case up to N more times, recording every attempt')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Kill a test run (a playbook, or tmt), the install of the packages and a clone of a tests URL after this long (ERROR): seconds, or 90m, 4h, 1h30m; 0 for no limit')
            [CompletionResult]::new('--max-pids', '--max-pids', [CompletionResultType]::ParameterName, 'Most processes and threads package code may run at once (default 1024, or fci.yaml''s limits.pids); past it the stage is FAILED')
            [CompletionResult]::new('--max-memory', '--max-memory', [CompletionResultType]::ParameterName, 'Most memory package code may use, all its processes together (default 4GiB, or fci.yaml''s limits.memory); past it the stage is FAILED')
            [CompletionResult]::new('--max-scratch', '--max-scratch', [CompletionResultType]::ParameterName, 'Most scratch space package code may fill: its build or test directory and its tmpfs mounts; also the most the change''s RPMs may write when installed (test, compose) (default 8GiB, or fci.yaml''s limits.scratch); past it the stage is FAILED')
            [CompletionResult]::new('-m', '-m', [CompletionResultType]::ParameterName, 'Input manifest (''-'' for stdin)')
            [CompletionResult]::new('--manifest', '--manifest', [CompletionResultType]::ParameterName, 'Input manifest (''-'' for stdin)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output manifest (''-'' for stdout), written atomically')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output manifest (''-'' for stdout), written atomically')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'The namespace of the run''s test names, messages and results (default fedora-ci.koji-build, or fci.yaml''s ci.namespace); fixed by the run''s first stage')
            [CompletionResult]::new('--run-url', '--run-url', [CompletionResultType]::ParameterName, 'The URL of the CI job running this stage (default: Jenkins'' BUILD_URL): the messages'' run.url and log links, the results'' ref_url')
            [CompletionResult]::new('--artifacts-url', '--artifacts-url', [CompletionResultType]::ParameterName, 'The URL the workspace''s files are published under: logs are linked below it (default: fci.yaml''s ci.artifacts_url); fixed by the run''s first stage')
            [CompletionResult]::new('--signing-key', '--signing-key', [CompletionResultType]::ParameterName, 'The pipeline''s ed25519 key (PKCS#8 PEM, as `openssl genpkey -algorithm ed25519` writes it) that signs the stage''s attestations; without one they are written unsigned. The file is read, never recorded')
            [CompletionResult]::new('--builder-id', '--builder-id', [CompletionResultType]::ParameterName, 'The builder id the attestations name (SLSA''s runDetails.builder.id: who ran the work; default tag:fci,2026:builder/<host name>)')
            [CompletionResult]::new('--workspace', '--workspace', [CompletionResultType]::ParameterName, 'Workspace directory holding artifacts, logs, the cache and locks')
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'The pipeline state shared between machines (known-good refs and package set, exclusions, image schedule, watch heads, waivers, the OSTree repository): a directory on a shared volume; else fci.yaml''s `state:` (of --config, or of the fci.yaml the manifest names); else the one the workspace recorded; else state/ inside it')
            [CompletionResult]::new('--failed-only', '--failed-only', [CompletionResultType]::ParameterName, 'Rerun only the test cases that did not pass in the input manifest''s test stage')
            [CompletionResult]::new('--network', '--network', [CompletionResultType]::ParameterName, 'Let the tests reach the network')
            [CompletionResult]::new('--no-cache', '--no-cache', [CompletionResultType]::ParameterName, 'Run even when the inputs match a recorded result')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'Run even when an earlier stage did not pass')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'No progress or summaries on stderr (errors are still printed)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'No progress or summaries on stderr (errors are still printed)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Stream the stage''s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Stream the stage''s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'fci;integrate' {
            [CompletionResult]::new('--tests', '--tests', [CompletionResultType]::ParameterName, 'The integration tests: a directory or git URL holding tests/tests*.yml or tmt plans')
            [CompletionResult]::new('--tests-ref', '--tests-ref', [CompletionResultType]::ParameterName, 'Git ref of the tests, for a URL')
            [CompletionResult]::new('--runner', '--runner', [CompletionResultType]::ParameterName, 'Which test formats to run')
            [CompletionResult]::new('--tags', '--tags', [CompletionResultType]::ParameterName, 'STI tags to select (comma-separated: classic, container, atomic)')
            [CompletionResult]::new('--retries', '--retries', [CompletionResultType]::ParameterName, 'Retry each failing test case up to N more times, recording every attempt')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Kill a test run (a playbook, or tmt), the install of the packages and a clone of a tests URL after this long (ERROR): seconds, or 90m, 4h, 1h30m; 0 for no limit')
            [CompletionResult]::new('--max-pids', '--max-pids', [CompletionResultType]::ParameterName, 'Most processes and threads package code may run at once (default 1024, or fci.yaml''s limits.pids); past it the stage is FAILED')
            [CompletionResult]::new('--max-memory', '--max-memory', [CompletionResultType]::ParameterName, 'Most memory package code may use, all its processes together (default 4GiB, or fci.yaml''s limits.memory); past it the stage is FAILED')
            [CompletionResult]::new('--max-scratch', '--max-scratch', [CompletionResultType]::ParameterName, 'Most scratch space package code may fill: its build or test directory and its tmpfs mounts; also the most the change''s RPMs may write when installed (test, compose) (default 8GiB, or fci.yaml''s limits.scratch); past it the stage is FAILED')
            [CompletionResult]::new('-m', '-m', [CompletionResultType]::ParameterName, 'Input manifest (''-'' for stdin)')
            [CompletionResult]::new('--manifest', '--manifest', [CompletionResultType]::ParameterName, 'Input manifest (''-'' for stdin)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output manifest (''-'' for stdout), written atomically')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output manifest (''-'' for stdout), written atomically')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'The namespace of the run''s test names, messages and results (default fedora-ci.koji-build, or fci.yaml''s ci.namespace); fixed by the run''s first stage')
            [CompletionResult]::new('--run-url', '--run-url', [CompletionResultType]::ParameterName, 'The URL of the CI job running this stage (default: Jenkins'' BUILD_URL): the messages'' run.url and log links, the results'' ref_url')
            [CompletionResult]::new('--artifacts-url', '--artifacts-url', [CompletionResultType]::ParameterName, 'The URL the workspace''s files are published under: logs are linked below it (default: fci.yaml''s ci.artifacts_url); fixed by the run''s first stage')
            [CompletionResult]::new('--signing-key', '--signing-key', [CompletionResultType]::ParameterName, 'The pipeline''s ed25519 key (PKCS#8 PEM, as `openssl genpkey -algorithm ed25519` writes it) that signs the stage''s attestations; without one they are written unsigned. The file is read, never recorded')
            [CompletionResult]::new('--builder-id', '--builder-id', [CompletionResultType]::ParameterName, 'The builder id the attestations name (SLSA''s runDetails.builder.id: who ran the work; default tag:fci,2026:builder/<host name>)')
            [CompletionResult]::new('--workspace', '--workspace', [CompletionResultType]::ParameterName, 'Workspace directory holding artifacts, logs, the cache and locks')
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'The pipeline state shared between machines (known-good refs and package set, exclusions, image schedule, watch heads, waivers, the OSTree repository): a directory on a shared volume; else fci.yaml''s `state:` (of --config, or of the fci.yaml the manifest names); else the one the workspace recorded; else state/ inside it')
            [CompletionResult]::new('--network', '--network', [CompletionResultType]::ParameterName, 'Let the tests reach the network')
            [CompletionResult]::new('--no-cache', '--no-cache', [CompletionResultType]::ParameterName, 'Run even when the inputs match a recorded result')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'Run even when an earlier stage did not pass')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'No progress or summaries on stderr (errors are still printed)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'No progress or summaries on stderr (errors are still printed)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Stream the stage''s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Stream the stage''s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'fci;conform' {
            [CompletionResult]::new('--kubeconfig', '--kubeconfig', [CompletionResultType]::ParameterName, 'An existing cluster''s kubeconfig (it must run the composed tree)')
            [CompletionResult]::new('--installer', '--installer', [CompletionResultType]::ParameterName, 'A command that installs a cluster from the composed tree and leaves {kubeconfig}; its arguments end with '';''')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'The kubeconfig context to use (default: its current-context)')
            [CompletionResult]::new('--install-timeout', '--install-timeout', [CompletionResultType]::ParameterName, 'Kill the installer after this long (ERROR): seconds, or 90m, 4h, 1h30m; 0 for none')
            [CompletionResult]::new('--ready-timeout', '--ready-timeout', [CompletionResultType]::ParameterName, 'How long to wait for the API server''s /readyz to answer 200 (ERROR after): seconds, or 90s, 10m')
            [CompletionResult]::new('--runner', '--runner', [CompletionResultType]::ParameterName, 'The conformance runner')
            [CompletionResult]::new('--mode', '--mode', [CompletionResultType]::ParameterName, 'sonobuoy''s --mode')
            [CompletionResult]::new('--runner-cmd', '--runner-cmd', [CompletionResultType]::ParameterName, 'Any other runner: a command that writes JUnit files into {junit_dir}; its arguments end with '';'' (instead of --runner)')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Kill the conformance runner after this long (ERROR): seconds, or 90m, 4h, 1h30m; 0 for none')
            [CompletionResult]::new('--teardown', '--teardown', [CompletionResultType]::ParameterName, 'A command run at the end whatever happened (also after a failure, an ERROR or Ctrl-C), e.g. to destroy the cluster; its arguments end with '';''')
            [CompletionResult]::new('--teardown-timeout', '--teardown-timeout', [CompletionResultType]::ParameterName, 'Kill the teardown after this long: seconds, or 90m, 4h, 1h30m; 0 for none')
            [CompletionResult]::new('-m', '-m', [CompletionResultType]::ParameterName, 'Input manifest (''-'' for stdin)')
            [CompletionResult]::new('--manifest', '--manifest', [CompletionResultType]::ParameterName, 'Input manifest (''-'' for stdin)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output manifest (''-'' for stdout), written atomically')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output manifest (''-'' for stdout), written atomically')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'The namespace of the run''s test names, messages and results (default fedora-ci.koji-build, or fci.yaml''s ci.namespace); fixed by the run''s first stage')
            [CompletionResult]::new('--run-url', '--run-url', [CompletionResultType]::ParameterName, 'The URL of the CI job running this stage (default: Jenkins'' BUILD_URL): the messages'' run.url and log links, the results'' ref_url')
            [CompletionResult]::new('--artifacts-url', '--artifacts-url', [CompletionResultType]::ParameterName, 'The URL the workspace''s files are published under: logs are linked below it (default: fci.yaml''s ci.artifacts_url); fixed by the run''s first stage')
            [CompletionResult]::new('--signing-key', '--signing-key', [CompletionResultType]::ParameterName, 'The pipeline''s ed25519 key (PKCS#8 PEM, as `openssl genpkey -algorithm ed25519` writes it) that signs the stage''s attestations; without one they are written unsigned. The file is read, never recorded')
            [CompletionResult]::new('--builder-id', '--builder-id', [CompletionResultType]::ParameterName, 'The builder id the attestations name (SLSA''s runDetails.builder.id: who ran the work; default tag:fci,2026:builder/<host name>)')
            [CompletionResult]::new('--workspace', '--workspace', [CompletionResultType]::ParameterName, 'Workspace directory holding artifacts, logs, the cache and locks')
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'The pipeline state shared between machines (known-good refs and package set, exclusions, image schedule, watch heads, waivers, the OSTree repository): a directory on a shared volume; else fci.yaml''s `state:` (of --config, or of the fci.yaml the manifest names); else the one the workspace recorded; else state/ inside it')
            [CompletionResult]::new('--no-cache', '--no-cache', [CompletionResultType]::ParameterName, 'Run even when the inputs match a recorded result')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'Run even when an earlier stage did not pass')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'No progress or summaries on stderr (errors are still printed)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'No progress or summaries on stderr (errors are still printed)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Stream the stage''s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Stream the stage''s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'fci;image' {
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Disk image format')
            [CompletionResult]::new('--interval', '--interval', [CompletionResultType]::ParameterName, 'Make an image at most this often per branch (seconds, or 90m, 6h, 1d12h; 0: every run); a run before then is SKIPPED saying when the next is due, and exits 0. --force images')
            [CompletionResult]::new('--size', '--size', [CompletionResultType]::ParameterName, 'The disk''s virtual size in MiB (default: twice the deployment, at least 256)')
            [CompletionResult]::new('--karg', '--karg', [CompletionResultType]::ParameterName, 'An extra kernel argument for the deployment (repeatable); the defaults are root=/dev/vda rw console=ttyS0 panic=-1')
            [CompletionResult]::new('--os', '--os', [CompletionResultType]::ParameterName, 'The deployment''s OS name (the stateroot under /ostree/deploy)')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Kill the image build after this long (ERROR): seconds, or 90m, 4h, 1h30m; 0 for no limit')
            [CompletionResult]::new('-m', '-m', [CompletionResultType]::ParameterName, 'Input manifest (''-'' for stdin)')
            [CompletionResult]::new('--manifest', '--manifest', [CompletionResultType]::ParameterName, 'Input manifest (''-'' for stdin)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output manifest (''-'' for stdout), written atomically')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output manifest (''-'' for stdout), written atomically')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'The namespace of the run''s test names, messages and results (default fedora-ci.koji-build, or fci.yaml''s ci.namespace); fixed by the run''s first stage')
            [CompletionResult]::new('--run-url', '--run-url', [CompletionResultType]::ParameterName, 'The URL of the CI job running this stage (default: Jenkins'' BUILD_URL): the messages'' run.url and log links, the results'' ref_url')
            [CompletionResult]::new('--artifacts-url', '--artifacts-url', [CompletionResultType]::ParameterName, 'The URL the workspace''s files are published under: logs are linked below it (default: fci.yaml''s ci.artifacts_url); fixed by the run''s first stage')
            [CompletionResult]::new('--signing-key', '--signing-key', [CompletionResultType]::ParameterName, 'The pipeline''s ed25519 key (PKCS#8 PEM, as `openssl genpkey -algorithm ed25519` writes it) that signs the stage''s attestations; without one they are written unsigned. The file is read, never recorded')
            [CompletionResult]::new('--builder-id', '--builder-id', [CompletionResultType]::ParameterName, 'The builder id the attestations name (SLSA''s runDetails.builder.id: who ran the work; default tag:fci,2026:builder/<host name>)')
            [CompletionResult]::new('--workspace', '--workspace', [CompletionResultType]::ParameterName, 'Workspace directory holding artifacts, logs, the cache and locks')
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'The pipeline state shared between machines (known-good refs and package set, exclusions, image schedule, watch heads, waivers, the OSTree repository): a directory on a shared volume; else fci.yaml''s `state:` (of --config, or of the fci.yaml the manifest names); else the one the workspace recorded; else state/ inside it')
            [CompletionResult]::new('--no-cache', '--no-cache', [CompletionResultType]::ParameterName, 'Run even when the inputs match a recorded result')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'Run even when an earlier stage did not pass')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'No progress or summaries on stderr (errors are still printed)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'No progress or summaries on stderr (errors are still printed)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Stream the stage''s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Stream the stage''s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'fci;smoke' {
            [CompletionResult]::new('--check', '--check', [CompletionResultType]::ParameterName, 'A command the booted guest runs (repeatable, one test case each); it passes when the command exits 0, e.g. --check hello-atomic')
            [CompletionResult]::new('--accel', '--accel', [CompletionResultType]::ParameterName, 'The accelerator: auto uses KVM only when a probe boot showed it works on this host')
            [CompletionResult]::new('--memory', '--memory', [CompletionResultType]::ParameterName, 'Guest memory in MiB')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Kill the guest after this long (FAILED: it did not finish booting and checking): seconds, or 90s, 5m, 1h')
            [CompletionResult]::new('-m', '-m', [CompletionResultType]::ParameterName, 'Input manifest (''-'' for stdin)')
            [CompletionResult]::new('--manifest', '--manifest', [CompletionResultType]::ParameterName, 'Input manifest (''-'' for stdin)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output manifest (''-'' for stdout), written atomically')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output manifest (''-'' for stdout), written atomically')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'The namespace of the run''s test names, messages and results (default fedora-ci.koji-build, or fci.yaml''s ci.namespace); fixed by the run''s first stage')
            [CompletionResult]::new('--run-url', '--run-url', [CompletionResultType]::ParameterName, 'The URL of the CI job running this stage (default: Jenkins'' BUILD_URL): the messages'' run.url and log links, the results'' ref_url')
            [CompletionResult]::new('--artifacts-url', '--artifacts-url', [CompletionResultType]::ParameterName, 'The URL the workspace''s files are published under: logs are linked below it (default: fci.yaml''s ci.artifacts_url); fixed by the run''s first stage')
            [CompletionResult]::new('--signing-key', '--signing-key', [CompletionResultType]::ParameterName, 'The pipeline''s ed25519 key (PKCS#8 PEM, as `openssl genpkey -algorithm ed25519` writes it) that signs the stage''s attestations; without one they are written unsigned. The file is read, never recorded')
            [CompletionResult]::new('--builder-id', '--builder-id', [CompletionResultType]::ParameterName, 'The builder id the attestations name (SLSA''s runDetails.builder.id: who ran the work; default tag:fci,2026:builder/<host name>)')
            [CompletionResult]::new('--workspace', '--workspace', [CompletionResultType]::ParameterName, 'Workspace directory holding artifacts, logs, the cache and locks')
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'The pipeline state shared between machines (known-good refs and package set, exclusions, image schedule, watch heads, waivers, the OSTree repository): a directory on a shared volume; else fci.yaml''s `state:` (of --config, or of the fci.yaml the manifest names); else the one the workspace recorded; else state/ inside it')
            [CompletionResult]::new('--no-cache', '--no-cache', [CompletionResultType]::ParameterName, 'Run even when the inputs match a recorded result')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'Run even when an earlier stage did not pass')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'No progress or summaries on stderr (errors are still printed)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'No progress or summaries on stderr (errors are still printed)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Stream the stage''s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Stream the stage''s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'fci;gating' {
            [CompletionResult]::new('--workspace', '--workspace', [CompletionResultType]::ParameterName, 'Workspace directory holding artifacts, logs, the cache and locks')
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'The pipeline state shared between machines (known-good refs and package set, exclusions, image schedule, watch heads, waivers, the OSTree repository): a directory on a shared volume; else fci.yaml''s `state:` (of --config, or of the fci.yaml the manifest names); else the one the workspace recorded; else state/ inside it')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'No progress or summaries on stderr (errors are still printed)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'No progress or summaries on stderr (errors are still printed)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Stream the stage''s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Stream the stage''s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('decide', 'decide', [CompletionResultType]::ParameterValue, 'Decide offline, as Greenwave does, from a gating.yaml, results and waivers; print the decision JSON')
            [CompletionResult]::new('validate', 'validate', [CompletionResultType]::ParameterValue, 'Check a gating.yaml alone, as Greenwave''s validate-gating-yaml does; print {"message": ...}')
            [CompletionResult]::new('waive', 'waive', [CompletionResultType]::ParameterValue, 'Waive (or with --revoke, unwaive) a test case for a subject, in the workspace, for every later decision there, and with --waiverdb-url in WaiverDB; print the waiver')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'fci;gating;decide' {
            [CompletionResult]::new('--gating', '--gating', [CompletionResultType]::ParameterName, 'The package''s gating.yaml (Greenwave''s remote policy format)')
            [CompletionResult]::new('--results', '--results', [CompletionResultType]::ParameterName, 'ResultsDB results: a JSON list of POST bodies or `GET /results` items, or a whole `GET /results` answer (any order: they are taken by submit time and id)')
            [CompletionResult]::new('--waivers', '--waivers', [CompletionResultType]::ParameterName, 'WaiverDB waivers as a JSON list (any order: they are taken by timestamp and id), or a whole `GET /waivers/` answer')
            [CompletionResult]::new('--decision-context', '--decision-context', [CompletionResultType]::ParameterName, 'The gating point(s) to decide for (repeatable), e.g. bodhi_update_push_stable')
            [CompletionResult]::new('--product-version', '--product-version', [CompletionResultType]::ParameterName, 'The product version, e.g. fedora-41')
            [CompletionResult]::new('--subject-type', '--subject-type', [CompletionResultType]::ParameterName, 'The subject''s type')
            [CompletionResult]::new('--subject-identifier', '--subject-identifier', [CompletionResultType]::ParameterName, 'The subject, e.g. an NVR for koji_build')
            [CompletionResult]::new('--waiverdb-url', '--waiverdb-url', [CompletionResultType]::ParameterName, 'WaiverDB (its root or /api/v1.0): waivers are posted there (spooled when it cannot be reached) and decisions read the subject''s waivers from it')
            [CompletionResult]::new('--waiverdb-token-file', '--waiverdb-token-file', [CompletionResultType]::ParameterName, 'A file holding the WaiverDB token (`user:password` for HTTP Basic); or set FCI_WAIVERDB_TOKEN. Never printed or recorded')
            [CompletionResult]::new('--workspace', '--workspace', [CompletionResultType]::ParameterName, 'Workspace directory holding artifacts, logs, the cache and locks')
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'The pipeline state shared between machines (known-good refs and package set, exclusions, image schedule, watch heads, waivers, the OSTree repository): a directory on a shared volume; else fci.yaml''s `state:` (of --config, or of the fci.yaml the manifest names); else the one the workspace recorded; else state/ inside it')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'No progress or summaries on stderr (errors are still printed)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'No progress or summaries on stderr (errors are still printed)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Stream the stage''s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Stream the stage''s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'fci;gating;validate' {
            [CompletionResult]::new('--gating', '--gating', [CompletionResultType]::ParameterName, 'The gating.yaml to check')
            [CompletionResult]::new('--workspace', '--workspace', [CompletionResultType]::ParameterName, 'Workspace directory holding artifacts, logs, the cache and locks')
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'The pipeline state shared between machines (known-good refs and package set, exclusions, image schedule, watch heads, waivers, the OSTree repository): a directory on a shared volume; else fci.yaml''s `state:` (of --config, or of the fci.yaml the manifest names); else the one the workspace recorded; else state/ inside it')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'No progress or summaries on stderr (errors are still printed)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'No progress or summaries on stderr (errors are still printed)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Stream the stage''s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Stream the stage''s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'fci;gating;waive' {
            [CompletionResult]::new('--comment', '--comment', [CompletionResultType]::ParameterName, 'Why (WaiverDB requires it)')
            [CompletionResult]::new('--scenario', '--scenario', [CompletionResultType]::ParameterName, 'Only this scenario')
            [CompletionResult]::new('--username', '--username', [CompletionResultType]::ParameterName, 'Who waives (default $USER; sent to WaiverDB as `username`, a proxy request, only when given)')
            [CompletionResult]::new('--gating', '--gating', [CompletionResultType]::ParameterName, 'The package''s gating.yaml: the test cases it requires are known test cases too')
            [CompletionResult]::new('--resultsdb-url', '--resultsdb-url', [CompletionResultType]::ParameterName, 'A ResultsDB (its root or /api/v2.0) whose results for the subject are known test cases too')
            [CompletionResult]::new('--product-version', '--product-version', [CompletionResultType]::ParameterName, 'The product version, e.g. fedora-41')
            [CompletionResult]::new('--subject-type', '--subject-type', [CompletionResultType]::ParameterName, 'The subject''s type')
            [CompletionResult]::new('--subject-identifier', '--subject-identifier', [CompletionResultType]::ParameterName, 'The subject, e.g. an NVR for koji_build')
            [CompletionResult]::new('--waiverdb-url', '--waiverdb-url', [CompletionResultType]::ParameterName, 'WaiverDB (its root or /api/v1.0): waivers are posted there (spooled when it cannot be reached) and decisions read the subject''s waivers from it')
            [CompletionResult]::new('--waiverdb-token-file', '--waiverdb-token-file', [CompletionResultType]::ParameterName, 'A file holding the WaiverDB token (`user:password` for HTTP Basic); or set FCI_WAIVERDB_TOKEN. Never printed or recorded')
            [CompletionResult]::new('--workspace', '--workspace', [CompletionResultType]::ParameterName, 'Workspace directory holding artifacts, logs, the cache and locks')
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'The pipeline state shared between machines (known-good refs and package set, exclusions, image schedule, watch heads, waivers, the OSTree repository): a directory on a shared volume; else fci.yaml''s `state:` (of --config, or of the fci.yaml the manifest names); else the one the workspace recorded; else state/ inside it')
            [CompletionResult]::new('--revoke', '--revoke', [CompletionResultType]::ParameterName, 'Record `waived: false`, revoking earlier waivers')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'Store the waiver even for a test case no policy requires and no result has')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'No progress or summaries on stderr (errors are still printed)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'No progress or summaries on stderr (errors are still printed)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Stream the stage''s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Stream the stage''s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'fci;gating;help' {
            [CompletionResult]::new('decide', 'decide', [CompletionResultType]::ParameterValue, 'Decide offline, as Greenwave does, from a gating.yaml, results and waivers; print the decision JSON')
            [CompletionResult]::new('validate', 'validate', [CompletionResultType]::ParameterValue, 'Check a gating.yaml alone, as Greenwave''s validate-gating-yaml does; print {"message": ...}')
            [CompletionResult]::new('waive', 'waive', [CompletionResultType]::ParameterValue, 'Waive (or with --revoke, unwaive) a test case for a subject, in the workspace, for every later decision there, and with --waiverdb-url in WaiverDB; print the waiver')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'fci;gating;help;decide' {
            break
        }
        'fci;gating;help;validate' {
            break
        }
        'fci;gating;help;waive' {
            break
        }
        'fci;gating;help;help' {
            break
        }
        'fci;base' {
            [CompletionResult]::new('--workspace', '--workspace', [CompletionResultType]::ParameterName, 'Workspace directory holding artifacts, logs, the cache and locks')
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'The pipeline state shared between machines (known-good refs and package set, exclusions, image schedule, watch heads, waivers, the OSTree repository): a directory on a shared volume; else fci.yaml''s `state:` (of --config, or of the fci.yaml the manifest names); else the one the workspace recorded; else state/ inside it')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'No progress or summaries on stderr (errors are still printed)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'No progress or summaries on stderr (errors are still printed)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Stream the stage''s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Stream the stage''s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('init', 'init', [CompletionResultType]::ParameterValue, 'Commit a tree (a directory, or a tarball) as a branch''s first known-good base; print its checksum')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'fci;base;init' {
            [CompletionResult]::new('--branch', '--branch', [CompletionResultType]::ParameterName, 'The dist-git branch whose base it is: its ref is fci/<BRANCH>/known-good')
            [CompletionResult]::new('--ostree-repo', '--ostree-repo', [CompletionResultType]::ParameterName, 'A shared OSTree repository (absolute path) for this workspace''s pipeline, as for `fci compose` (env FCI_OSTREE_REPO; empty means unset)')
            [CompletionResult]::new('--workspace', '--workspace', [CompletionResultType]::ParameterName, 'Workspace directory holding artifacts, logs, the cache and locks')
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'The pipeline state shared between machines (known-good refs and package set, exclusions, image schedule, watch heads, waivers, the OSTree repository): a directory on a shared volume; else fci.yaml''s `state:` (of --config, or of the fci.yaml the manifest names); else the one the workspace recorded; else state/ inside it')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'No progress or summaries on stderr (errors are still printed)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'No progress or summaries on stderr (errors are still printed)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Stream the stage''s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Stream the stage''s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'fci;base;help' {
            [CompletionResult]::new('init', 'init', [CompletionResultType]::ParameterValue, 'Commit a tree (a directory, or a tarball) as a branch''s first known-good base; print its checksum')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'fci;base;help;init' {
            break
        }
        'fci;base;help;help' {
            break
        }
        'fci;bundle' {
            [CompletionResult]::new('-m', '-m', [CompletionResultType]::ParameterName, 'The run''s manifest (`-` for stdin)')
            [CompletionResult]::new('--manifest', '--manifest', [CompletionResultType]::ParameterName, 'The run''s manifest (`-` for stdin)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'The bundle to write (a tar file)')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'The bundle to write (a tar file)')
            [CompletionResult]::new('--workspace', '--workspace', [CompletionResultType]::ParameterName, 'Workspace directory holding artifacts, logs, the cache and locks')
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'The pipeline state shared between machines (known-good refs and package set, exclusions, image schedule, watch heads, waivers, the OSTree repository): a directory on a shared volume; else fci.yaml''s `state:` (of --config, or of the fci.yaml the manifest names); else the one the workspace recorded; else state/ inside it')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'No progress or summaries on stderr (errors are still printed)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'No progress or summaries on stderr (errors are still printed)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Stream the stage''s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Stream the stage''s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'fci;unbundle' {
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'The manifest to write, its paths as this workspace knows them (`-` for stdout)')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'The manifest to write, its paths as this workspace knows them (`-` for stdout)')
            [CompletionResult]::new('--workspace', '--workspace', [CompletionResultType]::ParameterName, 'Workspace directory holding artifacts, logs, the cache and locks')
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'The pipeline state shared between machines (known-good refs and package set, exclusions, image schedule, watch heads, waivers, the OSTree repository): a directory on a shared volume; else fci.yaml''s `state:` (of --config, or of the fci.yaml the manifest names); else the one the workspace recorded; else state/ inside it')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'No progress or summaries on stderr (errors are still printed)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'No progress or summaries on stderr (errors are still printed)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Stream the stage''s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Stream the stage''s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'fci;fsck' {
            [CompletionResult]::new('-m', '-m', [CompletionResultType]::ParameterName, 'A run''s manifest to check too: it parses and each artifact it names verifies (repeat for several)')
            [CompletionResult]::new('--manifest', '--manifest', [CompletionResultType]::ParameterName, 'A run''s manifest to check too: it parses and each artifact it names verifies (repeat for several)')
            [CompletionResult]::new('--workspace', '--workspace', [CompletionResultType]::ParameterName, 'Workspace directory holding artifacts, logs, the cache and locks')
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'The pipeline state shared between machines (known-good refs and package set, exclusions, image schedule, watch heads, waivers, the OSTree repository): a directory on a shared volume; else fci.yaml''s `state:` (of --config, or of the fci.yaml the manifest names); else the one the workspace recorded; else state/ inside it')
            [CompletionResult]::new('--no-ostree', '--no-ostree', [CompletionResultType]::ParameterName, 'Skip `ostree fsck` of the OSTree repository (slow on a large repository); its known-good refs are still checked')
            [CompletionResult]::new('--repair', '--repair', [CompletionResultType]::ParameterName, 'Remove what crashes left (debris) and complete interrupted promotions; damage is left as it is')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'No progress or summaries on stderr (errors are still printed)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'No progress or summaries on stderr (errors are still printed)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Stream the stage''s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Stream the stage''s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'fci;gc' {
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'The pipeline''s fci.yaml, whose `gc:` section is the policy (the flags override it)')
            [CompletionResult]::new('--keep-runs', '--keep-runs', [CompletionResultType]::ParameterName, 'Keep at most the N newest runs (besides the known-good''s, those queued for a retest and those within the grace period)')
            [CompletionResult]::new('--max-age', '--max-age', [CompletionResultType]::ParameterName, 'Remove runs whose last record is older than this (14d, 36h)')
            [CompletionResult]::new('--max-size', '--max-size', [CompletionResultType]::ParameterName, 'Drop the oldest runs until the workspace and state take at most this (20G, 500M)')
            [CompletionResult]::new('--grace', '--grace', [CompletionResultType]::ParameterName, 'Always keep a run whose last record is younger than this: its next stage may be about to start (default 1h)')
            [CompletionResult]::new('--ostree-depth', '--ostree-depth', [CompletionResultType]::ParameterName, 'Commits of each kept OSTree ref''s history to keep (default 10)')
            [CompletionResult]::new('--workspace', '--workspace', [CompletionResultType]::ParameterName, 'Workspace directory holding artifacts, logs, the cache and locks')
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'The pipeline state shared between machines (known-good refs and package set, exclusions, image schedule, watch heads, waivers, the OSTree repository): a directory on a shared volume; else fci.yaml''s `state:` (of --config, or of the fci.yaml the manifest names); else the one the workspace recorded; else state/ inside it')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'List what would be removed, with its size, and remove nothing')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the summary as JSON on stdout too')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'No progress or summaries on stderr (errors are still printed)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'No progress or summaries on stderr (errors are still printed)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Stream the stage''s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Stream the stage''s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'fci;verify' {
            [CompletionResult]::new('-m', '-m', [CompletionResultType]::ParameterName, 'The run''s manifest: its attestations are the evidence (default: every attestation in the workspace''s object store)')
            [CompletionResult]::new('--manifest', '--manifest', [CompletionResultType]::ParameterName, 'The run''s manifest: its attestations are the evidence (default: every attestation in the workspace''s object store)')
            [CompletionResult]::new('--key', '--key', [CompletionResultType]::ParameterName, 'A trusted public key (SPKI PEM, as `openssl pkey -pubout` writes it); repeat for several')
            [CompletionResult]::new('--require', '--require', [CompletionResultType]::ParameterName, 'The policy''s rules, comma-separated: check, test, integrate, conform, smoke, gate (or none)')
            [CompletionResult]::new('--workspace', '--workspace', [CompletionResultType]::ParameterName, 'Workspace directory holding artifacts, logs, the cache and locks')
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'The pipeline state shared between machines (known-good refs and package set, exclusions, image schedule, watch heads, waivers, the OSTree repository): a directory on a shared volume; else fci.yaml''s `state:` (of --config, or of the fci.yaml the manifest names); else the one the workspace recorded; else state/ inside it')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the result as JSON instead of a tree')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'No progress or summaries on stderr (errors are still printed)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'No progress or summaries on stderr (errors are still printed)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Stream the stage''s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Stream the stage''s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'fci;completions' {
            [CompletionResult]::new('--workspace', '--workspace', [CompletionResultType]::ParameterName, 'Workspace directory holding artifacts, logs, the cache and locks')
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'The pipeline state shared between machines (known-good refs and package set, exclusions, image schedule, watch heads, waivers, the OSTree repository): a directory on a shared volume; else fci.yaml''s `state:` (of --config, or of the fci.yaml the manifest names); else the one the workspace recorded; else state/ inside it')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'No progress or summaries on stderr (errors are still printed)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'No progress or summaries on stderr (errors are still printed)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Stream the stage''s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Stream the stage''s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'fci;compose' {
            [CompletionResult]::new('--branch', '--branch', [CompletionResultType]::ParameterName, 'The dist-git branch whose known-good base to compose on (default: the subject''s)')
            [CompletionResult]::new('--ostree-repo', '--ostree-repo', [CompletionResultType]::ParameterName, 'A shared OSTree repository (absolute path) for this workspace''s pipeline, instead of the workspace''s own `ostree/repo`; recorded in the workspace, so later stages find it (env FCI_OSTREE_REPO; empty means unset)')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Kill the compose after this long (ERROR): seconds, or 90m, 4h, 1h30m; 0 for no limit')
            [CompletionResult]::new('--max-pids', '--max-pids', [CompletionResultType]::ParameterName, 'Most processes and threads package code may run at once (default 1024, or fci.yaml''s limits.pids); past it the stage is FAILED')
            [CompletionResult]::new('--max-memory', '--max-memory', [CompletionResultType]::ParameterName, 'Most memory package code may use, all its processes together (default 4GiB, or fci.yaml''s limits.memory); past it the stage is FAILED')
            [CompletionResult]::new('--max-scratch', '--max-scratch', [CompletionResultType]::ParameterName, 'Most scratch space package code may fill: its build or test directory and its tmpfs mounts; also the most the change''s RPMs may write when installed (test, compose) (default 8GiB, or fci.yaml''s limits.scratch); past it the stage is FAILED')
            [CompletionResult]::new('-m', '-m', [CompletionResultType]::ParameterName, 'Input manifest (''-'' for stdin)')
            [CompletionResult]::new('--manifest', '--manifest', [CompletionResultType]::ParameterName, 'Input manifest (''-'' for stdin)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output manifest (''-'' for stdout), written atomically')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output manifest (''-'' for stdout), written atomically')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'The namespace of the run''s test names, messages and results (default fedora-ci.koji-build, or fci.yaml''s ci.namespace); fixed by the run''s first stage')
            [CompletionResult]::new('--run-url', '--run-url', [CompletionResultType]::ParameterName, 'The URL of the CI job running this stage (default: Jenkins'' BUILD_URL): the messages'' run.url and log links, the results'' ref_url')
            [CompletionResult]::new('--artifacts-url', '--artifacts-url', [CompletionResultType]::ParameterName, 'The URL the workspace''s files are published under: logs are linked below it (default: fci.yaml''s ci.artifacts_url); fixed by the run''s first stage')
            [CompletionResult]::new('--signing-key', '--signing-key', [CompletionResultType]::ParameterName, 'The pipeline''s ed25519 key (PKCS#8 PEM, as `openssl genpkey -algorithm ed25519` writes it) that signs the stage''s attestations; without one they are written unsigned. The file is read, never recorded')
            [CompletionResult]::new('--builder-id', '--builder-id', [CompletionResultType]::ParameterName, 'The builder id the attestations name (SLSA''s runDetails.builder.id: who ran the work; default tag:fci,2026:builder/<host name>)')
            [CompletionResult]::new('--workspace', '--workspace', [CompletionResultType]::ParameterName, 'Workspace directory holding artifacts, logs, the cache and locks')
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'The pipeline state shared between machines (known-good refs and package set, exclusions, image schedule, watch heads, waivers, the OSTree repository): a directory on a shared volume; else fci.yaml''s `state:` (of --config, or of the fci.yaml the manifest names); else the one the workspace recorded; else state/ inside it')
            [CompletionResult]::new('--no-cache', '--no-cache', [CompletionResultType]::ParameterName, 'Run even when the inputs match a recorded result')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'Run even when an earlier stage did not pass')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'No progress or summaries on stderr (errors are still printed)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'No progress or summaries on stderr (errors are still printed)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Stream the stage''s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Stream the stage''s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'fci;report' {
            [CompletionResult]::new('--gating', '--gating', [CompletionResultType]::ParameterName, 'The package''s gating.yaml to evaluate (Greenwave''s remote policy format)')
            [CompletionResult]::new('--waivers', '--waivers', [CompletionResultType]::ParameterName, 'WaiverDB waivers as a JSON list, oldest first, besides the workspace''s own (from `fci gating waive`)')
            [CompletionResult]::new('--decision-context', '--decision-context', [CompletionResultType]::ParameterName, 'The gating point(s) to decide for (repeatable), e.g. bodhi_update_push_stable')
            [CompletionResult]::new('--product-version', '--product-version', [CompletionResultType]::ParameterName, 'The product version, e.g. fedora-41 (default from the manifest''s branch)')
            [CompletionResult]::new('--subject-type', '--subject-type', [CompletionResultType]::ParameterName, 'The subject''s type')
            [CompletionResult]::new('--subject-identifier', '--subject-identifier', [CompletionResultType]::ParameterName, 'The subject, e.g. an NVR for koji_build (default: the manifest''s source package NVR)')
            [CompletionResult]::new('--require-stages', '--require-stages', [CompletionResultType]::ParameterName, 'With --promote: the stages the pipeline runs for every change (comma-separated, e.g. build,test,compose,integrate,image,smoke): a run without a record of each (a stage killed, timed out by the scheduler or never started) is neither promoted nor excluded but ERROR, to be rerun: its missing results are not the package''s failure')
            [CompletionResult]::new('--resultsdb-url', '--resultsdb-url', [CompletionResultType]::ParameterName, 'Also post the results to this ResultsDB (its root or /api/v2.0, no query); what cannot be delivered is spooled in the workspace and delivered by the next report')
            [CompletionResult]::new('--amqp-url', '--amqp-url', [CompletionResultType]::ParameterName, 'Also publish the messages to this AMQP broker (amqp://user:password@host:port/vhost), as fedora-messaging does; unconfirmed ones are spooled and sent by the next report')
            [CompletionResult]::new('--resultsdb-jobs', '--resultsdb-jobs', [CompletionResultType]::ParameterName, 'How many results are posted at once')
            [CompletionResult]::new('--resultsdb-token-file', '--resultsdb-token-file', [CompletionResultType]::ParameterName, 'A file holding the ResultsDB token (`user:password` for HTTP Basic); or set FCI_RESULTSDB_TOKEN. Never printed or recorded')
            [CompletionResult]::new('--html', '--html', [CompletionResultType]::ParameterName, 'Also write the run, with the gating decision, as one self-contained HTML page')
            [CompletionResult]::new('--junit', '--junit', [CompletionResultType]::ParameterName, 'Also write the run''s results as a JUnit report (for Jenkins'' junit step): a test suite per stage, a test case per result')
            [CompletionResult]::new('--waiverdb-url', '--waiverdb-url', [CompletionResultType]::ParameterName, 'WaiverDB (its root or /api/v1.0): waivers are posted there (spooled when it cannot be reached) and decisions read the subject''s waivers from it')
            [CompletionResult]::new('--waiverdb-token-file', '--waiverdb-token-file', [CompletionResultType]::ParameterName, 'A file holding the WaiverDB token (`user:password` for HTTP Basic); or set FCI_WAIVERDB_TOKEN. Never printed or recorded')
            [CompletionResult]::new('-m', '-m', [CompletionResultType]::ParameterName, 'Input manifest (''-'' for stdin)')
            [CompletionResult]::new('--manifest', '--manifest', [CompletionResultType]::ParameterName, 'Input manifest (''-'' for stdin)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output manifest (''-'' for stdout), written atomically')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output manifest (''-'' for stdout), written atomically')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'The namespace of the run''s test names, messages and results (default fedora-ci.koji-build, or fci.yaml''s ci.namespace); fixed by the run''s first stage')
            [CompletionResult]::new('--run-url', '--run-url', [CompletionResultType]::ParameterName, 'The URL of the CI job running this stage (default: Jenkins'' BUILD_URL): the messages'' run.url and log links, the results'' ref_url')
            [CompletionResult]::new('--artifacts-url', '--artifacts-url', [CompletionResultType]::ParameterName, 'The URL the workspace''s files are published under: logs are linked below it (default: fci.yaml''s ci.artifacts_url); fixed by the run''s first stage')
            [CompletionResult]::new('--signing-key', '--signing-key', [CompletionResultType]::ParameterName, 'The pipeline''s ed25519 key (PKCS#8 PEM, as `openssl genpkey -algorithm ed25519` writes it) that signs the stage''s attestations; without one they are written unsigned. The file is read, never recorded')
            [CompletionResult]::new('--builder-id', '--builder-id', [CompletionResultType]::ParameterName, 'The builder id the attestations name (SLSA''s runDetails.builder.id: who ran the work; default tag:fci,2026:builder/<host name>)')
            [CompletionResult]::new('--workspace', '--workspace', [CompletionResultType]::ParameterName, 'Workspace directory holding artifacts, logs, the cache and locks')
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'The pipeline state shared between machines (known-good refs and package set, exclusions, image schedule, watch heads, waivers, the OSTree repository): a directory on a shared volume; else fci.yaml''s `state:` (of --config, or of the fci.yaml the manifest names); else the one the workspace recorded; else state/ inside it')
            [CompletionResult]::new('--promote', '--promote', [CompletionResultType]::ParameterName, 'With --gating: decided on this run''s own checked records only; a satisfied decision makes the change the branch''s known-good base (its composed commit, when there is one); an unsatisfied one excludes the change')
            [CompletionResult]::new('--summary', '--summary', [CompletionResultType]::ParameterName, 'Print the run''s table (stage, outcome, seconds, failing tests or log) even with --quiet')
            [CompletionResult]::new('--no-cache', '--no-cache', [CompletionResultType]::ParameterName, 'Run even when the inputs match a recorded result')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'Run even when an earlier stage did not pass')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'No progress or summaries on stderr (errors are still printed)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'No progress or summaries on stderr (errors are still printed)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Stream the stage''s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Stream the stage''s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'fci;help' {
            [CompletionResult]::new('watch', 'watch', [CompletionResultType]::ParameterValue, 'Watch the monitored packages'' dist-git branches; one manifest per new commit')
            [CompletionResult]::new('build', 'build', [CompletionResultType]::ParameterValue, 'Build the SRPM and binary RPMs of a dist-git checkout (%check runs)')
            [CompletionResult]::new('test', 'test', [CompletionResultType]::ParameterValue, 'Run the package''s STI and tmt tests against the RPMs just built')
            [CompletionResult]::new('integrate', 'integrate', [CompletionResultType]::ParameterValue, 'Run the pipeline''s OS-level tests against the composed commit')
            [CompletionResult]::new('conform', 'conform', [CompletionResultType]::ParameterValue, 'Install or reach a cluster running the composed tree and run the Kubernetes conformance suite')
            [CompletionResult]::new('image', 'image', [CompletionResultType]::ParameterValue, 'Make a disk image (qcow2 or raw) of an OSTree deployment of the composed commit')
            [CompletionResult]::new('smoke', 'smoke', [CompletionResultType]::ParameterValue, 'Boot the image in qemu and check that the composed commit runs')
            [CompletionResult]::new('gating', 'gating', [CompletionResultType]::ParameterValue, 'Gating without a run: decide from files, check a gating.yaml, waive a test case')
            [CompletionResult]::new('base', 'base', [CompletionResultType]::ParameterValue, 'The known-good OSTree base composes build on: make a branch''s first one')
            [CompletionResult]::new('bundle', 'bundle', [CompletionResultType]::ParameterValue, 'Write a run''s manifest and exactly the artifacts and logs it references to one file')
            [CompletionResult]::new('unbundle', 'unbundle', [CompletionResultType]::ParameterValue, 'Bring a bundle into this workspace (every digest verified first) and write its manifest')
            [CompletionResult]::new('fsck', 'fsck', [CompletionResultType]::ParameterValue, 'Check the workspace and the pipeline state for damage (0 clean, 1 damage found)')
            [CompletionResult]::new('gc', 'gc', [CompletionResultType]::ParameterValue, 'Remove what no recent run, known-good base or queued retest needs (objects, cache, old records, OSTree refs)')
            [CompletionResult]::new('verify', 'verify', [CompletionResultType]::ParameterValue, 'Check an image''s, commit''s or RPM''s signed chain back to its dist-git commit, and the policy')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print shell completions (bash, zsh, fish, elvish, powershell)')
            [CompletionResult]::new('compose', 'compose', [CompletionResultType]::ParameterValue, 'Commit the known-good OSTree base plus the change''s RPMs (only when build and test passed)')
            [CompletionResult]::new('report', 'report', [CompletionResultType]::ParameterValue, 'Record the run''s results and decide its gating (with --gating; --promote acts on it)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'fci;help;watch' {
            break
        }
        'fci;help;build' {
            break
        }
        'fci;help;test' {
            break
        }
        'fci;help;integrate' {
            break
        }
        'fci;help;conform' {
            break
        }
        'fci;help;image' {
            break
        }
        'fci;help;smoke' {
            break
        }
        'fci;help;gating' {
            [CompletionResult]::new('decide', 'decide', [CompletionResultType]::ParameterValue, 'Decide offline, as Greenwave does, from a gating.yaml, results and waivers; print the decision JSON')
            [CompletionResult]::new('validate', 'validate', [CompletionResultType]::ParameterValue, 'Check a gating.yaml alone, as Greenwave''s validate-gating-yaml does; print {"message": ...}')
            [CompletionResult]::new('waive', 'waive', [CompletionResultType]::ParameterValue, 'Waive (or with --revoke, unwaive) a test case for a subject, in the workspace, for every later decision there, and with --waiverdb-url in WaiverDB; print the waiver')
            break
        }
        'fci;help;gating;decide' {
            break
        }
        'fci;help;gating;validate' {
            break
        }
        'fci;help;gating;waive' {
            break
        }
        'fci;help;base' {
            [CompletionResult]::new('init', 'init', [CompletionResultType]::ParameterValue, 'Commit a tree (a directory, or a tarball) as a branch''s first known-good base; print its checksum')
            break
        }
        'fci;help;base;init' {
            break
        }
        'fci;help;bundle' {
            break
        }
        'fci;help;unbundle' {
            break
        }
        'fci;help;fsck' {
            break
        }
        'fci;help;gc' {
            break
        }
        'fci;help;verify' {
            break
        }
        'fci;help;completions' {
            break
        }
        'fci;help;compose' {
            break
        }
        'fci;help;report' {
            break
        }
        'fci;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
