
use builtin;
use str;

set edit:completion:arg-completer[fci] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'fci'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'fci'= {
            cand --workspace 'Workspace directory holding artifacts, logs, the cache and locks'
            cand --state 'The pipeline state shared between machines (known-good refs and package set, exclusions, image schedule, watch heads, waivers, the OSTree repository): a directory on a shared volume; else fci.yaml''s `state:` (of --config, or of the fci.yaml the manifest names); else the one the workspace recorded; else state/ inside it'
            cand -q 'No progress or summaries on stderr (errors are still printed)'
            cand --quiet 'No progress or summaries on stderr (errors are still printed)'
            cand -v 'Stream the stage''s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked'
            cand --verbose 'Stream the stage''s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
            cand watch 'Watch the monitored packages'' dist-git branches; one manifest per new commit'
            cand build 'Build the SRPM and binary RPMs of a dist-git checkout (%check runs)'
            cand test 'Run the package''s STI and tmt tests against the RPMs just built'
            cand integrate 'Run the pipeline''s OS-level tests against the composed commit'
            cand conform 'Install or reach a cluster running the composed tree and run the Kubernetes conformance suite'
            cand image 'Make a disk image (qcow2 or raw) of an OSTree deployment of the composed commit'
            cand smoke 'Boot the image in qemu and check that the composed commit runs'
            cand gating 'Gating without a run: decide from files, check a gating.yaml, waive a test case'
            cand base 'The known-good OSTree base composes build on: make a branch''s first one'
            cand bundle 'Write a run''s manifest and exactly the artifacts and logs it references to one file'
            cand unbundle 'Bring a bundle into this workspace (every digest verified first) and write its manifest'
            cand fsck 'Check the workspace and the pipeline state for damage (0 clean, 1 damage found)'
            cand gc 'Remove what no recent run, known-good base or queued retest needs (objects, cache, old records, OSTree refs)'
            cand verify 'Check an image''s, commit''s or RPM''s signed chain back to its dist-git commit, and the policy'
            cand completions 'Print shell completions (bash, zsh, fish, elvish, powershell)'
            cand compose 'Commit the known-good OSTree base plus the change''s RPMs (only when build and test passed)'
            cand report 'Record the run''s results and decide its gating (with --gating; --promote acts on it)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'fci;watch'= {
            cand --config 'The pipeline''s configuration (monitored packages, dist-git, branches)'
            cand --interval 'Poll again after this long, until stopped (seconds, or 5m, 1h, 1h30m); with --amqp-url, how often kept messages are tried again while the queue is idle (default 30s)'
            cand --remote-timeout 'A remote dist-git that does not answer in this long is an ERROR for its package (seconds, or 90s, 5m)'
            cand --amqp-url 'Consume dist-git push messages (git.receive) from this AMQP broker'
            cand --queue 'The broker queue to consume (declared durable, bound to amq.topic for #.git.receive)'
            cand --message 'Act on one git.receive message from a file (''-'' for stdin; at most 1 MiB)'
            cand --output-dir 'Write each change''s manifest into DIR (default: one JSON manifest per line on stdout)'
            cand --jobs 'Remote repositories asked at once'
            cand --workspace 'Workspace directory holding artifacts, logs, the cache and locks'
            cand --state 'The pipeline state shared between machines (known-good refs and package set, exclusions, image schedule, watch heads, waivers, the OSTree repository): a directory on a shared volume; else fci.yaml''s `state:` (of --config, or of the fci.yaml the manifest names); else the one the workspace recorded; else state/ inside it'
            cand --once 'Poll every repository once and exit (with --amqp-url: take what is queued, then exit)'
            cand --emit-existing 'On the first poll of a branch, emit its head instead of only recording it as seen'
            cand -q 'No progress or summaries on stderr (errors are still printed)'
            cand --quiet 'No progress or summaries on stderr (errors are still printed)'
            cand -v 'Stream the stage''s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked'
            cand --verbose 'Stream the stage''s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'fci;build'= {
            cand --ref 'Git ref (branch, tag or commit) to build'
            cand --lookaside 'Lookaside cache for the `sources` file: a directory or an http(s) URL'
            cand --backend 'Build backend'
            cand --mock-config 'mock configuration (mock -r)'
            cand --dist '%{dist} tag, e.g. .fc41 (default: from the branch name)'
            cand --branch 'Dist-git branch name, when the checkout does not tell (f41, epel9, c10s, rawhide)'
            cand --rawhide-release 'The Fedora release number rawhide (and a `main` branch) builds for'
            cand --spec 'The spec to build, relative to the checkout (default: its only .spec)'
            cand -D 'Extra rpm macro definition: NAME=VALUE, or as rpm takes it, ''NAME BODY'' or ''NAME(OPTS) BODY'' (repeatable)'
            cand --define 'Extra rpm macro definition: NAME=VALUE, or as rpm takes it, ''NAME BODY'' or ''NAME(OPTS) BODY'' (repeatable)'
            cand --timeout 'Kill the build (and a clone of a dist-git URL) after this long (ERROR): seconds, or 90m, 4h, 1h30m; 0 for no limit'
            cand --max-pids 'Most processes and threads package code may run at once (default 1024, or fci.yaml''s limits.pids); past it the stage is FAILED'
            cand --max-memory 'Most memory package code may use, all its processes together (default 4GiB, or fci.yaml''s limits.memory); past it the stage is FAILED'
            cand --max-scratch 'Most scratch space package code may fill: its build or test directory and its tmpfs mounts; also the most the change''s RPMs may write when installed (test, compose) (default 8GiB, or fci.yaml''s limits.scratch); past it the stage is FAILED'
            cand -m 'Input manifest (''-'' for stdin)'
            cand --manifest 'Input manifest (''-'' for stdin)'
            cand -o 'Output manifest (''-'' for stdout), written atomically'
            cand --output 'Output manifest (''-'' for stdout), written atomically'
            cand --namespace 'The namespace of the run''s test names, messages and results (default fedora-ci.koji-build, or fci.yaml''s ci.namespace); fixed by the run''s first stage'
            cand --run-url 'The URL of the CI job running this stage (default: Jenkins'' BUILD_URL): the messages'' run.url and log links, the results'' ref_url'
            cand --artifacts-url 'The URL the workspace''s files are published under: logs are linked below it (default: fci.yaml''s ci.artifacts_url); fixed by the run''s first stage'
            cand --signing-key 'The pipeline''s ed25519 key (PKCS#8 PEM, as `openssl genpkey -algorithm ed25519` writes it) that signs the stage''s attestations; without one they are written unsigned. The file is read, never recorded'
            cand --builder-id 'The builder id the attestations name (SLSA''s runDetails.builder.id: who ran the work; default tag:fci,2026:builder/<host name>)'
            cand --workspace 'Workspace directory holding artifacts, logs, the cache and locks'
            cand --state 'The pipeline state shared between machines (known-good refs and package set, exclusions, image schedule, watch heads, waivers, the OSTree repository): a directory on a shared volume; else fci.yaml''s `state:` (of --config, or of the fci.yaml the manifest names); else the one the workspace recorded; else state/ inside it'
            cand --nocheck 'Do not run %check (the build.check result is SKIPPED)'
            cand --strict-builddeps 'Fail (ERROR) instead of building with --nodeps when the host cannot satisfy BuildRequires'
            cand --no-cache 'Run even when the inputs match a recorded result'
            cand --force 'Run even when an earlier stage did not pass'
            cand -q 'No progress or summaries on stderr (errors are still printed)'
            cand --quiet 'No progress or summaries on stderr (errors are still printed)'
            cand -v 'Stream the stage''s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked'
            cand --verbose 'Stream the stage''s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'fci;test'= {
            cand --base-root 'Base tree to layer under the new RPMs (default: the host''s directories, read-only)'
            cand --tests-from 'Take tests from this dist-git checkout instead of the build''s snapshot'
            cand --runner 'Which test formats to run'
            cand --tags 'STI tags to select (comma-separated: classic, container, atomic)'
            cand --retries 'Retry each failing test case up to N more times, recording every attempt'
            cand --timeout 'Kill a test run (a playbook, or tmt), the install of the packages and a clone of a tests URL after this long (ERROR): seconds, or 90m, 4h, 1h30m; 0 for no limit'
            cand --max-pids 'Most processes and threads package code may run at once (default 1024, or fci.yaml''s limits.pids); past it the stage is FAILED'
            cand --max-memory 'Most memory package code may use, all its processes together (default 4GiB, or fci.yaml''s limits.memory); past it the stage is FAILED'
            cand --max-scratch 'Most scratch space package code may fill: its build or test directory and its tmpfs mounts; also the most the change''s RPMs may write when installed (test, compose) (default 8GiB, or fci.yaml''s limits.scratch); past it the stage is FAILED'
            cand -m 'Input manifest (''-'' for stdin)'
            cand --manifest 'Input manifest (''-'' for stdin)'
            cand -o 'Output manifest (''-'' for stdout), written atomically'
            cand --output 'Output manifest (''-'' for stdout), written atomically'
            cand --namespace 'The namespace of the run''s test names, messages and results (default fedora-ci.koji-build, or fci.yaml''s ci.namespace); fixed by the run''s first stage'
            cand --run-url 'The URL of the CI job running this stage (default: Jenkins'' BUILD_URL): the messages'' run.url and log links, the results'' ref_url'
            cand --artifacts-url 'The URL the workspace''s files are published under: logs are linked below it (default: fci.yaml''s ci.artifacts_url); fixed by the run''s first stage'
            cand --signing-key 'The pipeline''s ed25519 key (PKCS#8 PEM, as `openssl genpkey -algorithm ed25519` writes it) that signs the stage''s attestations; without one they are written unsigned. The file is read, never recorded'
            cand --builder-id 'The builder id the attestations name (SLSA''s runDetails.builder.id: who ran the work; default tag:fci,2026:builder/<host name>)'
            cand --workspace 'Workspace directory holding artifacts, logs, the cache and locks'
            cand --state 'The pipeline state shared between machines (known-good refs and package set, exclusions, image schedule, watch heads, waivers, the OSTree repository): a directory on a shared volume; else fci.yaml''s `state:` (of --config, or of the fci.yaml the manifest names); else the one the workspace recorded; else state/ inside it'
            cand --failed-only 'Rerun only the test cases that did not pass in the input manifest''s test stage'
            cand --network 'Let the tests reach the network'
            cand --no-cache 'Run even when the inputs match a recorded result'
            cand --force 'Run even when an earlier stage did not pass'
            cand -q 'No progress or summaries on stderr (errors are still printed)'
            cand --quiet 'No progress or summaries on stderr (errors are still printed)'
            cand -v 'Stream the stage''s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked'
            cand --verbose 'Stream the stage''s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'fci;integrate'= {
            cand --tests 'The integration tests: a directory or git URL holding tests/tests*.yml or tmt plans'
            cand --tests-ref 'Git ref of the tests, for a URL'
            cand --runner 'Which test formats to run'
            cand --tags 'STI tags to select (comma-separated: classic, container, atomic)'
            cand --retries 'Retry each failing test case up to N more times, recording every attempt'
            cand --timeout 'Kill a test run (a playbook, or tmt), the install of the packages and a clone of a tests URL after this long (ERROR): seconds, or 90m, 4h, 1h30m; 0 for no limit'
            cand --max-pids 'Most processes and threads package code may run at once (default 1024, or fci.yaml''s limits.pids); past it the stage is FAILED'
            cand --max-memory 'Most memory package code may use, all its processes together (default 4GiB, or fci.yaml''s limits.memory); past it the stage is FAILED'
            cand --max-scratch 'Most scratch space package code may fill: its build or test directory and its tmpfs mounts; also the most the change''s RPMs may write when installed (test, compose) (default 8GiB, or fci.yaml''s limits.scratch); past it the stage is FAILED'
            cand -m 'Input manifest (''-'' for stdin)'
            cand --manifest 'Input manifest (''-'' for stdin)'
            cand -o 'Output manifest (''-'' for stdout), written atomically'
            cand --output 'Output manifest (''-'' for stdout), written atomically'
            cand --namespace 'The namespace of the run''s test names, messages and results (default fedora-ci.koji-build, or fci.yaml''s ci.namespace); fixed by the run''s first stage'
            cand --run-url 'The URL of the CI job running this stage (default: Jenkins'' BUILD_URL): the messages'' run.url and log links, the results'' ref_url'
            cand --artifacts-url 'The URL the workspace''s files are published under: logs are linked below it (default: fci.yaml''s ci.artifacts_url); fixed by the run''s first stage'
            cand --signing-key 'The pipeline''s ed25519 key (PKCS#8 PEM, as `openssl genpkey -algorithm ed25519` writes it) that signs the stage''s attestations; without one they are written unsigned. The file is read, never recorded'
            cand --builder-id 'The builder id the attestations name (SLSA''s runDetails.builder.id: who ran the work; default tag:fci,2026:builder/<host name>)'
            cand --workspace 'Workspace directory holding artifacts, logs, the cache and locks'
            cand --state 'The pipeline state shared between machines (known-good refs and package set, exclusions, image schedule, watch heads, waivers, the OSTree repository): a directory on a shared volume; else fci.yaml''s `state:` (of --config, or of the fci.yaml the manifest names); else the one the workspace recorded; else state/ inside it'
            cand --network 'Let the tests reach the network'
            cand --no-cache 'Run even when the inputs match a recorded result'
            cand --force 'Run even when an earlier stage did not pass'
            cand -q 'No progress or summaries on stderr (errors are still printed)'
            cand --quiet 'No progress or summaries on stderr (errors are still printed)'
            cand -v 'Stream the stage''s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked'
            cand --verbose 'Stream the stage''s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'fci;conform'= {
            cand --kubeconfig 'An existing cluster''s kubeconfig (it must run the composed tree)'
            cand --installer 'A command that installs a cluster from the composed tree and leaves {kubeconfig}; its arguments end with '';'''
            cand --context 'The kubeconfig context to use (default: its current-context)'
            cand --install-timeout 'Kill the installer after this long (ERROR): seconds, or 90m, 4h, 1h30m; 0 for none'
            cand --ready-timeout 'How long to wait for the API server''s /readyz to answer 200 (ERROR after): seconds, or 90s, 10m'
            cand --runner 'The conformance runner'
            cand --mode 'sonobuoy''s --mode'
            cand --runner-cmd 'Any other runner: a command that writes JUnit files into {junit_dir}; its arguments end with '';'' (instead of --runner)'
            cand --timeout 'Kill the conformance runner after this long (ERROR): seconds, or 90m, 4h, 1h30m; 0 for none'
            cand --teardown 'A command run at the end whatever happened (also after a failure, an ERROR or Ctrl-C), e.g. to destroy the cluster; its arguments end with '';'''
            cand --teardown-timeout 'Kill the teardown after this long: seconds, or 90m, 4h, 1h30m; 0 for none'
            cand -m 'Input manifest (''-'' for stdin)'
            cand --manifest 'Input manifest (''-'' for stdin)'
            cand -o 'Output manifest (''-'' for stdout), written atomically'
            cand --output 'Output manifest (''-'' for stdout), written atomically'
            cand --namespace 'The namespace of the run''s test names, messages and results (default fedora-ci.koji-build, or fci.yaml''s ci.namespace); fixed by the run''s first stage'
            cand --run-url 'The URL of the CI job running this stage (default: Jenkins'' BUILD_URL): the messages'' run.url and log links, the results'' ref_url'
            cand --artifacts-url 'The URL the workspace''s files are published under: logs are linked below it (default: fci.yaml''s ci.artifacts_url); fixed by the run''s first stage'
            cand --signing-key 'The pipeline''s ed25519 key (PKCS#8 PEM, as `openssl genpkey -algorithm ed25519` writes it) that signs the stage''s attestations; without one they are written unsigned. The file is read, never recorded'
            cand --builder-id 'The builder id the attestations name (SLSA''s runDetails.builder.id: who ran the work; default tag:fci,2026:builder/<host name>)'
            cand --workspace 'Workspace directory holding artifacts, logs, the cache and locks'
            cand --state 'The pipeline state shared between machines (known-good refs and package set, exclusions, image schedule, watch heads, waivers, the OSTree repository): a directory on a shared volume; else fci.yaml''s `state:` (of --config, or of the fci.yaml the manifest names); else the one the workspace recorded; else state/ inside it'
            cand --no-cache 'Run even when the inputs match a recorded result'
            cand --force 'Run even when an earlier stage did not pass'
            cand -q 'No progress or summaries on stderr (errors are still printed)'
            cand --quiet 'No progress or summaries on stderr (errors are still printed)'
            cand -v 'Stream the stage''s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked'
            cand --verbose 'Stream the stage''s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'fci;image'= {
            cand --format 'Disk image format'
            cand --interval 'Make an image at most this often per branch (seconds, or 90m, 6h, 1d12h; 0: every run); a run before then is SKIPPED saying when the next is due, and exits 0. --force images'
            cand --size 'The disk''s virtual size in MiB (default: twice the deployment, at least 256)'
            cand --karg 'An extra kernel argument for the deployment (repeatable); the defaults are root=/dev/vda rw console=ttyS0 panic=-1'
            cand --os 'The deployment''s OS name (the stateroot under /ostree/deploy)'
            cand --timeout 'Kill the image build after this long (ERROR): seconds, or 90m, 4h, 1h30m; 0 for no limit'
            cand -m 'Input manifest (''-'' for stdin)'
            cand --manifest 'Input manifest (''-'' for stdin)'
            cand -o 'Output manifest (''-'' for stdout), written atomically'
            cand --output 'Output manifest (''-'' for stdout), written atomically'
            cand --namespace 'The namespace of the run''s test names, messages and results (default fedora-ci.koji-build, or fci.yaml''s ci.namespace); fixed by the run''s first stage'
            cand --run-url 'The URL of the CI job running this stage (default: Jenkins'' BUILD_URL): the messages'' run.url and log links, the results'' ref_url'
            cand --artifacts-url 'The URL the workspace''s files are published under: logs are linked below it (default: fci.yaml''s ci.artifacts_url); fixed by the run''s first stage'
            cand --signing-key 'The pipeline''s ed25519 key (PKCS#8 PEM, as `openssl genpkey -algorithm ed25519` writes it) that signs the stage''s attestations; without one they are written unsigned. The file is read, never recorded'
            cand --builder-id 'The builder id the attestations name (SLSA''s runDetails.builder.id: who ran the work; default tag:fci,2026:builder/<host name>)'
            cand --workspace 'Workspace directory holding artifacts, logs, the cache and locks'
            cand --state 'The pipeline state shared between machines (known-good refs and package set, exclusions, image schedule, watch heads, waivers, the OSTree repository): a directory on a shared volume; else fci.yaml''s `state:` (of --config, or of the fci.yaml the manifest names); else the one the workspace recorded; else state/ inside it'
            cand --no-cache 'Run even when the inputs match a recorded result'
            cand --force 'Run even when an earlier stage did not pass'
            cand -q 'No progress or summaries on stderr (errors are still printed)'
            cand --quiet 'No progress or summaries on stderr (errors are still printed)'
            cand -v 'Stream the stage''s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked'
            cand --verbose 'Stream the stage''s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'fci;smoke'= {
            cand --check 'A command the booted guest runs (repeatable, one test case each); it passes when the command exits 0, e.g. --check hello-atomic'
            cand --accel 'The accelerator: auto uses KVM only when a probe boot showed it works on this host'
            cand --memory 'Guest memory in MiB'
            cand --timeout 'Kill the guest after this long (FAILED: it did not finish booting and checking): seconds, or 90s, 5m, 1h'
            cand -m 'Input manifest (''-'' for stdin)'
            cand --manifest 'Input manifest (''-'' for stdin)'
            cand -o 'Output manifest (''-'' for stdout), written atomically'
            cand --output 'Output manifest (''-'' for stdout), written atomically'
            cand --namespace 'The namespace of the run''s test names, messages and results (default fedora-ci.koji-build, or fci.yaml''s ci.namespace); fixed by the run''s first stage'
            cand --run-url 'The URL of the CI job running this stage (default: Jenkins'' BUILD_URL): the messages'' run.url and log links, the results'' ref_url'
            cand --artifacts-url 'The URL the workspace''s files are published under: logs are linked below it (default: fci.yaml''s ci.artifacts_url); fixed by the run''s first stage'
            cand --signing-key 'The pipeline''s ed25519 key (PKCS#8 PEM, as `openssl genpkey -algorithm ed25519` writes it) that signs the stage''s attestations; without one they are written unsigned. The file is read, never recorded'
            cand --builder-id 'The builder id the attestations name (SLSA''s runDetails.builder.id: who ran the work; default tag:fci,2026:builder/<host name>)'
            cand --workspace 'Workspace directory holding artifacts, logs, the cache and locks'
            cand --state 'The pipeline state shared between machines (known-good refs and package set, exclusions, image schedule, watch heads, waivers, the OSTree repository): a directory on a shared volume; else fci.yaml''s `state:` (of --config, or of the fci.yaml the manifest names); else the one the workspace recorded; else state/ inside it'
            cand --no-cache 'Run even when the inputs match a recorded result'
            cand --force 'Run even when an earlier stage did not pass'
            cand -q 'No progress or summaries on stderr (errors are still printed)'
            cand --quiet 'No progress or summaries on stderr (errors are still printed)'
            cand -v 'Stream the stage''s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked'
            cand --verbose 'Stream the stage''s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'fci;gating'= {
            cand --workspace 'Workspace directory holding artifacts, logs, the cache and locks'
            cand --state 'The pipeline state shared between machines (known-good refs and package set, exclusions, image schedule, watch heads, waivers, the OSTree repository): a directory on a shared volume; else fci.yaml''s `state:` (of --config, or of the fci.yaml the manifest names); else the one the workspace recorded; else state/ inside it'
            cand -q 'No progress or summaries on stderr (errors are still printed)'
            cand --quiet 'No progress or summaries on stderr (errors are still printed)'
            cand -v 'Stream the stage''s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked'
            cand --verbose 'Stream the stage''s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked'
            cand -h 'Print help'
            cand --help 'Print help'
            cand decide 'Decide offline, as Greenwave does, from a gating.yaml, results and waivers; print the decision JSON'
            cand validate 'Check a gating.yaml alone, as Greenwave''s validate-gating-yaml does; print {"message": ...}'
            cand waive 'Waive (or with --revoke, unwaive) a test case for a subject, in the workspace, for every later decision there, and with --waiverdb-url in WaiverDB; print the waiver'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'fci;gating;decide'= {
            cand --gating 'The package''s gating.yaml (Greenwave''s remote policy format)'
            cand --results 'ResultsDB results: a JSON list of POST bodies or `GET /results` items, or a whole `GET /results` answer (any order: they are taken by submit time and id)'
            cand --waivers 'WaiverDB waivers as a JSON list (any order: they are taken by timestamp and id), or a whole `GET /waivers/` answer'
            cand --decision-context 'The gating point(s) to decide for (repeatable), e.g. bodhi_update_push_stable'
            cand --product-version 'The product version, e.g. fedora-41'
            cand --subject-type 'The subject''s type'
            cand --subject-identifier 'The subject, e.g. an NVR for koji_build'
            cand --waiverdb-url 'WaiverDB (its root or /api/v1.0): waivers are posted there (spooled when it cannot be reached) and decisions read the subject''s waivers from it'
            cand --waiverdb-token-file 'A file holding the WaiverDB token (`user:password` for HTTP Basic); or set FCI_WAIVERDB_TOKEN. Never printed or recorded'
            cand --workspace 'Workspace directory holding artifacts, logs, the cache and locks'
            cand --state 'The pipeline state shared between machines (known-good refs and package set, exclusions, image schedule, watch heads, waivers, the OSTree repository): a directory on a shared volume; else fci.yaml''s `state:` (of --config, or of the fci.yaml the manifest names); else the one the workspace recorded; else state/ inside it'
            cand -q 'No progress or summaries on stderr (errors are still printed)'
            cand --quiet 'No progress or summaries on stderr (errors are still printed)'
            cand -v 'Stream the stage''s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked'
            cand --verbose 'Stream the stage''s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'fci;gating;validate'= {
            cand --gating 'The gating.yaml to check'
            cand --workspace 'Workspace directory holding artifacts, logs, the cache and locks'
            cand --state 'The pipeline state shared between machines (known-good refs and package set, exclusions, image schedule, watch heads, waivers, the OSTree repository): a directory on a shared volume; else fci.yaml''s `state:` (of --config, or of the fci.yaml the manifest names); else the one the workspace recorded; else state/ inside it'
            cand -q 'No progress or summaries on stderr (errors are still printed)'
            cand --quiet 'No progress or summaries on stderr (errors are still printed)'
            cand -v 'Stream the stage''s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked'
            cand --verbose 'Stream the stage''s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'fci;gating;waive'= {
            cand --comment 'Why (WaiverDB requires it)'
            cand --scenario 'Only this scenario'
            cand --username 'Who waives (default $USER; sent to WaiverDB as `username`, a proxy request, only when given)'
            cand --gating 'The package''s gating.yaml: the test cases it requires are known test cases too'
            cand --resultsdb-url 'A ResultsDB (its root or /api/v2.0) whose results for the subject are known test cases too'
            cand --product-version 'The product version, e.g. fedora-41'
            cand --subject-type 'The subject''s type'
            cand --subject-identifier 'The subject, e.g. an NVR for koji_build'
            cand --waiverdb-url 'WaiverDB (its root or /api/v1.0): waivers are posted there (spooled when it cannot be reached) and decisions read the subject''s waivers from it'
            cand --waiverdb-token-file 'A file holding the WaiverDB token (`user:password` for HTTP Basic); or set FCI_WAIVERDB_TOKEN. Never printed or recorded'
            cand --workspace 'Workspace directory holding artifacts, logs, the cache and locks'
            cand --state 'The pipeline state shared between machines (known-good refs and package set, exclusions, image schedule, watch heads, waivers, the OSTree repository): a directory on a shared volume; else fci.yaml''s `state:` (of --config, or of the fci.yaml the manifest names); else the one the workspace recorded; else state/ inside it'
            cand --revoke 'Record `waived: false`, revoking earlier waivers'
            cand --force 'Store the waiver even for a test case no policy requires and no result has'
            cand -q 'No progress or summaries on stderr (errors are still printed)'
            cand --quiet 'No progress or summaries on stderr (errors are still printed)'
            cand -v 'Stream the stage''s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked'
            cand --verbose 'Stream the stage''s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'fci;gating;help'= {
            cand decide 'Decide offline, as Greenwave does, from a gating.yaml, results and waivers; print the decision JSON'
            cand validate 'Check a gating.yaml alone, as Greenwave''s validate-gating-yaml does; print {"message": ...}'
            cand waive 'Waive (or with --revoke, unwaive) a test case for a subject, in the workspace, for every later decision there, and with --waiverdb-url in WaiverDB; print the waiver'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'fci;gating;help;decide'= {
        }
        &'fci;gating;help;validate'= {
        }
        &'fci;gating;help;waive'= {
        }
        &'fci;gating;help;help'= {
        }
        &'fci;base'= {
            cand --workspace 'Workspace directory holding artifacts, logs, the cache and locks'
            cand --state 'The pipeline state shared between machines (known-good refs and package set, exclusions, image schedule, watch heads, waivers, the OSTree repository): a directory on a shared volume; else fci.yaml''s `state:` (of --config, or of the fci.yaml the manifest names); else the one the workspace recorded; else state/ inside it'
            cand -q 'No progress or summaries on stderr (errors are still printed)'
            cand --quiet 'No progress or summaries on stderr (errors are still printed)'
            cand -v 'Stream the stage''s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked'
            cand --verbose 'Stream the stage''s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked'
            cand -h 'Print help'
            cand --help 'Print help'
            cand init 'Commit a tree (a directory, or a tarball) as a branch''s first known-good base; print its checksum'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'fci;base;init'= {
            cand --branch 'The dist-git branch whose base it is: its ref is fci/<BRANCH>/known-good'
            cand --ostree-repo 'A shared OSTree repository (absolute path) for this workspace''s pipeline, as for `fci compose` (env FCI_OSTREE_REPO; empty means unset)'
            cand --workspace 'Workspace directory holding artifacts, logs, the cache and locks'
            cand --state 'The pipeline state shared between machines (known-good refs and package set, exclusions, image schedule, watch heads, waivers, the OSTree repository): a directory on a shared volume; else fci.yaml''s `state:` (of --config, or of the fci.yaml the manifest names); else the one the workspace recorded; else state/ inside it'
            cand -q 'No progress or summaries on stderr (errors are still printed)'
            cand --quiet 'No progress or summaries on stderr (errors are still printed)'
            cand -v 'Stream the stage''s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked'
            cand --verbose 'Stream the stage''s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'fci;base;help'= {
            cand init 'Commit a tree (a directory, or a tarball) as a branch''s first known-good base; print its checksum'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'fci;base;help;init'= {
        }
        &'fci;base;help;help'= {
        }
        &'fci;bundle'= {
            cand -m 'The run''s manifest (`-` for stdin)'
            cand --manifest 'The run''s manifest (`-` for stdin)'
            cand -o 'The bundle to write (a tar file)'
            cand --output 'The bundle to write (a tar file)'
            cand --workspace 'Workspace directory holding artifacts, logs, the cache and locks'
            cand --state 'The pipeline state shared between machines (known-good refs and package set, exclusions, image schedule, watch heads, waivers, the OSTree repository): a directory on a shared volume; else fci.yaml''s `state:` (of --config, or of the fci.yaml the manifest names); else the one the workspace recorded; else state/ inside it'
            cand -q 'No progress or summaries on stderr (errors are still printed)'
            cand --quiet 'No progress or summaries on stderr (errors are still printed)'
            cand -v 'Stream the stage''s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked'
            cand --verbose 'Stream the stage''s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'fci;unbundle'= {
            cand -o 'The manifest to write, its paths as this workspace knows them (`-` for stdout)'
            cand --output 'The manifest to write, its paths as this workspace knows them (`-` for stdout)'
            cand --workspace 'Workspace directory holding artifacts, logs, the cache and locks'
            cand --state 'The pipeline state shared between machines (known-good refs and package set, exclusions, image schedule, watch heads, waivers, the OSTree repository): a directory on a shared volume; else fci.yaml''s `state:` (of --config, or of the fci.yaml the manifest names); else the one the workspace recorded; else state/ inside it'
            cand -q 'No progress or summaries on stderr (errors are still printed)'
            cand --quiet 'No progress or summaries on stderr (errors are still printed)'
            cand -v 'Stream the stage''s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked'
            cand --verbose 'Stream the stage''s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'fci;fsck'= {
            cand -m 'A run''s manifest to check too: it parses and each artifact it names verifies (repeat for several)'
            cand --manifest 'A run''s manifest to check too: it parses and each artifact it names verifies (repeat for several)'
            cand --workspace 'Workspace directory holding artifacts, logs, the cache and locks'
            cand --state 'The pipeline state shared between machines (known-good refs and package set, exclusions, image schedule, watch heads, waivers, the OSTree repository): a directory on a shared volume; else fci.yaml''s `state:` (of --config, or of the fci.yaml the manifest names); else the one the workspace recorded; else state/ inside it'
            cand --no-ostree 'Skip `ostree fsck` of the OSTree repository (slow on a large repository); its known-good refs are still checked'
            cand --repair 'Remove what crashes left (debris) and complete interrupted promotions; damage is left as it is'
            cand -q 'No progress or summaries on stderr (errors are still printed)'
            cand --quiet 'No progress or summaries on stderr (errors are still printed)'
            cand -v 'Stream the stage''s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked'
            cand --verbose 'Stream the stage''s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'fci;gc'= {
            cand --config 'The pipeline''s fci.yaml, whose `gc:` section is the policy (the flags override it)'
            cand --keep-runs 'Keep at most the N newest runs (besides the known-good''s, those queued for a retest and those within the grace period)'
            cand --max-age 'Remove runs whose last record is older than this (14d, 36h)'
            cand --max-size 'Drop the oldest runs until the workspace and state take at most this (20G, 500M)'
            cand --grace 'Always keep a run whose last record is younger than this: its next stage may be about to start (default 1h)'
            cand --ostree-depth 'Commits of each kept OSTree ref''s history to keep (default 10)'
            cand --workspace 'Workspace directory holding artifacts, logs, the cache and locks'
            cand --state 'The pipeline state shared between machines (known-good refs and package set, exclusions, image schedule, watch heads, waivers, the OSTree repository): a directory on a shared volume; else fci.yaml''s `state:` (of --config, or of the fci.yaml the manifest names); else the one the workspace recorded; else state/ inside it'
            cand --dry-run 'List what would be removed, with its size, and remove nothing'
            cand --json 'Print the summary as JSON on stdout too'
            cand -q 'No progress or summaries on stderr (errors are still printed)'
            cand --quiet 'No progress or summaries on stderr (errors are still printed)'
            cand -v 'Stream the stage''s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked'
            cand --verbose 'Stream the stage''s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'fci;verify'= {
            cand -m 'The run''s manifest: its attestations are the evidence (default: every attestation in the workspace''s object store)'
            cand --manifest 'The run''s manifest: its attestations are the evidence (default: every attestation in the workspace''s object store)'
            cand --key 'A trusted public key (SPKI PEM, as `openssl pkey -pubout` writes it); repeat for several'
            cand --require 'The policy''s rules, comma-separated: check, test, integrate, conform, smoke, gate (or none)'
            cand --workspace 'Workspace directory holding artifacts, logs, the cache and locks'
            cand --state 'The pipeline state shared between machines (known-good refs and package set, exclusions, image schedule, watch heads, waivers, the OSTree repository): a directory on a shared volume; else fci.yaml''s `state:` (of --config, or of the fci.yaml the manifest names); else the one the workspace recorded; else state/ inside it'
            cand --json 'Print the result as JSON instead of a tree'
            cand -q 'No progress or summaries on stderr (errors are still printed)'
            cand --quiet 'No progress or summaries on stderr (errors are still printed)'
            cand -v 'Stream the stage''s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked'
            cand --verbose 'Stream the stage''s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'fci;completions'= {
            cand --workspace 'Workspace directory holding artifacts, logs, the cache and locks'
            cand --state 'The pipeline state shared between machines (known-good refs and package set, exclusions, image schedule, watch heads, waivers, the OSTree repository): a directory on a shared volume; else fci.yaml''s `state:` (of --config, or of the fci.yaml the manifest names); else the one the workspace recorded; else state/ inside it'
            cand -q 'No progress or summaries on stderr (errors are still printed)'
            cand --quiet 'No progress or summaries on stderr (errors are still printed)'
            cand -v 'Stream the stage''s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked'
            cand --verbose 'Stream the stage''s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'fci;compose'= {
            cand --branch 'The dist-git branch whose known-good base to compose on (default: the subject''s)'
            cand --ostree-repo 'A shared OSTree repository (absolute path) for this workspace''s pipeline, instead of the workspace''s own `ostree/repo`; recorded in the workspace, so later stages find it (env FCI_OSTREE_REPO; empty means unset)'
            cand --timeout 'Kill the compose after this long (ERROR): seconds, or 90m, 4h, 1h30m; 0 for no limit'
            cand --max-pids 'Most processes and threads package code may run at once (default 1024, or fci.yaml''s limits.pids); past it the stage is FAILED'
            cand --max-memory 'Most memory package code may use, all its processes together (default 4GiB, or fci.yaml''s limits.memory); past it the stage is FAILED'
            cand --max-scratch 'Most scratch space package code may fill: its build or test directory and its tmpfs mounts; also the most the change''s RPMs may write when installed (test, compose) (default 8GiB, or fci.yaml''s limits.scratch); past it the stage is FAILED'
            cand -m 'Input manifest (''-'' for stdin)'
            cand --manifest 'Input manifest (''-'' for stdin)'
            cand -o 'Output manifest (''-'' for stdout), written atomically'
            cand --output 'Output manifest (''-'' for stdout), written atomically'
            cand --namespace 'The namespace of the run''s test names, messages and results (default fedora-ci.koji-build, or fci.yaml''s ci.namespace); fixed by the run''s first stage'
            cand --run-url 'The URL of the CI job running this stage (default: Jenkins'' BUILD_URL): the messages'' run.url and log links, the results'' ref_url'
            cand --artifacts-url 'The URL the workspace''s files are published under: logs are linked below it (default: fci.yaml''s ci.artifacts_url); fixed by the run''s first stage'
            cand --signing-key 'The pipeline''s ed25519 key (PKCS#8 PEM, as `openssl genpkey -algorithm ed25519` writes it) that signs the stage''s attestations; without one they are written unsigned. The file is read, never recorded'
            cand --builder-id 'The builder id the attestations name (SLSA''s runDetails.builder.id: who ran the work; default tag:fci,2026:builder/<host name>)'
            cand --workspace 'Workspace directory holding artifacts, logs, the cache and locks'
            cand --state 'The pipeline state shared between machines (known-good refs and package set, exclusions, image schedule, watch heads, waivers, the OSTree repository): a directory on a shared volume; else fci.yaml''s `state:` (of --config, or of the fci.yaml the manifest names); else the one the workspace recorded; else state/ inside it'
            cand --no-cache 'Run even when the inputs match a recorded result'
            cand --force 'Run even when an earlier stage did not pass'
            cand -q 'No progress or summaries on stderr (errors are still printed)'
            cand --quiet 'No progress or summaries on stderr (errors are still printed)'
            cand -v 'Stream the stage''s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked'
            cand --verbose 'Stream the stage''s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'fci;report'= {
            cand --gating 'The package''s gating.yaml to evaluate (Greenwave''s remote policy format)'
            cand --waivers 'WaiverDB waivers as a JSON list, oldest first, besides the workspace''s own (from `fci gating waive`)'
            cand --decision-context 'The gating point(s) to decide for (repeatable), e.g. bodhi_update_push_stable'
            cand --product-version 'The product version, e.g. fedora-41 (default from the manifest''s branch)'
            cand --subject-type 'The subject''s type'
            cand --subject-identifier 'The subject, e.g. an NVR for koji_build (default: the manifest''s source package NVR)'
            cand --require-stages 'With --promote: the stages the pipeline runs for every change (comma-separated, e.g. build,test,compose,integrate,image,smoke): a run without a record of each (a stage killed, timed out by the scheduler or never started) is neither promoted nor excluded but ERROR, to be rerun: its missing results are not the package''s failure'
            cand --resultsdb-url 'Also post the results to this ResultsDB (its root or /api/v2.0, no query); what cannot be delivered is spooled in the workspace and delivered by the next report'
            cand --amqp-url 'Also publish the messages to this AMQP broker (amqp://user:password@host:port/vhost), as fedora-messaging does; unconfirmed ones are spooled and sent by the next report'
            cand --resultsdb-jobs 'How many results are posted at once'
            cand --resultsdb-token-file 'A file holding the ResultsDB token (`user:password` for HTTP Basic); or set FCI_RESULTSDB_TOKEN. Never printed or recorded'
            cand --html 'Also write the run, with the gating decision, as one self-contained HTML page'
            cand --junit 'Also write the run''s results as a JUnit report (for Jenkins'' junit step): a test suite per stage, a test case per result'
            cand --waiverdb-url 'WaiverDB (its root or /api/v1.0): waivers are posted there (spooled when it cannot be reached) and decisions read the subject''s waivers from it'
            cand --waiverdb-token-file 'A file holding the WaiverDB token (`user:password` for HTTP Basic); or set FCI_WAIVERDB_TOKEN. Never printed or recorded'
            cand -m 'Input manifest (''-'' for stdin)'
            cand --manifest 'Input manifest (''-'' for stdin)'
            cand -o 'Output manifest (''-'' for stdout), written atomically'
            cand --output 'Output manifest (''-'' for stdout), written atomically'
            cand --namespace 'The namespace of the run''s test names, messages and results (default fedora-ci.koji-build, or fci.yaml''s ci.namespace); fixed by the run''s first stage'
            cand --run-url 'The URL of the CI job running this stage (default: Jenkins'' BUILD_URL): the messages'' run.url and log links, the results'' ref_url'
            cand --artifacts-url 'The URL the workspace''s files are published under: logs are linked below it (default: fci.yaml''s ci.artifacts_url); fixed by the run''s first stage'
            cand --signing-key 'The pipeline''s ed25519 key (PKCS#8 PEM, as `openssl genpkey -algorithm ed25519` writes it) that signs the stage''s attestations; without one they are written unsigned. The file is read, never recorded'
            cand --builder-id 'The builder id the attestations name (SLSA''s runDetails.builder.id: who ran the work; default tag:fci,2026:builder/<host name>)'
            cand --workspace 'Workspace directory holding artifacts, logs, the cache and locks'
            cand --state 'The pipeline state shared between machines (known-good refs and package set, exclusions, image schedule, watch heads, waivers, the OSTree repository): a directory on a shared volume; else fci.yaml''s `state:` (of --config, or of the fci.yaml the manifest names); else the one the workspace recorded; else state/ inside it'
            cand --promote 'With --gating: decided on this run''s own checked records only; a satisfied decision makes the change the branch''s known-good base (its composed commit, when there is one); an unsatisfied one excludes the change'
            cand --summary 'Print the run''s table (stage, outcome, seconds, failing tests or log) even with --quiet'
            cand --no-cache 'Run even when the inputs match a recorded result'
            cand --force 'Run even when an earlier stage did not pass'
            cand -q 'No progress or summaries on stderr (errors are still printed)'
            cand --quiet 'No progress or summaries on stderr (errors are still printed)'
            cand -v 'Stream the stage''s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked'
            cand --verbose 'Stream the stage''s log live to stderr (every command it runs and their output, as mock does), escaped and with secrets masked'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'fci;help'= {
            cand watch 'Watch the monitored packages'' dist-git branches; one manifest per new commit'
            cand build 'Build the SRPM and binary RPMs of a dist-git checkout (%check runs)'
            cand test 'Run the package''s STI and tmt tests against the RPMs just built'
            cand integrate 'Run the pipeline''s OS-level tests against the composed commit'
            cand conform 'Install or reach a cluster running the composed tree and run the Kubernetes conformance suite'
            cand image 'Make a disk image (qcow2 or raw) of an OSTree deployment of the composed commit'
            cand smoke 'Boot the image in qemu and check that the composed commit runs'
            cand gating 'Gating without a run: decide from files, check a gating.yaml, waive a test case'
            cand base 'The known-good OSTree base composes build on: make a branch''s first one'
            cand bundle 'Write a run''s manifest and exactly the artifacts and logs it references to one file'
            cand unbundle 'Bring a bundle into this workspace (every digest verified first) and write its manifest'
            cand fsck 'Check the workspace and the pipeline state for damage (0 clean, 1 damage found)'
            cand gc 'Remove what no recent run, known-good base or queued retest needs (objects, cache, old records, OSTree refs)'
            cand verify 'Check an image''s, commit''s or RPM''s signed chain back to its dist-git commit, and the policy'
            cand completions 'Print shell completions (bash, zsh, fish, elvish, powershell)'
            cand compose 'Commit the known-good OSTree base plus the change''s RPMs (only when build and test passed)'
            cand report 'Record the run''s results and decide its gating (with --gating; --promote acts on it)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'fci;help;watch'= {
        }
        &'fci;help;build'= {
        }
        &'fci;help;test'= {
        }
        &'fci;help;integrate'= {
        }
        &'fci;help;conform'= {
        }
        &'fci;help;image'= {
        }
        &'fci;help;smoke'= {
        }
        &'fci;help;gating'= {
            cand decide 'Decide offline, as Greenwave does, from a gating.yaml, results and waivers; print the decision JSON'
            cand validate 'Check a gating.yaml alone, as Greenwave''s validate-gating-yaml does; print {"message": ...}'
            cand waive 'Waive (or with --revoke, unwaive) a test case for a subject, in the workspace, for every later decision there, and with --waiverdb-url in WaiverDB; print the waiver'
        }
        &'fci;help;gating;decide'= {
        }
        &'fci;help;gating;validate'= {
        }
        &'fci;help;gating;waive'= {
        }
        &'fci;help;base'= {
            cand init 'Commit a tree (a directory, or a tarball) as a branch''s first known-good base; print its checksum'
        }
        &'fci;help;base;init'= {
        }
        &'fci;help;bundle'= {
        }
        &'fci;help;unbundle'= {
        }
        &'fci;help;fsck'= {
        }
        &'fci;help;gc'= {
        }
        &'fci;help;verify'= {
        }
        &'fci;help;completions'= {
        }
        &'fci;help;compose'= {
        }
        &'fci;help;report'= {
        }
        &'fci;help;help'= {
        }
    ]
    $completions[$command]
}
