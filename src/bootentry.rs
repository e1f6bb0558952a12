//! Boot Loader Specification entries (`/boot/loader/entries/*.conf`), as `ostree admin deploy`
//! writes them: the image stage records the default one, the smoke stage boots it.

use serde::Serialize;

#[derive(Serialize, Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub title: String,
    pub version: u64,
    /// Paths relative to /boot.
    pub linux: String,
    pub initrd: String,
    pub options: String,
}

impl Entry {
    /// Parses one entry; None when a key fci boots with is missing or a path is not a plain
    /// path inside /boot.
    pub fn parse(text: &str) -> Option<Entry> {
        let mut e = Entry {
            title: String::new(),
            version: 0,
            linux: String::new(),
            initrd: String::new(),
            options: String::new(),
        };
        for line in text.lines() {
            let line = line.trim();
            let (key, value) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
            let value = value.trim().to_string();
            match key {
                "title" => e.title = value,
                "version" => e.version = value.parse().ok()?,
                "linux" => e.linux = value,
                "initrd" => e.initrd = value,
                "options" => e.options = value,
                _ => {}
            }
        }
        (plain_boot_path(&e.linux) && plain_boot_path(&e.initrd)).then_some(e)
    }

    /// The OSTree deployment the entry boots: the `ostree=` kernel argument.
    pub fn ostree_arg(&self) -> Option<&str> {
        self.options
            .split_whitespace()
            .find_map(|o| o.strip_prefix("ostree="))
    }
}

/// The default entry: the highest `version` (file names do not give the order).
pub fn default_entry(entries: impl IntoIterator<Item = Entry>) -> Option<Entry> {
    entries.into_iter().max_by_key(|e| e.version)
}

fn plain_boot_path(p: &str) -> bool {
    p.starts_with('/')
        && !p.split('/').any(|c| c == "..")
        && p.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | '-' | '+'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_an_ostree_entry_and_picks_the_highest_version() {
        let a = Entry::parse(
            "title fci (ostree:0)\nversion 2\noptions root=/dev/vda rw ostree=/ostree/boot.1/fci/ab/0\nlinux /ostree/fci-ab/vmlinuz-6.1\ninitrd /ostree/fci-ab/initramfs-6.1.img\n",
        )
        .unwrap();
        assert_eq!(a.ostree_arg(), Some("/ostree/boot.1/fci/ab/0"));
        let mut b = a.clone();
        b.version = 1;
        assert_eq!(default_entry([b, a.clone()]), Some(a));
        assert!(Entry::parse("version 1\nlinux /../../etc/shadow\ninitrd /x\n").is_none());
        assert!(Entry::parse("version x\nlinux /a\ninitrd /b\n").is_none());
        assert!(Entry::parse("version 1\nlinux /a\n").is_none());
    }
}
