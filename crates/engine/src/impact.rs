//! Which changes between two versions of a spec touch a project: the
//! changes `patchbay_contract::diff` finds, mapped onto the places where
//! the project's flows call an operation or read a field of its reply
//! ([`ContractUse`], recorded while compiling).
//!
//! A change about an operation as a whole (removed, a new required
//! parameter, security) touches every use of the operation. A change about
//! a response field touches the reads of that field, of a field inside it
//! and of the object holding it (a flow that passes `contacts` on whole
//! depends on what is inside), in the same documented response. A change
//! about no operation (servers) touches every use.

use patchbay_contract::Change;

use crate::step::ContractUse;

/// A change and the uses it touches.
#[derive(Debug, serde::Serialize)]
pub struct Impact<'a> {
    #[serde(flatten)]
    pub change: &'a Change,
    pub uses: Vec<&'a ContractUse>,
}

/// Each change with the uses among `uses` it touches, in the changes'
/// order.
pub fn impact<'a>(changes: &'a [Change], uses: &'a [ContractUse]) -> Vec<Impact<'a>> {
    changes
        .iter()
        .map(|change| Impact {
            change,
            uses: uses.iter().filter(|use_| touches(change, use_)).collect(),
        })
        .collect()
}

fn touches(change: &Change, use_: &ContractUse) -> bool {
    let Some(operation) = &change.operation else {
        return true;
    };
    if !same_operation(operation, &use_.operation) {
        return false;
    }
    if change.field.is_empty() {
        return true;
    }
    let (Some(field), Some(response)) = (&use_.field, &use_.response) else {
        // The call itself depends on its operation, not on one field.
        return false;
    };
    if change
        .response
        .as_ref()
        .is_some_and(|changed| changed != response)
    {
        return false;
    }
    let shared = field.len().min(change.field.len());
    field[..shared] == change.field[..shared]
}

/// `GET /contacts/{id}` and `GET /contacts/{contactId}` are one operation.
fn same_operation(a: &str, b: &str) -> bool {
    patchbay_contract::path_shape(a) == patchbay_contract::path_shape(b)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use patchbay_contract::{Change, Severity};

    use super::*;

    fn change(operation: &str, response: Option<&str>, field: &[&str]) -> Change {
        Change {
            rule: "response-property-removed",
            severity: Severity::Breaking,
            operation: Some(operation.into()),
            message: String::new(),
            old: None,
            new: None,
            field: field.iter().map(|s| s.to_string()).collect(),
            response: response.map(str::to_string),
        }
    }

    fn read(operation: &str, field: Option<&[&str]>) -> ContractUse {
        ContractUse {
            flow: "sync".into(),
            step: "step 2".into(),
            file: PathBuf::from("flows/sync.yaml"),
            line: 9,
            connector: "crm".into(),
            operation: operation.into(),
            field: field.map(|f| f.iter().map(|s| s.to_string()).collect()),
            response: field.map(|_| "200".to_string()),
            shown: String::new(),
        }
    }

    #[test]
    fn a_field_change_touches_reads_of_it_inside_it_and_around_it() {
        let removed = change("GET /contacts", Some("200"), &["contacts", "[]", "email"]);
        let uses = [
            read("GET /contacts", Some(&["contacts", "[]", "email"])),
            read("GET /contacts", Some(&["contacts"])),
            read("GET /contacts", Some(&["contacts", "[]", "name"])),
            read("GET /contacts", None),
            read("GET /other", Some(&["contacts", "[]", "email"])),
        ];
        let found = impact(std::slice::from_ref(&removed), &uses);
        let touched: Vec<_> = found[0].uses.iter().map(|u| u.field.clone()).collect();
        assert_eq!(
            touched,
            [
                Some(vec!["contacts".into(), "[]".into(), "email".into()]),
                Some(vec!["contacts".into()])
            ]
        );
        let elsewhere = change("GET /contacts", Some("404"), &["contacts"]);
        assert!(
            impact(std::slice::from_ref(&elsewhere), &uses)[0]
                .uses
                .is_empty()
        );
    }

    #[test]
    fn an_operation_change_touches_every_use_whatever_its_parameter_names() {
        let removed = change("GET /contacts/{id}", None, &[]);
        let uses = [
            read("GET /contacts/{contactId}", None),
            read("GET /contacts/{contactId}", Some(&["email"])),
            read("GET /contacts", None),
        ];
        assert_eq!(
            impact(std::slice::from_ref(&removed), &uses)[0].uses.len(),
            2
        );
    }
}
