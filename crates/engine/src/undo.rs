//! Operations as ordered steps that undo what they did when a later step
//! fails.
//!
//! An operation pushes an undo action after each step that changed the
//! kernel or the store. If the operation fails, [`Undo::rollback`] runs the
//! undo actions in reverse order, best effort: every failure is logged and
//! the rest still run. On success the operation calls [`Undo::commit`] and
//! nothing is undone.

use std::fmt;

type Action<'a> = Box<dyn FnOnce() -> Result<(), String> + 'a>;

/// The undo log of one operation.
#[derive(Default)]
pub struct Undo<'a> {
    steps: Vec<(&'static str, Action<'a>)>,
}

impl fmt::Debug for Undo<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.steps.iter().map(|(name, _)| name))
            .finish()
    }
}

impl<'a> Undo<'a> {
    pub fn new() -> Self {
        Self { steps: Vec::new() }
    }

    /// Records how to undo the step `what`, which has just succeeded.
    pub fn push(&mut self, what: &'static str, undo: impl FnOnce() -> Result<(), String> + 'a) {
        self.steps.push((what, Box::new(undo)));
    }

    /// The operation succeeded: forget the undo actions.
    pub fn commit(mut self) {
        self.steps.clear();
    }

    /// Undoes every recorded step, last first; returns the failures.
    pub fn rollback(mut self) -> Vec<String> {
        let mut errors = Vec::new();
        while let Some((what, undo)) = self.steps.pop() {
            if let Err(e) = undo() {
                tracing::warn!(step = what, error = %e, "undo failed");
                errors.push(format!("undo {what}: {e}"));
            }
        }
        errors
    }
}

impl Drop for Undo<'_> {
    fn drop(&mut self) {
        if !self.steps.is_empty() {
            let steps = std::mem::take(&mut self.steps);
            let _ = Undo { steps }.rollback();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    #[test]
    fn rollback_runs_in_reverse_and_keeps_going() {
        let log = RefCell::new(Vec::new());
        let mut undo = Undo::new();
        undo.push("a", || {
            log.borrow_mut().push("a");
            Ok(())
        });
        undo.push("b", || Err("boom".into()));
        undo.push("c", || {
            log.borrow_mut().push("c");
            Ok(())
        });
        let errors = undo.rollback();
        assert_eq!(*log.borrow(), vec!["c", "a"]);
        assert_eq!(errors, vec!["undo b: boom".to_string()]);
    }

    #[test]
    fn commit_undoes_nothing_and_drop_undoes_everything() {
        let log = RefCell::new(0);
        let mut undo = Undo::new();
        undo.push("x", || {
            *log.borrow_mut() += 1;
            Ok(())
        });
        undo.commit();
        assert_eq!(*log.borrow(), 0);
        {
            let mut undo = Undo::new();
            undo.push("y", || {
                *log.borrow_mut() += 1;
                Ok(())
            });
        }
        assert_eq!(*log.borrow(), 1);
    }
}
