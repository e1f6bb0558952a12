//! The flags `fci gating`'s subcommands share: the subject a decision or a waiver is about,
//! and what `waive` records (apart from `cli.rs`, which dispatches to `waive.rs`).

/// What a decision is asked about: Greenwave's decision request.
#[derive(clap::Args, Debug, Clone)]
pub struct Subject {
    /// The product version, e.g. fedora-41
    #[arg(long, value_name = "PV")]
    pub product_version: String,
    /// The subject's type
    #[arg(long, value_name = "TYPE", default_value = "koji_build")]
    pub subject_type: String,
    /// The subject, e.g. an NVR for koji_build
    #[arg(long, value_name = "ID")]
    pub subject_identifier: String,
}

/// `fci gating waive`'s flags.
#[derive(clap::Args, Debug, Clone)]
pub struct WaiveArgs {
    /// The test case to waive, e.g. fedora-ci.koji-build.tier0.functional
    #[arg(value_name = "TESTCASE")]
    pub testcase: String,
    /// Why (WaiverDB requires it)
    #[arg(long, value_name = "TEXT")]
    pub comment: String,
    /// Only this scenario
    #[arg(long, value_name = "SCENARIO")]
    pub scenario: Option<String>,
    /// Record `waived: false`, revoking earlier waivers
    #[arg(long)]
    pub revoke: bool,
    /// Who waives (default $USER; sent to WaiverDB as `username`, a proxy request, only
    /// when given)
    #[arg(long, value_name = "NAME")]
    pub username: Option<String>,
    /// The package's gating.yaml: the test cases it requires are known test cases too
    #[arg(long, value_name = "FILE")]
    pub gating: Option<std::path::PathBuf>,
    /// Store the waiver even for a test case no policy requires and no result has
    #[arg(long)]
    pub force: bool,
    /// A ResultsDB (its root or /api/v2.0) whose results for the subject are known test cases
    /// too
    #[arg(
        long,
        env = "FCI_RESULTSDB_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub resultsdb_url: Option<String>,
    #[command(flatten)]
    pub subject: Subject,
    #[command(flatten)]
    pub waiverdb: super::waiverdb::WaiverDbArgs,
}
