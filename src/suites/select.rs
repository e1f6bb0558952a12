//! Which test cases an attempt reruns, and how a rerun's results merge into the record.

use super::runner::Case;
use crate::manifest::Outcome;
use std::collections::{HashMap, HashSet};

/// (runner, group, test case): the group is the STI playbook or the tmt plan.
pub type Key = (String, Option<String>, String);

/// What to run of one suite: everything (no names), or the named cases (in those plans).
#[derive(Debug, Default, PartialEq)]
pub struct Filter {
    pub names: Vec<String>,
    pub plans: Vec<String>,
}

/// What an attempt reruns: whole suites (after a run-level error) and single test cases.
#[derive(Default, Debug)]
pub struct Selection {
    /// (runner, group); a group of None covers the whole runner.
    pub whole: Vec<(String, Option<String>)>,
    pub cases: Vec<Key>,
    /// `cases`, for lookups: a stage may list thousands of failing cases, and each rerun
    /// case is looked up (a linear search made a flood of results quadratic).
    known: HashSet<Key>,
}

impl Selection {
    /// Everything that did not pass (nor was skipped).
    pub fn failing<'a>(cases: impl Iterator<Item = &'a Case>) -> Self {
        let mut sel = Selection::default();
        for c in cases.filter(|c| !c.outcome.is_pass() && c.outcome != Outcome::Skipped) {
            sel.add(c.whole_run, c.key());
        }
        sel
    }

    pub fn add(&mut self, whole_run: bool, key: Key) {
        if whole_run {
            let w = (key.0, key.1);
            if !self.whole.contains(&w) {
                self.whole.push(w);
            }
        } else if self.known.insert(key.clone()) {
            self.cases.push(key);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.whole.is_empty() && self.cases.is_empty()
    }

    /// The filter for one suite (`runner`, and `group` for STI), or None to skip it.
    pub fn for_suite(&self, runner: &str, group: Option<&str>) -> Option<Filter> {
        if self
            .whole
            .iter()
            .any(|(r, g)| r == runner && (g.is_none() || g.as_deref() == group))
        {
            return Some(Filter::default());
        }
        let mine: Vec<&Key> = self
            .cases
            .iter()
            .filter(|k| k.0 == runner && (group.is_none() || k.1.as_deref() == group))
            .collect();
        if mine.is_empty() {
            return None;
        }
        let mut f = Filter::default();
        let (mut names, mut plans) = (HashSet::new(), HashSet::new());
        for k in mine {
            if names.insert(&k.2) {
                f.names.push(k.2.clone());
            }
            if let (None, Some(plan)) = (group, &k.1) {
                if plans.insert(plan) {
                    f.plans.push(plan.clone());
                }
            }
        }
        Some(f)
    }

    /// Whether a case belongs to what this selection reruns.
    pub fn covers(&self, c: &Case) -> bool {
        self.whole
            .iter()
            .any(|(r, g)| r == c.runner && (g.is_none() || *g == c.group))
            || self.known.contains(&c.key())
    }

    pub fn describe(&self) -> Vec<String> {
        let whole = self.whole.iter().map(|(r, g)| match g {
            Some(g) => format!("{r}:{g}"),
            None => r.clone(),
        });
        whole
            .chain(self.cases.iter().map(|k| k.2.clone()))
            .collect()
    }
}

/// A case with the earlier attempts it replaced, oldest first.
pub type Slot = (Case, Vec<Case>);

/// Folds a rerun into the record: only cases the selection asked for count; a run-level error
/// that does not recur becomes a record that the run completed on this attempt.
pub fn merge(cases: &mut Vec<Slot>, sel: &Selection, again: Vec<Case>, attempt: u32) {
    let again: Vec<Case> = again.into_iter().filter(|n| sel.covers(n)).collect();
    let rerun: HashSet<Key> = again.iter().map(Case::key).collect();
    for slot in cases
        .iter_mut()
        .filter(|(c, _)| c.whole_run && sel.covers(c))
    {
        if !rerun.contains(&slot.0.key()) {
            let done = Case {
                outcome: Outcome::Passed,
                note: Some(format!("the run completed on attempt {attempt}")),
                log: None,
                timed_out: false,
                ..slot.0.clone()
            };
            let old = std::mem::replace(&mut slot.0, done);
            slot.1.push(old);
        }
    }
    // Each key's slots in order, so that the n-th rerun case of a name lands in the n-th slot
    // of that name (a playbook may report one name twice: folding both into the first slot
    // left the second's failure standing whatever the retry said). By key, as thousands of
    // cases make a linear search per rerun case quadratic.
    let mut slots: HashMap<Key, Vec<usize>> = HashMap::new();
    for (i, (c, _)) in cases.iter().enumerate() {
        slots.entry(c.key()).or_default().push(i);
    }
    let mut nth: HashMap<Key, usize> = HashMap::new();
    for new in again {
        let key = new.key();
        let n = nth.entry(key.clone()).or_insert(0);
        let at = slots.get(&key).and_then(|v| v.get(*n)).copied();
        *n += 1;
        match at.map(|i| &mut cases[i]) {
            // A passing case that a whole rerun reports again passed again: nothing to record.
            Some(slot) if slot.0.outcome.is_pass() && new.outcome.is_pass() => {}
            Some(slot) => {
                let old = std::mem::replace(&mut slot.0, new);
                slot.1.push(old);
            }
            None => {
                slots.entry(key).or_default().push(cases.len());
                cases.push((new, Vec::new()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(runner: &'static str, group: Option<&str>, name: &str, outcome: Outcome) -> Case {
        Case {
            runner,
            name: name.into(),
            group: group.map(String::from),
            outcome,
            log: None,
            duration_s: None,
            note: None,
            whole_run: false,
            timed_out: false,
        }
    }

    #[test]
    fn reruns_only_what_failed_in_its_own_plan_or_playbook() {
        let a = case("tmt", Some("/plans/a"), "/tests/x", Outcome::Failed);
        let b = case("tmt", Some("/plans/b"), "/tests/x", Outcome::Passed);
        let s = case(
            "sti",
            Some("tests/tests_extra.yml"),
            "gamma",
            Outcome::Failed,
        );
        let sel = Selection::failing([&a, &b, &s].into_iter());
        assert_eq!(
            sel.for_suite("tmt", None),
            Some(Filter {
                names: vec!["/tests/x".into()],
                plans: vec!["/plans/a".into()]
            })
        );
        assert_eq!(sel.for_suite("sti", Some("tests/tests.yml")), None);
        assert_eq!(
            sel.for_suite("sti", Some("tests/tests_extra.yml"))
                .unwrap()
                .names,
            ["gamma"]
        );
        let mut slots: Vec<Slot> = vec![(a, vec![]), (b, vec![]), (s, vec![])];
        // plan b's passing /tests/x comes back too, but was not asked for.
        let again = vec![
            case("tmt", Some("/plans/a"), "/tests/x", Outcome::Passed),
            case("tmt", Some("/plans/b"), "/tests/x", Outcome::Passed),
        ];
        merge(&mut slots, &sel, again, 2);
        assert_eq!(slots[0].1.len(), 1);
        assert!(slots[1].1.is_empty());
    }

    #[test]
    fn a_broken_run_is_rerun_whole_and_marked_completed() {
        let mut broken = case(
            "sti",
            Some("tests/tests.yml"),
            "tests/tests.yml",
            Outcome::Error,
        );
        broken.whole_run = true;
        let sel = Selection::failing([&broken].into_iter());
        assert_eq!(
            sel.for_suite("sti", Some("tests/tests.yml")),
            Some(Filter::default())
        );
        assert_eq!(sel.for_suite("sti", Some("tests/other.yml")), None);
        let mut slots: Vec<Slot> = vec![(broken, vec![])];
        merge(
            &mut slots,
            &sel,
            vec![case(
                "sti",
                Some("tests/tests.yml"),
                "works",
                Outcome::Passed,
            )],
            2,
        );
        assert_eq!(slots[0].0.outcome, Outcome::Passed);
        assert_eq!(slots[0].1[0].outcome, Outcome::Error);
        assert_eq!(slots[1].0.name, "works");
    }

    #[test]
    fn a_name_reported_twice_is_merged_slot_by_slot() {
        let ok = || case("sti", Some("tests/tests.yml"), "dup", Outcome::Passed);
        let bad = || case("sti", Some("tests/tests.yml"), "dup", Outcome::Failed);
        let sel = Selection::failing([&ok(), &bad()].into_iter());
        // The retry passes both: neither stays failed.
        let mut slots: Vec<Slot> = vec![(ok(), vec![]), (bad(), vec![])];
        merge(&mut slots, &sel, vec![ok(), ok()], 2);
        assert!(slots.iter().all(|(c, _)| c.outcome == Outcome::Passed));
        assert_eq!(slots.len(), 2);
        assert_eq!(slots[1].1[0].outcome, Outcome::Failed);
        // The retry fails the second again: the first keeps its pass, one failure stands.
        let mut slots: Vec<Slot> = vec![(ok(), vec![]), (bad(), vec![])];
        merge(&mut slots, &sel, vec![ok(), bad()], 2);
        let failed = slots
            .iter()
            .filter(|(c, _)| c.outcome == Outcome::Failed)
            .count();
        assert_eq!((failed, slots[0].0.outcome), (1, Outcome::Passed));
    }
}
