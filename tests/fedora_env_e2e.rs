//! fci's Fedora build environment for the rpmbuild backend, end to end: real Fedora spec
//! idioms through the real `fci` binary and Debian's rpmbuild.

mod common;
use common::*;
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

/// The tools these tests run: `Ws::new` fails naming any that is missing.
const NEEDS: Needs = &[tool::BUILD];

/// The workspace paths of the binary RPMs a build recorded.
fn binary_rpms(w: &Ws, m: &Value) -> Vec<PathBuf> {
    m["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["type"] == "rpm")
        .map(|a| w.ws().join(a["path"].as_str().unwrap()))
        .collect()
}

/// What rpm itself says about a package file (`rpm -qp ARGS FILE`).
fn rpm_query(args: &[&str], rpm: &PathBuf) -> String {
    let out = Command::new("rpm")
        .arg("-qp")
        .args(args)
        .arg(rpm)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "rpm -qp {args:?} {}: {}",
        rpm.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The text of the build stage's log.
fn build_log(w: &Ws, r: &Run) -> String {
    let m = r.manifest();
    let log = r.stage(&m, "build")["log"].as_str().unwrap().to_string();
    std::fs::read_to_string(w.ws().join(log)).unwrap()
}

#[test]
fn a_fedora_c_library_spec_builds_with_fedoras_macros_and_compressed_man_pages() {
    let w = Ws::new();
    let r = w.build_fixture("libfoo", &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = r.manifest();
    let b = r.stage(&m, "build");
    assert_eq!(b["outcome"], "PASSED", "{b}");
    assert_eq!(
        results(b),
        vec![
            ("build.check".to_string(), "PASSED".to_string()),
            ("rpmlint".to_string(), "INFO".to_string())
        ]
    );

    let rpms = binary_rpms(&w, &m);
    let by_name = |n: &str| {
        rpms.iter()
            .find(|p| rpm_query(&["--qf", "%{NAME}"], p) == n)
            .unwrap_or_else(|| panic!("no {n} among {rpms:?}"))
    };
    let (lib, devel) = (by_name("libfoo"), by_name("libfoo-devel"));
    let lib_files = rpm_query(&["-l"], lib);
    let devel_files = rpm_query(&["-l"], devel);
    let lib_list: Vec<&str> = lib_files.lines().collect();
    let devel_list: Vec<&str> = devel_files.lines().collect();
    // Fedora's %_libdir; man pages gzipped by the brp step, so `foo.3.*` matched.
    for f in [
        "/usr/lib64/libfoo.so.1",
        "/usr/lib64/libfoo.so.1.0",
        "/usr/bin/foo-hello",
        "/usr/share/man/man1/foo-hello.1.gz",
        "/usr/share/man/man3/foo.3.gz",
        "/usr/share/doc/libfoo/README",
        "/usr/share/licenses/libfoo/LICENSE",
    ] {
        assert!(lib_list.contains(&f), "{f} not in libfoo:\n{lib_files}");
    }
    for f in [
        "/usr/include/foo.h",
        "/usr/lib64/libfoo.so",
        "/usr/share/man/man3/foo_greeting.3.gz",
    ] {
        assert!(
            devel_list.contains(&f),
            "{f} not in libfoo-devel:\n{devel_files}"
        );
    }
    // The %exclude kept the overview page in the library package only.
    assert!(!devel_list.contains(&"/usr/share/man/man3/foo.3.gz"));
    for f in lib_list.iter().chain(&devel_list) {
        if f.starts_with("/usr/share/man/man") && f.matches('/').count() == 5 {
            assert!(f.ends_with(".gz"), "uncompressed man page {f}");
        }
        // `rm -f %{buildroot}%{_libdir}/*.{l,}a` ran under bash.
        assert!(
            !f.ends_with(".a") && !f.ends_with(".la"),
            "{f} was packaged"
        );
    }
    // As on Fedora since glibc's file triggers: %ldconfig_scriptlets adds no scriptlet.
    assert_eq!(rpm_query(&["--scripts"], lib).trim(), "");

    // The link line got Fedora-style flags, not the text of %{__global_ldflags}.
    let log = build_log(&w, &r);
    let link = log
        .lines()
        .find(|l| l.starts_with("gcc ") && l.contains("-shared"))
        .unwrap_or_else(|| panic!("no link line in the log:\n{log}"));
    assert!(
        link.contains("-Wl,-z,relro") && link.contains("-Wl,-z,now"),
        "{link}"
    );
    assert!(link.contains("-D_FORTIFY_SOURCE=3"), "{link}");
    for l in log.lines().filter(|l| l.starts_with("gcc ")) {
        assert!(
            !l.contains('%'),
            "a macro reached the compiler unexpanded: {l}"
        );
    }
}

#[test]
fn an_undefined_macro_in_the_real_build_log_is_named_by_diagnose() {
    let w = Ws::new();
    let r = w.build_fixture("undefined-macro", &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let m = r.manifest();
    assert_eq!(r.stage(&m, "build")["outcome"], "FAILED");
    let log = build_log(&w, &r);
    assert_eq!(
        fci::stages::build::fedora_env::diagnose(&log).as_deref(),
        Some(
            "the build used `%cargo_build`, which is not defined here (a macro from a package \
             the host lacks)"
        ),
        "{log}"
    );
}

#[test]
fn a_missing_program_in_the_real_build_log_is_named_by_diagnose() {
    let w = Ws::new();
    let r = w.build_fixture("missing-tool", &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let log = build_log(&w, &r);
    assert_eq!(
        fci::stages::build::fedora_env::diagnose(&log).as_deref(),
        Some(
            "the build needs `fci-absent-generator`, which is not installed on this host (an \
             environment failure, not the package's)"
        ),
        "{log}"
    );
    // A package that builds says nothing of the kind.
    let good = w.build_fixture("libfoo", &[]);
    assert_eq!(good.code, 0, "{}", good.stderr);
    assert_eq!(
        fci::stages::build::fedora_env::diagnose(&build_log(&w, &good)),
        None
    );
}

#[test]
fn an_undefined_macro_fails_the_build_with_a_note_that_says_so() {
    let w = Ws::new();
    let r = w.build_fixture("undefined-macro", &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let m = r.manifest();
    let b = r.stage(&m, "build");
    assert_eq!(b["outcome"], "FAILED");
    let notes = b["notes"].to_string();
    assert!(
        notes.contains(
            "the build used `%cargo_build`, which is not defined here (a macro from a package \
             the host lacks)"
        ),
        "{b}"
    );
}

/// The binary RPM of that name among those a build recorded.
fn rpm_named<'a>(rpms: &'a [PathBuf], name: &str) -> &'a PathBuf {
    rpms.iter()
        .find(|p| rpm_query(&["--qf", "%{NAME}"], p) == name)
        .unwrap_or_else(|| panic!("no {name} among {rpms:?}"))
}

/// The `CFLAGS: ...` line the fixture's %build echoes.
fn cflags_of(log: &str) -> &str {
    log.lines()
        .find(|l| l.starts_with("CFLAGS: "))
        .unwrap_or_else(|| panic!("no CFLAGS line in the log:\n{log}"))
}

/// One file of a package's payload, as bytes (rpm2cpio | cpio).
fn payload_file(rpm: &PathBuf, file: &str, into: &std::path::Path) -> PathBuf {
    std::fs::create_dir_all(into).unwrap();
    let st = Command::new("sh")
        .arg("-c")
        .arg("rpm2cpio \"$1\" | cpio -id --quiet \"$2\"")
        .arg("sh")
        .arg(rpm)
        .arg(format!(".{file}"))
        .current_dir(into)
        .status()
        .unwrap();
    assert!(st.success());
    into.join(file.trim_start_matches('/'))
}

#[test]
fn a_systemd_service_spec_gets_real_scriptlets_and_debuginfo_packages() {
    let w = Ws::new();
    let r = w.build_fixture("systemd-service", &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = r.manifest();
    assert_eq!(r.stage(&m, "build")["outcome"], "PASSED");
    let rpms = binary_rpms(&w, &m);
    let main = rpm_named(&rpms, "systemd-service");

    // Every scriptlet is shell that does what Fedora's macros do, with no macro text left.
    let scripts = rpm_query(&["--scripts"], main);
    for expected in [
        "systemctl --no-reload preset greetd.socket greetd.service",
        "systemctl --no-reload disable --now greetd.socket greetd.service",
        "systemctl try-restart greetd.socket greetd.service",
        "systemd-tmpfiles --create greetd.conf",
        "[ $1 -eq 1 ]",
        "[ $1 -eq 0 ]",
        "useradd -r",
        "adduser -S",
        "_fci_adduser 'greetd' '' 'greetd' 'Greeting daemon' '/var/lib/greetd' '/usr/sbin/nologin'",
        "_fci_member 'greetd' 'adm'",
    ] {
        assert!(
            scripts.contains(expected),
            "{expected:?} not in:\n{scripts}"
        );
    }
    assert!(
        !scripts.contains('%'),
        "macro text in the scriptlets:\n{scripts}"
    );
    for tag in ["PREIN", "POSTIN", "PREUN", "POSTUN"] {
        let body = rpm_query(&["--qf", &format!("%{{{tag}}}")], main);
        let st = Command::new("sh")
            .args(["-n", "-c", &body])
            .status()
            .unwrap();
        assert!(st.success(), "{tag} is not valid shell:\n{body}");
    }
    // The %pre made from the sysusers.d file makes the user, its group and its membership,
    // with shadow-utils where it exists and busybox's applets where it does not (run with
    // stand-ins that record their arguments).
    let pre = rpm_query(&["--qf", "%{PREIN}"], main);
    for (tools, expected) in [
        (
            &["getent", "groupadd", "useradd", "usermod"][..],
            "groupadd -r greetd\n\
             useradd -r -g greetd -d /var/lib/greetd -s /usr/sbin/nologin -c Greeting daemon -M greetd\n\
             groupadd -r adm\n\
             usermod -a -G adm greetd\n",
        ),
        (
            &["getent", "addgroup", "adduser"][..],
            "addgroup -S greetd\n\
             adduser -S -D -H -G greetd -h /var/lib/greetd -s /usr/sbin/nologin -g Greeting daemon greetd\n\
             addgroup -S adm\n\
             addgroup greetd adm\n",
        ),
    ] {
        let bin = w.path().join(format!("stand-ins-{}", tools[1]));
        std::fs::create_dir_all(&bin).unwrap();
        let calls = bin.join("calls");
        for t in tools {
            // getent finds nobody: every user and group is new.
            let body = if *t == "getent" {
                "#!/bin/sh\nexit 2\n".to_string()
            } else {
                format!("#!/bin/sh\necho \"{t} $*\" >> {}\n", calls.display())
            };
            let f = bin.join(t);
            std::fs::write(&f, body).unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let st = Command::new("/bin/sh")
            .args(["-c", &pre, "sh", "1"])
            .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
            .status()
            .unwrap();
        assert!(st.success(), "{pre}");
        assert_eq!(std::fs::read_to_string(&calls).unwrap(), expected, "{pre}");
    }
    // %systemd_requires: the scriptlets' needs are the package's.
    let requires = rpm_query(&["--requires"], main);
    assert!(requires.contains("systemd"), "{requires}");
    let files = rpm_query(&["-l"], main);
    for f in [
        "/usr/sbin/greetd",
        "/usr/lib/systemd/system/greetd.service",
        "/usr/lib/systemd/system/greetd.socket",
        "/usr/lib/sysusers.d/greetd.conf",
        "/usr/lib/tmpfiles.d/greetd.conf",
    ] {
        assert!(files.lines().any(|l| l == f), "{f} not in:\n{files}");
    }

    // Fedora's flags by default: _FORTIFY_SOURCE=3 and gcc's LTO.
    let log = build_log(&w, &r);
    let cflags = cflags_of(&log);
    assert!(
        cflags.contains("-Wp,-U_FORTIFY_SOURCE,-D_FORTIFY_SOURCE=3"),
        "{cflags}"
    );
    assert!(cflags.contains("-flto=auto -ffat-lto-objects"), "{cflags}");

    // The debugging symbols went to -debuginfo, the sources to -debugsource; the program
    // the package ships is stripped.
    let debuginfo = rpm_query(&["-l"], rpm_named(&rpms, "systemd-service-debuginfo"));
    assert!(
        debuginfo
            .lines()
            .any(|l| l.starts_with("/usr/lib/debug/usr/sbin/greetd") && l.ends_with(".debug")),
        "{debuginfo}"
    );
    let debugsource = rpm_query(&["-l"], rpm_named(&rpms, "systemd-service-debugsource"));
    assert!(
        debugsource
            .lines()
            .any(|l| l.starts_with("/usr/src/debug/") && l.ends_with("/greetd.c")),
        "{debugsource}"
    );
    let program = payload_file(main, "/usr/sbin/greetd", &w.path().join("payload"));
    let sections = Command::new("readelf")
        .arg("-S")
        .arg(&program)
        .output()
        .unwrap();
    let sections = String::from_utf8_lossy(&sections.stdout);
    assert!(sections.contains(".gnu_debuglink"), "{sections}");
    assert!(
        !sections.contains(".debug_info"),
        "not stripped:\n{sections}"
    );
    assert!(!sections.contains(".symtab"), "not stripped:\n{sections}");
}

#[test]
fn fortify_level_and_lto_follow_the_command_lines_defines() {
    let w = Ws::new();
    let r = w.build_fixture(
        "systemd-service",
        &["-D", "_fortify_level 2", "-D", "_lto_cflags %{nil}"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let log = build_log(&w, &r);
    let cflags = cflags_of(&log);
    assert!(
        cflags.contains("-Wp,-U_FORTIFY_SOURCE,-D_FORTIFY_SOURCE=2"),
        "{cflags}"
    );
    assert!(!cflags.contains("_FORTIFY_SOURCE=3"), "{cflags}");
    assert!(!cflags.contains("-flto"), "{cflags}");
    // Fedora's meaning of no level: no _FORTIFY_SOURCE at all.
    let r = w.build_fixture("systemd-service", &["-D", "_fortify_level 0"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let log = build_log(&w, &r);
    assert!(!cflags_of(&log).contains("FORTIFY"), "{}", cflags_of(&log));
}

#[test]
fn a_specs_own_fortify_level_and_lto_setting_take_effect() {
    let w = Ws::new();
    let r = w.build_fixture("spec-flags", &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let log = build_log(&w, &r);
    let cflags = cflags_of(&log);
    // `%global _fortify_level 2` and `%define _lto_cflags %{nil}` in the spec.
    assert!(
        cflags.contains("-Wp,-U_FORTIFY_SOURCE,-D_FORTIFY_SOURCE=2"),
        "{cflags}"
    );
    assert!(!cflags.contains("_FORTIFY_SOURCE=3"), "{cflags}");
    assert!(!cflags.contains("-flto"), "{cflags}");
    let ldflags = log
        .lines()
        .find(|l| l.starts_with("LDFLAGS: "))
        .unwrap_or_else(|| panic!("no LDFLAGS line:\n{log}"));
    assert!(!ldflags.contains("-flto"), "{ldflags}");
    // The spec's %global is defined after the command line's -D, so the spec's level stands,
    // as with rpmbuild on Fedora.
    let r = w.build_fixture("spec-flags", &["-D", "_fortify_level 1"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let log = build_log(&w, &r);
    assert!(
        cflags_of(&log).contains("-D_FORTIFY_SOURCE=2"),
        "{}",
        cflags_of(&log)
    );
}

#[test]
fn an_undefined_macro_left_in_a_scriptlet_fails_the_build_naming_it() {
    let w = Ws::new();
    let r = w.build_fixture("unexpanded-scriptlet", &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let m = r.manifest();
    let b = r.stage(&m, "build");
    assert_eq!(b["outcome"], "FAILED", "{b}");
    let notes: Vec<&str> = b["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    // Named once, where it is; the printf and date formats beside it are not macros.
    assert_eq!(
        notes
            .iter()
            .filter(|n| n.starts_with("unexpanded macro"))
            .collect::<Vec<_>>(),
        vec![
            &"unexpanded macro %firewalld_reload in the %post scriptlet of \
               unexpanded-scriptlet-1.0-1.fc41.noarch: the build environment does not define \
               it, so rpm left its text in the package (a macro package the spec needs is \
               missing, or the name is misspelled)"
        ],
        "{b}"
    );
    // Its packages would install that text: none is recorded.
    assert!(binary_rpms(&w, &m).is_empty(), "{m}");
    assert_eq!(b["data"]["package"], "unexpanded-scriptlet");
}

#[test]
fn an_upper_case_name_that_is_no_rpm_tag_and_a_macro_after_ps_fail_the_build() {
    let w = Ws::new();
    let r = w.build_fixture("unexpanded-tag-case", &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let m = r.manifest();
    let b = r.stage(&m, "build");
    assert_eq!(b["outcome"], "FAILED", "{b}");
    let flagged: Vec<&str> = b["notes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n.as_str()?.strip_prefix("unexpanded macro "))
        .map(|n| n.split(' ').next().unwrap())
        .collect();
    // `%{SERVICE_NAME}` is no tag of the host rpm's `--querytags`; the ps line hides only
    // its `%cpu`; the escaped `%{NAME}` and `%{version}` of a query format are tags.
    assert_eq!(flagged, vec!["%{SERVICE_NAME}", "%{service_nme}"], "{b}");
    assert!(binary_rpms(&w, &m).is_empty(), "{m}");
}

/// What the build stage's notes name as unexpanded, with where: (`%{arch}`, `the file list`).
/// A stage without notes has none.
fn unexpanded_notes(b: &Value) -> Vec<(String, String)> {
    b["notes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n.as_str()?.strip_prefix("unexpanded macro "))
        .map(|n| {
            let (text, rest) = n.split_once(" in ").unwrap();
            let (place, _) = rest.split_once(" of ").unwrap();
            (text.to_string(), place.to_string())
        })
        .collect()
}

#[test]
fn a_tags_name_in_the_file_list_a_plain_post_or_a_symlink_target_fails_the_build() {
    let w = Ws::new();
    let r = w.build_fixture("unexpanded-tag-path", &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let m = r.manifest();
    let b = r.stage(&m, "build");
    assert_eq!(b["outcome"], "FAILED", "{b}");
    // rpmbuild defines neither `%{arch}` nor, without a URL: line, `%{url}`: tags of rpm's,
    // but no query format's where no `--qf` is passed, and none in a file list.
    let pair = |t: &str, p: &str| (t.to_string(), p.to_string());
    assert_eq!(
        unexpanded_notes(b),
        vec![
            pair("%{url}", "the %post scriptlet"),
            pair("%{arch}", "the %post scriptlet"),
            pair("%{arch}", "the file list"),
            pair("%{_bogus_datadir}", "a symlink target in the file list"),
        ],
        "{b}"
    );
    assert!(binary_rpms(&w, &m).is_empty(), "{m}");
}

#[test]
fn a_file_named_with_a_literal_percent_and_a_query_format_in_a_variable_pass() {
    let w = Ws::new();
    let r = w.build_fixture("literal-percent-file", &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = r.manifest();
    let b = r.stage(&m, "build");
    assert_eq!(b["outcome"], "PASSED", "{b}");
    assert!(unexpanded_notes(b).is_empty(), "{b}");
    // GConf's `%%gconf-tree.xml` is shipped as its literal name, and linked to.
    let rpms = binary_rpms(&w, &m);
    let files = rpm_query(&["-l"], rpm_named(&rpms, "literal-percent-file"));
    assert!(
        files
            .lines()
            .any(|l| l == "/etc/gconf/gconf.xml.defaults/%gconf-tree.xml"),
        "{files}"
    );
    let links = rpm_query(
        &["--qf", "[%{FILELINKTOS}\\n]"],
        rpm_named(&rpms, "literal-percent-file"),
    );
    assert!(links.contains("%gconf-tree.xml"), "{links}");
}

#[test]
fn a_pyproject_python_spec_builds_with_fedoras_python_layout() {
    let w = Ws::new();
    let r = w.build_fixture("python-pyproject", &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = r.manifest();
    let b = r.stage(&m, "build");
    assert_eq!(b["outcome"], "PASSED", "{b}");
    // %pyproject_check_import and the greeting ran in %check.
    assert_eq!(
        results(b),
        vec![
            ("build.check".to_string(), "PASSED".to_string()),
            ("rpmlint".to_string(), "INFO".to_string())
        ]
    );
    let rpms = binary_rpms(&w, &m);
    let pkg = rpm_named(&rpms, "python3-fcigreet");
    let files = rpm_query(&["-l"], pkg);
    let version = Command::new("/usr/bin/python3")
        .args(["-c", "import sys; print('%d.%d' % sys.version_info[:2])"])
        .output()
        .unwrap();
    let sitelib = format!(
        "/usr/lib/python{}/site-packages",
        String::from_utf8_lossy(&version.stdout).trim()
    );
    for f in [
        format!("{sitelib}/fcigreet.py"),
        format!("{sitelib}/fcigreet-1.0.dist-info/METADATA"),
        "/usr/bin/fcigreet".to_string(),
    ] {
        assert!(files.lines().any(|l| l == f), "{f} not in:\n{files}");
    }
    assert!(!files.contains("dist-packages"), "{files}");
    assert!(!files.contains("direct_url.json"), "{files}");
    // rpm's Python generators saw it where Fedora puts it.
    let provides = rpm_query(&["--provides"], pkg);
    assert!(provides.contains("python3dist(fcigreet) = 1"), "{provides}");
    let log = build_log(&w, &r);
    assert!(
        log.contains("fci: %pyproject_buildrequires generates nothing on this host"),
        "{log}"
    );
}

#[test]
fn a_setup_py_python_spec_builds_with_fedoras_python_layout_and_byte_compiles() {
    let w = Ws::new();
    let r = w.build_fixture("python-setuppy", &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = r.manifest();
    let b = r.stage(&m, "build");
    assert_eq!(b["outcome"], "PASSED", "{b}");
    assert_eq!(
        results(b),
        vec![
            ("build.check".to_string(), "PASSED".to_string()),
            ("rpmlint".to_string(), "INFO".to_string())
        ]
    );
    let rpms = binary_rpms(&w, &m);
    let files = rpm_query(&["-l"], rpm_named(&rpms, "python3-oldgreet"));
    assert!(
        files.lines().any(
            |l| l.starts_with("/usr/lib/python3.") && l.ends_with("/site-packages/oldgreet.py")
        ),
        "{files}"
    );
    // Byte-compiled after %install (brp-python-bytecompile), as Fedora's steps do.
    assert!(
        files.lines().any(
            |l| l.contains("/site-packages/__pycache__/oldgreet.cpython-") && l.ends_with(".pyc")
        ),
        "{files}"
    );
    assert!(files.lines().any(|l| l == "/usr/bin/oldgreet"), "{files}");
    assert!(!files.contains("dist-packages"), "{files}");
}

#[test]
fn cmake_and_meson_specs_build_out_of_tree_with_fedoras_flags() {
    let w = Ws::new();
    for (fixture, program, tested) in [
        ("cmake-project", "greet-cmake", "100% tests passed"),
        ("meson-project", "greet-meson", "Ok:"),
    ] {
        let r = w.build_fixture(fixture, &[]);
        assert_eq!(r.code, 0, "{fixture}: {}", r.stderr);
        let m = r.manifest();
        let b = r.stage(&m, "build");
        assert_eq!(b["outcome"], "PASSED", "{b}");
        assert_eq!(
            results(b),
            vec![
                ("build.check".to_string(), "PASSED".to_string()),
                ("rpmlint".to_string(), "INFO".to_string())
            ]
        );
        let rpms = binary_rpms(&w, &m);
        let files = rpm_query(&["-l"], rpm_named(&rpms, fixture));
        assert!(
            files.lines().any(|l| l == format!("/usr/bin/{program}")),
            "{files}"
        );
        rpm_named(&rpms, &format!("{fixture}-debuginfo"));
        rpm_named(&rpms, &format!("{fixture}-debugsource"));
        let log = build_log(&w, &r);
        assert!(
            log.contains(tested),
            "{fixture}: its tests did not run:\n{log}"
        );
        // Out of tree, in Fedora's build directory, compiled with Fedora's flags.
        assert!(log.contains("redhat-linux-build"), "{log}");
        let compile = log
            .lines()
            .find(|l| l.contains("gcc") && l.contains(" -c ") && l.contains("greet.c"))
            .unwrap_or_else(|| panic!("{fixture}: no compile line:\n{log}"));
        assert!(compile.contains("-D_FORTIFY_SOURCE=3"), "{compile}");
        assert!(compile.contains("-flto=auto"), "{compile}");
    }
}
