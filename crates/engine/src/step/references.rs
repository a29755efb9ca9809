//! `$steps.ID` in a flow's expressions must name a step of the flow: a
//! misspelt id reads `null` at run time and the flow goes on with it, so
//! `check` (and `run`, which compiles the same way) refuses it, naming the
//! closest id.
//!
//! Only reads the expression analysis can follow are checked
//! ([`patchbay_expr::reads`]): `$steps.charge` and `$steps.charge.body.id`
//! are, a computed `$steps[$name]` is not. Any step of the flow counts,
//! wherever it sits (a branch, a fallback), so nothing valid is refused.

use std::collections::BTreeSet;

use patchbay_expr::{Root, Segment};

use super::compile::Compiler;
use super::contract::position;

impl Compiler<'_> {
    /// Reports each `$steps.ID` whose ID no step of the flow has.
    pub(super) fn check_step_references(&mut self) {
        let compiled = std::mem::take(&mut self.compiled);
        for expression in &compiled {
            let mut unknown = BTreeSet::new();
            for read in patchbay_expr::reads(&expression.source) {
                let (Root::Var(var), Some(Segment::Field { name, offset })) =
                    (&read.root, read.path.first())
                else {
                    continue;
                };
                if var == "steps" && !self.step_ids.contains(name) {
                    unknown.insert((name.clone(), *offset));
                }
            }
            // Once per id and expression, however often it is read.
            let mut told = BTreeSet::new();
            for (name, offset) in unknown {
                if !told.insert(name.clone()) {
                    continue;
                }
                let (line, column) = position(&expression.source, offset);
                let hint = patchbay_config::suggest_closest(
                    &name,
                    self.step_ids.iter().map(String::as_str),
                )
                .map(|id| format!("; did you mean `{id}`?"))
                .unwrap_or_default();
                let message = format!(
                    "`$steps.{name}` in `{}`: no step of this flow has the id `{name}`, \
                     so it would read `null`{hint}",
                    expression.key
                );
                self.at_label(&expression.label, |c| c.error_at(line, column, message));
            }
        }
        self.compiled = compiled;
    }
}
