//! Greenwave's subject types, as its default configuration (`conf/subject_types/*.yaml` in
//! release-engineering/greenwave) defines them: a type's aliases (a request or a policy for
//! `brew-build` is about a `koji_build`), which ResultsDB results are the subject's (its
//! `result_queries`: data key → value; all of a query's keys must match), and how the subject
//! is written in a decision (`item_dict`: the legacy `subject` list and a missing
//! requirement's `item`). A type the table does not name is Greenwave's generic type: results
//! with `type` = the type and `item` = the identifier.
//!
//! Our own table, written from that configuration:
//!
//! | id                      | aliases      | results matched by                                               |
//! |-------------------------|--------------|------------------------------------------------------------------|
//! | koji_build              | brew-build   | item + type ∈ {koji_build, brew-build}; or original_spec_nvr     |
//! | bodhi_update            |              | item + type bodhi_update (generic)                               |
//! | compose                 |              | productmd.compose.id (no type); written `{productmd.compose.id}` |
//! | redhat-module           |              | item + type redhat-module (generic; product version rhel-8)      |
//! | redhat-container-image  |              | nvr + type redhat-container-image; or item + type koji_build     |
//! | brew-build-group        |              | item + type brew-build-group (generic)                           |
//!
//! `productmd-compose` is Fedora CI's *message* artifact type, not a Greenwave alias: the
//! default configuration gives `compose` no aliases, and neither does this table.
//!
//! A result that two of a type's queries both find (`item` and `original_spec_nvr` naming the
//! same build) is one result here: Greenwave counts it twice (a quirk the reference lists;
//! fci fixes it, since it filters one list instead of concatenating query answers).

use serde_json::{json, Map, Value};

/// One ResultsDB query of a subject type: each (data key, accepted values) must match; `None`
/// as the value stands for the subject's identifier.
type Query = &'static [(&'static str, Option<&'static [&'static str]>)];

struct Type {
    id: &'static str,
    aliases: &'static [&'static str],
    /// Whether the identifier is an NVR (its package name decides `packages` filters).
    is_nvr: bool,
    /// The key the subject is written under in a decision (`item_dict`), with no `type`.
    item_dict_key: Option<&'static str>,
    queries: &'static [Query],
}

const KOJI_TYPES: &[&str] = &["koji_build", "brew-build"];
const KOJI: &[&str] = &["koji_build"];
const CONTAINER: &[&str] = &["redhat-container-image"];

const TYPES: &[Type] = &[
    Type {
        id: "koji_build",
        aliases: &["brew-build"],
        is_nvr: true,
        item_dict_key: None,
        queries: &[
            &[("item", None), ("type", Some(KOJI_TYPES))],
            &[("original_spec_nvr", None)],
        ],
    },
    Type {
        id: "compose",
        aliases: &[],
        is_nvr: false,
        item_dict_key: Some("productmd.compose.id"),
        queries: &[&[("productmd.compose.id", None)]],
    },
    Type {
        id: "redhat-container-image",
        aliases: &[],
        is_nvr: true,
        item_dict_key: None,
        queries: &[
            &[("nvr", None), ("type", Some(CONTAINER))],
            &[("item", None), ("type", Some(KOJI))],
        ],
    },
];

fn known(ty: &str) -> Option<&'static Type> {
    TYPES.iter().find(|t| t.id == ty || t.aliases.contains(&ty))
}

/// The type's canonical id: `brew-build` → `koji_build`; any other name as it is.
pub fn canonical(ty: &str) -> &str {
    known(ty).map_or(ty, |t| t.id)
}

/// Whether a policy's `subject_type` (or `*`) names this subject type, aliases included.
pub fn policy_names(policy_type: &str, ty: &str) -> bool {
    policy_type == "*" || canonical(policy_type) == canonical(ty)
}

/// Whether the identifier is an NVR for this type (generic types: not).
pub fn is_nvr(ty: &str) -> bool {
    known(ty).is_some_and(|t| t.is_nvr)
}

/// Whether a result with these data values (every value a list, as ResultsDB answers) is
/// about the subject.
pub fn matches(ty: &str, identifier: &str, data: &dyn Fn(&str) -> Vec<String>) -> bool {
    let generic: &[(&str, Option<&[&str]>)] = &[("item", None), ("type", None)];
    let one = |q: &[(&str, Option<&[&str]>)], own: &str| {
        q.iter().all(|(key, want)| {
            let have = data(key);
            match (want, *key) {
                (Some(values), _) => have.iter().any(|h| values.contains(&h.as_str())),
                // The generic query's type is the requested type itself.
                (None, "type") => have.iter().any(|h| h == own),
                (None, _) => have.iter().any(|h| h == identifier),
            }
        })
    };
    match known(ty) {
        Some(t) => t.queries.iter().any(|q| one(q, t.id)),
        None => one(generic, ty),
    }
}

/// The subject's ResultsDB queries (`GET /results` data filters, a comma list meaning any of
/// its values), as Greenwave asks them.
pub fn queries(ty: &str, identifier: &str) -> Vec<Vec<(String, String)>> {
    let one = |q: &[(&str, Option<&[&str]>)]| {
        q.iter()
            .map(|(k, v)| {
                let value = match v {
                    Some(values) => values.join(","),
                    None => identifier.to_string(),
                };
                (k.to_string(), value)
            })
            .collect()
    };
    match known(ty) {
        Some(t) => t.queries.iter().map(|q| one(q)).collect(),
        None => vec![vec![
            ("item".to_string(), identifier.to_string()),
            ("type".to_string(), ty.to_string()),
        ]],
    }
}

/// The subject as Greenwave writes it in a decision (`Subject.to_dict()`): `{type, item}`, or
/// the type's `item_dict` (`{"productmd.compose.id": ID}` for a compose).
pub fn to_dict(ty: &str, identifier: &str) -> Value {
    match known(ty).and_then(|t| t.item_dict_key) {
        Some(key) => {
            let mut m = Map::new();
            m.insert(key.into(), json!(identifier));
            Value::Object(m)
        }
        None => json!({"type": canonical(ty), "item": identifier}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Vec<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k: &str| {
            pairs
                .iter()
                .filter(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
                .collect()
        }
    }

    #[test]
    fn greenwaves_default_subject_types() {
        let nvr = "bash-5.2-1.fc41";
        assert_eq!(canonical("brew-build"), "koji_build");
        assert_eq!(canonical("bodhi_update"), "bodhi_update");
        let brew = data(&[("item", nvr), ("type", "brew-build")]);
        assert!(matches("koji_build", nvr, &brew));
        assert!(matches("brew-build", nvr, &brew));
        assert!(matches(
            "koji_build",
            nvr,
            &data(&[("original_spec_nvr", nvr)])
        ));
        assert!(!matches("koji_build", nvr, &data(&[("item", nvr)])));
        assert!(!matches("bodhi_update", nvr, &brew));
        assert!(matches(
            "bodhi_update",
            "FEDORA-2024-1",
            &data(&[("item", "FEDORA-2024-1"), ("type", "bodhi_update")])
        ));
        let compose = "Fedora-41-20241001.0";
        assert!(matches(
            "compose",
            compose,
            &data(&[("productmd.compose.id", compose)])
        ));
        assert_eq!(
            to_dict("compose", compose),
            json!({"productmd.compose.id": compose})
        );
        assert_eq!(
            to_dict("brew-build", nvr),
            json!({"type": "koji_build", "item": nvr})
        );
        assert!(matches(
            "redhat-container-image",
            nvr,
            &data(&[("item", nvr), ("type", "koji_build")])
        ));
        assert!(matches(
            "redhat-container-image",
            nvr,
            &data(&[("nvr", nvr), ("type", "redhat-container-image")])
        ));
        assert!(matches(
            "redhat-module",
            "m:1:2:c",
            &data(&[("item", "m:1:2:c"), ("type", "redhat-module")])
        ));
        assert_eq!(
            queries("brew-build", nvr),
            vec![
                vec![
                    ("item".to_string(), nvr.to_string()),
                    ("type".to_string(), "koji_build,brew-build".to_string())
                ],
                vec![("original_spec_nvr".to_string(), nvr.to_string())],
            ]
        );
        assert!(policy_names("brew-build", "koji_build"));
        assert!(policy_names("*", "compose"));
        assert!(!policy_names("compose", "koji_build"));
    }
}
